from django.contrib import admin

from purchases.models import Purchase, StripeEvent


class ReadOnly(admin.ModelAdmin):
    """Stripe and the ledger are the sources of truth: staff look, they do not edit."""

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(Purchase)
class PurchaseAdmin(ReadOnly):
    list_display = ["id", "org", "created_by", "amount_cents", "credits", "status", "stripe_session_id", "created_at"]
    list_filter = ["status"]
    search_fields = ["stripe_session_id", "payment_intent_id", "charge_id", "org__name"]
    list_select_related = ["org", "created_by"]


@admin.register(StripeEvent)
class StripeEventAdmin(ReadOnly):
    list_display = ["event_id", "type", "purchase", "received_at"]
    list_filter = ["type"]
    search_fields = ["event_id"]
