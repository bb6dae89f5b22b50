from django.contrib import admin

from holds.models import Hold


@admin.register(Hold)
class HoldAdmin(admin.ModelAdmin):
    """Read-only: holds change only through holds.services (capture, void, expiry move credits)."""

    list_display = ("id", "org", "membership", "amount", "captured", "status", "expires_at", "created_at")
    list_filter = ("status",)
    search_fields = ("membership__user__email", "description", "idempotency_key")
    raw_id_fields = ("org", "membership", "wallet", "api_key", "hold_transfer", "capture_transfer", "release_transfer")

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False
