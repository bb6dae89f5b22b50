from django.contrib import admin

from alerts.models import AlertRule
from wallets.admin import ReadOnlyAdmin


@admin.register(AlertRule)
class AlertRuleAdmin(ReadOnlyAdmin):
    """Read-only: rules are saved through alerts.services (which keeps the balance watch in step), and the state
    is changed only by alerts.evaluation under the rule's row lock."""

    list_display = ["id", "org", "user", "credit_type", "threshold", "state", "fired_at", "last_balance", "updated_at"]
    list_filter = ["state"]
    search_fields = ["org__name", "user__email"]
    list_select_related = ["org", "user", "credit_type"]
    raw_id_fields = ["wallet", "updated_by"]
