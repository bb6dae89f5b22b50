"""The auto top-up settings form: whole credits within limits, a dollar cap; errors next to each field."""

from __future__ import annotations

from django import forms
from django.conf import settings

from purchases.auto_top_up import MAX_CREDITS, cents_for_credits
from purchases.services import PurchaseError, fmt_dollars, parse_dollars
from wallets.forms import CreditsField


class AutoTopUpForm(forms.Form):
    enabled = forms.BooleanField(required=False, label="Auto top-up on")
    threshold = CreditsField(
        min_value=0,
        max_value=MAX_CREDITS,
        label="When the org wallet is below (credits)",
        placeholder="e.g. 1,000",
        help_text="Whole credits, the org wallet's total over every credit type.",
        error_messages={"required": "Enter the balance that starts a top-up, in credits."},
    )
    target = CreditsField(
        min_value=1,
        max_value=MAX_CREDITS,
        label="Buy enough to reach (credits)",
        placeholder="e.g. 10,000",  # above the threshold, as it must be
        help_text="One charge buys the whole shortfall, as Org-allocated credits ($0.01 each).",
        error_messages={"required": "Enter the balance a top-up brings the wallet back to, in credits."},
    )
    monthly_cap = forms.CharField(
        label="Monthly cap (dollars)",
        help_text="Auto top-up never charges more than this in a calendar month (UTC).",
        error_messages={"required": "Enter the most auto top-up may charge in a calendar month, in dollars."},
        widget=forms.TextInput(attrs={"inputmode": "decimal", "autocomplete": "off", "placeholder": "e.g. 100.00"}),
    )

    def __init__(self, *args, has_card: bool = False, **kwargs):
        self.has_card = has_card
        super().__init__(*args, **kwargs)

    def clean_monthly_cap(self) -> int:
        text = self.cleaned_data["monthly_cap"]
        try:
            return parse_dollars(text)
        except PurchaseError as exc:
            # parse_dollars speaks of purchases; say it for the cap.
            msg = str(exc).replace("Buy between", "Set a cap between").replace("purchase", "cap")
            raise forms.ValidationError(msg) from None

    def clean(self):
        data = super().clean()
        threshold, target = data.get("threshold"), data.get("target")
        if threshold is not None and target is not None and target <= threshold:
            self.add_error("target", f"Buy enough to reach more than {threshold:,} credits (the threshold).")
        cap = data.get("monthly_cap")
        if threshold is not None and target is not None and cap and target > threshold:
            smallest = cents_for_credits(target - threshold + 1)
            if smallest > cap:
                self.add_error(
                    "monthly_cap",
                    f"The cap ({fmt_dollars(cap)}) is below one top-up from just under the threshold "
                    f"({fmt_dollars(smallest)}): raise the cap or bring the two balances closer.",
                )
        if data.get("enabled") and not self.has_card:
            self.add_error("enabled", "Save a card first: auto top-up charges the saved card.")
        return data

    @staticmethod
    def limits() -> dict:
        return {
            "max_credits": MAX_CREDITS,
            "min_cap": fmt_dollars(settings.PURCHASE_MIN_CENTS),
            "max_cap": fmt_dollars(settings.PURCHASE_MAX_CENTS),
        }
