from django.contrib import admin

from apikeys.admin import ApiKeyAdmin, IdempotencyRecordAdmin, UsageChargeAdmin  # noqa: F401 (registers them)
from credit_requests.models import CreditRequest
from purchases.models import Purchase, StripeEvent
from wallets.admin import ReadOnlyAdmin
from wallets.models import OutstandingBalance


@admin.register(CreditRequest)
class CreditRequestAdmin(ReadOnlyAdmin):
    """Read-only: decisions go through credit_requests.services (row lock + ledger), never a hand edit."""

    list_display = ["id", "org", "requester", "amount", "status", "granted_amount", "decided_by", "created_at"]
    list_filter = ["status"]
    search_fields = ["requester__email", "org__name", "reason"]
    list_select_related = ["org", "requester", "decided_by"]
    raw_id_fields = ["membership", "transfer"]


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


@admin.register(OutstandingBalance)
class OutstandingBalanceAdmin(ReadOnly):
    list_display = ["org", "credits", "updated_at"]
    list_select_related = ["org"]
