"""Transfer dialog: forms (strict input parsing) and the reads it needs. Money moves only in wallets.services.

Modes: ``one`` (one member, confirmed with **Transfer Credits**), ``selected`` and ``all`` (a bulk
transfer, confirmed with **Transfer**). Every read here is a constant number of queries, whatever the
number of members: member lists are searched and capped, never rendered whole.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from django import forms
from django.db.models import Q, Sum

from core.validators import no_control_characters
from orgs.models import Membership, MembershipStatus, Organization
from wallets.forms import CreditsField
from wallets.models import CreditType, Wallet

MODES = [("one", "One member"), ("selected", "Selected"), ("all", "All")]
MODE_KEYS = {key for key, _ in MODES}
SELECT_THRESHOLD = 20  # above this many members, the recipient dropdown becomes a type-ahead search
RESULTS_LIMIT = 20  # members shown per search in the type-ahead / checkbox list
SELECTED_LIMIT = 500  # chosen members carried along while searching for more
REASON_PLACEHOLDER = "Monthly allocation"


# --- reads -------------------------------------------------------------------------------------------


@dataclass
class Holding:
    credit_type: CreditType
    balance: int


def org_holdings(wallet: Wallet) -> list[Holding]:
    """Credit types the org wallet holds (balance > 0), with their balance. One query."""
    rows = (
        CreditType.objects.filter(pockets__wallet=wallet, pockets__funding_org__isnull=True, pockets__balance__gt=0)
        .annotate(available=Sum("pockets__balance"))
        .order_by("sort_order", "id")
    )
    return [Holding(ct, int(ct.available)) for ct in rows]


def active_members(org: Organization):
    return Membership.objects.filter(org=org, status=MembershipStatus.ACTIVE)


def search_members(org: Organization, q: str):
    """Active members whose name or email contains q, ordered by name then email."""
    members = active_members(org).select_related("user")
    q = (q or "").strip()
    if q:
        members = members.filter(Q(user__name__icontains=q) | Q(user__email__icontains=q))
    return members.order_by("user__name", "user__email", "pk")


def parse_ids(values) -> list[int]:
    """Whole positive ids from form values; anything else is dropped (a forged value never matches a member)."""
    ids = []
    for value in values:
        value = str(value).strip()
        if value.isascii() and value.isdigit() and len(value) < 19:
            ids.append(int(value))
    return list(dict.fromkeys(ids))


# --- fields ------------------------------------------------------------------------------------------


class MemberIdsField(forms.Field):
    """Checked membership ids (any posted value; they are checked against the org in the form's clean())."""

    widget = forms.MultipleHiddenInput

    def to_python(self, value) -> list[int]:
        return parse_ids(value or [])


# --- forms -------------------------------------------------------------------------------------------


class TransferForm(forms.Form):
    """Shared fields: credit type (only those the org wallet holds), amount, note, idempotency key."""

    mode = forms.ChoiceField(choices=MODES, widget=forms.HiddenInput)
    credit_type = forms.ChoiceField(label="Credit type")
    idempotency_key = forms.UUIDField(
        widget=forms.HiddenInput,
        error_messages={
            "required": "This form has expired. Close it and open Transfer again.",
            "invalid": "This form has expired. Close it and open Transfer again.",
        },
    )

    def __init__(self, *args, org: Organization, holdings: list[Holding], **kwargs):
        super().__init__(*args, **kwargs)
        self.org = org
        self.holdings = holdings
        self.fields["credit_type"].choices = [
            (h.credit_type.slug, f"{h.credit_type.name} ({h.balance:,} available)") for h in holdings
        ]
        self.fields["credit_type"].error_messages["invalid_choice"] = (
            "The org wallet holds no credits of that type. Pick one of the listed types."
        )
        if not self.is_bound:
            self.initial.setdefault("idempotency_key", uuid.uuid4())
            if holdings:
                self.initial.setdefault("credit_type", holdings[0].credit_type.slug)

    @property
    def transfer_mode(self) -> str:
        return self.initial.get("mode") or "one"

    def holding(self) -> Holding | None:
        slug = self.cleaned_data.get("credit_type") if hasattr(self, "cleaned_data") else None
        slug = slug or self.data.get("credit_type") or self.initial.get("credit_type")
        return next((h for h in self.holdings if h.credit_type.slug == slug), None)

    def ledger_key(self) -> str:
        return f"ui-transfer:{self.cleaned_data['idempotency_key']}"


class OneMemberForm(TransferForm):
    recipient = forms.CharField(
        label="Recipient", required=True, error_messages={"required": "Pick a member to receive the credits."}
    )
    amount = CreditsField(label="Amount")
    message = forms.CharField(
        label="Message (optional)",
        required=False,
        max_length=500,
        validators=[no_control_characters],
        widget=forms.TextInput(attrs={"placeholder": "What the credits are for", "autocomplete": "off"}),
    )

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.initial["mode"] = "one"
        self.recipient_membership: Membership | None = None

    def clean_recipient(self) -> int:
        ids = parse_ids([self.cleaned_data["recipient"]])
        membership = active_members(self.org).select_related("user").filter(pk=ids[0]).first() if ids else None
        if membership is None:
            raise forms.ValidationError("That person is not (or no longer) a member of this organization.")
        self.recipient_membership = membership
        return membership.pk


class BulkForm(TransferForm):
    """Selected (checked members, or every member matching a search) or All (every current member)."""

    member = MemberIdsField(required=False)
    match_all = forms.BooleanField(required=False)
    q = forms.CharField(required=False, max_length=200)
    amount = CreditsField(label="Amount per member")
    reason = forms.CharField(
        label="Reason (optional)",
        required=False,
        max_length=500,
        validators=[no_control_characters],
        widget=forms.TextInput(attrs={"placeholder": REASON_PLACEHOLDER, "autocomplete": "off"}),
    )

    def __init__(self, *args, mode: str = "selected", **kwargs):
        super().__init__(*args, **kwargs)
        self.initial["mode"] = mode
        self.fields["mode"].choices = [("selected", "Selected"), ("all", "All")]
        self.membership_ids: list[int] | None = None

    @property
    def transfer_mode(self) -> str:
        if self.is_bound and self.data.get("mode") in ("selected", "all"):
            return self.data["mode"]
        return self.initial["mode"]

    def clean(self):
        data = super().clean()
        if self.transfer_mode == "all":
            self.membership_ids = None
            return data
        if data.get("match_all"):
            self.membership_ids = list(search_members(self.org, data.get("q", "")).values_list("pk", flat=True))
        else:
            wanted = data.get("member") or []
            found = list(active_members(self.org).filter(pk__in=wanted).values_list("pk", flat=True))
            if len(found) != len(wanted):
                self.add_error(
                    "member", "Some of the selected people are not (or no longer) members of this organization."
                )
            self.membership_ids = found
        if not self.membership_ids and "member" not in self.errors:
            self.add_error("member", "Pick at least one member.")
        return data


def form_for(mode: str, data=None, *, org: Organization, holdings: list[Holding]) -> TransferForm:
    if mode == "one":
        return OneMemberForm(data, org=org, holdings=holdings)
    return BulkForm(data, org=org, holdings=holdings, mode=mode)
