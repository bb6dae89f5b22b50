import uuid

from django import forms

from core.validators import no_control_characters_multiline
from credit_requests.services import MAX_REASON
from wallets.forms import CreditsField


class CreditRequestForm(forms.Form):
    amount = CreditsField(label="Amount")
    reason = forms.CharField(
        label="Reason",
        max_length=MAX_REASON,
        validators=[no_control_characters_multiline],
        widget=forms.Textarea(attrs={"rows": 3, "placeholder": "What are the credits for?"}),
        error_messages={"required": "Say briefly what the credits are for."},
    )
    client_key = forms.UUIDField(widget=forms.HiddenInput, required=False)

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if not self.is_bound:
            self.initial.setdefault("client_key", uuid.uuid4())


class ApproveForm(forms.Form):
    amount = CreditsField(label="Amount")
    credit_type = forms.ChoiceField(label="Credit type", required=False)

    def __init__(self, *args, credit_request, credit_types, **kwargs):
        super().__init__(*args, **kwargs)
        self.credit_request = credit_request
        amount = self.fields["amount"]
        # More than requested is refused by clean_amount, with a message that says so.
        amount.widget.attrs.update({"max": credit_request.amount, "min": 1})
        amount.help_text = f"Requested: {credit_request.amount:,}. You can grant less, not more."
        amount.initial = credit_request.amount
        self.credit_types = {ct.slug: ct for ct, _ in credit_types}
        self.fields["credit_type"].choices = [
            (ct.slug, f"{ct.name} ({balance:,} available)") for ct, balance in credit_types
        ]
        self.fields["credit_type"].initial = "org-allocated"

    def clean_amount(self):
        amount = self.cleaned_data["amount"]
        if amount > self.credit_request.amount:
            raise forms.ValidationError(
                f"You can grant at most the {self.credit_request.amount:,} credits requested "
                "(less is fine, more is not)."
            )
        return amount

    def clean_credit_type(self):
        slug = self.cleaned_data.get("credit_type") or "org-allocated"
        if slug not in self.credit_types:
            raise forms.ValidationError("Pick a credit type the org wallet holds.")
        return self.credit_types[slug]


class RejectForm(forms.Form):
    reason = forms.CharField(
        label="Reason (optional)",
        required=False,
        max_length=MAX_REASON,
        validators=[no_control_characters_multiline],
        widget=forms.Textarea(attrs={"rows": 3, "placeholder": "The member sees this on their wallet."}),
    )
