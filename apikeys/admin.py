"""Django admin for the API's models: staff see keys (never their secret) and stored responses."""

from django.contrib import admin

from apikeys.models import ApiKey, IdempotencyRecord, UsageCharge


@admin.register(ApiKey)
class ApiKeyAdmin(admin.ModelAdmin):
    """Keys are listed, never read: the secret is not stored, and its hash is not shown."""

    list_display = ["name", "display_prefix", "org", "scope", "created_by", "created_at", "last_used_at", "revoked_at"]
    list_filter = ["scope", ("revoked_at", admin.EmptyFieldListFilter)]
    search_fields = ["name", "lookup", "org__name"]
    list_select_related = ["org", "created_by"]
    fields = [
        "name",
        "display_prefix",
        "org",
        "scope",
        "created_by",
        "created_at",
        "last_used_at",
        "revoked_at",
        "revoked_by",
    ]
    readonly_fields = fields

    def has_add_permission(self, request):
        return False  # keys are issued on Settings > API keys, where the token is shown once

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(IdempotencyRecord)
class IdempotencyRecordAdmin(admin.ModelAdmin):
    list_display = ["key", "org", "method", "path", "status_code", "created_at"]
    list_filter = ["method", "status_code"]
    search_fields = ["key", "org__name"]
    list_select_related = ["org"]
    readonly_fields = [
        "org",
        "api_key",
        "key",
        "method",
        "path",
        "request_hash",
        "status_code",
        "response_body",
        "created_at",
    ]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False


@admin.register(UsageCharge)
class UsageChargeAdmin(admin.ModelAdmin):
    list_display = ["pk", "org", "membership", "amount", "description", "created_at"]
    search_fields = ["description", "membership__user__email", "org__name"]
    list_select_related = ["org", "membership__user", "membership__org"]
    readonly_fields = ["org", "membership", "transfer", "api_key", "amount", "description", "metadata", "created_at"]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False
