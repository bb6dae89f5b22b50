from django.contrib import admin

from credit_requests.models import CreditRequest
from wallets.admin import ReadOnlyAdmin


@admin.register(CreditRequest)
class CreditRequestAdmin(ReadOnlyAdmin):
    """Read-only: decisions go through credit_requests.services (row lock + ledger), never a hand edit."""

    list_display = ["id", "org", "requester", "amount", "status", "granted_amount", "decided_by", "created_at"]
    list_filter = ["status"]
    search_fields = ["requester__email", "org__name", "reason"]
    list_select_related = ["org", "requester", "decided_by"]
    raw_id_fields = ["membership", "transfer"]
