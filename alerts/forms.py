"""Alert forms: they parse whole credits within limits (wallets.forms.CreditsField); alerts.services saves."""

from django import forms

from alerts.models import MAX_THRESHOLD, MIN_THRESHOLD
from wallets.forms import CreditsField
from wallets.models import CreditType

TOTAL_FIELD = "total"


def _threshold_field(label: str, help_text: str) -> CreditsField:
    return CreditsField(
        label=label,
        required=False,
        min_value=MIN_THRESHOLD,
        max_value=MAX_THRESHOLD,
        help_text=help_text,
        widget=forms.TextInput(attrs={"inputmode": "numeric", "autocomplete": "off", "placeholder": "No alert"}),
    )


class OrgAlertsForm(forms.Form):
    """One optional threshold on the org wallet's total, and one per credit type. Blank: no alert."""

    def __init__(self, *args, credit_types: list[CreditType], initial_rules: dict | None = None, **kwargs):
        kwargs.setdefault("auto_id", "alerts_%s")
        super().__init__(*args, **kwargs)
        self.credit_types = credit_types
        self.fields[TOTAL_FIELD] = _threshold_field(
            "Total balance", "Alert when the org wallet's total (all credit types) goes below this many credits."
        )
        for ct in credit_types:
            self.fields[f"type_{ct.slug}"] = _threshold_field(
                f"{ct.name} balance", f"Alert when the org wallet's {ct.name} credits go below this many."
            )
        for key, threshold in (initial_rules or {}).items():
            name = TOTAL_FIELD if key is None else f"type_{key.slug}"
            if name in self.fields:
                self.initial[name] = f"{threshold:,}"

    def thresholds(self) -> dict[CreditType | None, int | None]:
        """{credit type or None (total): threshold or None (no alert)}, after is_valid()."""
        result = {None: self.cleaned_data.get(TOTAL_FIELD)}
        for ct in self.credit_types:
            result[ct] = self.cleaned_data.get(f"type_{ct.slug}")
        return result


class MemberAlertForm(forms.Form):
    threshold = _threshold_field(
        "Tell me when my balance goes below",
        "Credits, on your Default wallet's total. Leave it blank for no alert.",
    )

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("auto_id", "member_alert_%s")
        super().__init__(*args, **kwargs)
