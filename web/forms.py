"""Small page forms of expiring credits (issue 19, docs/expiry.md "What people see")."""

from __future__ import annotations

import re

from django import forms

from wallets.draw import ORDERS, SOONEST

MAX_EXPIRY_MONTHS = 120
_MONTHS = re.compile(r"[0-9]{1,4}", re.ASCII)  # ASCII digits only: no signs, decimals or non-ASCII digits


class PurchasedExpiryForm(forms.Form):
    """Billing > Credit expiry: purchased credits expire after N months (1-120); blank: never."""

    months = forms.CharField(
        label="Purchased credits expire after (months)",
        required=False,
        max_length=10,
        help_text=f"A whole number of months from 1 to {MAX_EXPIRY_MONTHS}. Leave blank: purchased credits never "
        "expire. Credits already bought keep their day.",
        widget=forms.TextInput(attrs={"inputmode": "numeric", "autocomplete": "off", "placeholder": "e.g. 12"}),
    )

    def clean_months(self) -> int | None:
        text = (self.cleaned_data.get("months") or "").strip()
        if not text:
            return None
        if not _MONTHS.fullmatch(text) or not 1 <= int(text) <= MAX_EXPIRY_MONTHS:
            raise forms.ValidationError(
                f"Enter a whole number of months from 1 to {MAX_EXPIRY_MONTHS}, or leave it blank for never."
            )
        return int(text)


class SendFirstForm(forms.Form):
    """The Transfer dialog's "Send first" picker: which expiring credits leave the org wallet first."""

    order = forms.ChoiceField(
        label="Send first",
        choices=list(ORDERS.items()),
        initial=SOONEST,
        required=False,
        widget=forms.RadioSelect,
        error_messages={"invalid_choice": "Pick which credits to send first: the soonest- or the latest-expiring."},
    )

    def chosen(self) -> str:
        """The valid choice (SOONEST when none was sent). Call after is_valid()."""
        return self.cleaned_data.get("order") or SOONEST
