from django.contrib import admin

from expiry.models import ExpiryNotice


@admin.register(ExpiryNotice)
class ExpiryNoticeAdmin(admin.ModelAdmin):
    list_display = ("expires_on", "org", "user", "org_credits", "own_credits", "created_at")
    list_filter = ("expires_on",)
    search_fields = ("org__name", "user__email")
    raw_id_fields = ("org", "user")
    readonly_fields = ("org", "user", "expires_on", "org_credits", "own_credits", "created_at")

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False
