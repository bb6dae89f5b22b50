"""Transactions filters: what a user may ask the Transactions page, its CSV export and the API for.

`parse_filter` turns GET parameters into a validated, immutable `TransactionFilter`, and a malformed
value into a readable message instead of an exception, so a hand-edited or stale link shows an
unfiltered page that says what was wrong. `TransactionFilter.as_params` goes the other way, for links
and the export URL. What a filter selects is defined once, in `reporting.queries.filter_transfers`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from orgs.models import Organization
from wallets.models import MAX_AMOUNT, CreditType, TransferKind, Wallet, WalletKind

# Kinds listed in the filter, in the order users think of them.
FILTER_KINDS = list(TransferKind.choices)

# The kinds that can touch a person's Default wallet (the Wallet page's filter): credits an org hands out, usage
# and Returns. Purchases, refunds, disputes and promo grants only ever move the org wallet, so a member never
# sees them offered.
_WALLET_KINDS = {
    TransferKind.TRANSFER,
    TransferKind.BULK_TRANSFER,
    TransferKind.REQUEST_APPROVAL,
    TransferKind.SEAT_CREDITS,
    TransferKind.DEFAULT_ALLOCATION,
    TransferKind.INVITE_ALLOCATION,
    TransferKind.USAGE,
    TransferKind.RETURN,
}
WALLET_KINDS = [(value, label) for value, label in TransferKind.choices if value in _WALLET_KINDS]

FILTER_PARAMS = ("from", "to", "kind", "member", "credit_type", "min", "max")


@dataclass(frozen=True)
class TransactionFilter:
    """A validated filter. Every field is optional; empty fields do not filter.

    date_from/date_to are inclusive calendar days (in settings.TIME_ZONE); amount_min/amount_max bound
    the credits moved (the transfer's gross amount, unsigned); member_wallet_id keeps transfers that
    touched that member's Default wallet; credit_type keeps transfers with an entry of that type.
    """

    date_from: date | None = None
    date_to: date | None = None
    kinds: tuple[str, ...] = ()
    member_email: str = ""
    member_wallet_id: int | None = None
    credit_type: CreditType | None = None
    amount_min: int | None = None
    amount_max: int | None = None

    @property
    def is_empty(self) -> bool:
        return self == TransactionFilter()

    def as_params(self) -> dict[str, str | list[str]]:
        """GET parameters that parse back into this filter (for links and the export URL)."""
        params: dict[str, str | list[str]] = {}
        if self.date_from:
            params["from"] = self.date_from.isoformat()
        if self.date_to:
            params["to"] = self.date_to.isoformat()
        if self.kinds:
            params["kind"] = list(self.kinds)
        if self.member_email:
            params["member"] = self.member_email
        if self.credit_type:
            params["credit_type"] = self.credit_type.slug
        if self.amount_min is not None:
            params["min"] = str(self.amount_min)
        if self.amount_max is not None:
            params["max"] = str(self.amount_max)
        return params


def parse_filter(org: Organization, params, credit_types: list[CreditType] | None = None):
    """(TransactionFilter, errors) from GET parameters. Never raises.

    Any malformed value gives a user-readable message in `errors` and an EMPTY filter, so the caller
    shows an unfiltered (but valid) page with the message instead of a 500 or a silently wrong list.
    One query at most (the member lookup), plus one for credit types unless they are passed in.
    """
    errors: list[str] = []
    values: dict = {}

    def text(name: str) -> str:
        return (params.get(name) or "").strip()

    for name, key in (("from", "date_from"), ("to", "date_to")):
        raw = text(name)
        if raw:
            try:
                values[key] = date.fromisoformat(raw)
            except ValueError:
                errors.append(f"“{raw[:40]}” is not a date: use YYYY-MM-DD.")
    if values.get("date_from") and values.get("date_to") and values["date_from"] > values["date_to"]:
        errors.append("The start date is after the end date.")

    kinds = [k.strip() for k in params.getlist("kind") if k and k.strip()] if hasattr(params, "getlist") else []
    known = set(TransferKind.values)
    errors.extend(f"“{k[:40]}” is not a kind of transaction." for k in kinds if k not in known)
    values["kinds"] = tuple(dict.fromkeys(kinds))

    for name, key in (("min", "amount_min"), ("max", "amount_max")):
        raw = text(name).replace(",", "").replace("_", "")
        if raw:
            if not raw.isdigit() or not raw.isascii():
                errors.append(f"“{raw[:40]}” is not an amount: use a whole number of credits like 100.")
            elif int(raw) > MAX_AMOUNT:
                errors.append(f"Amounts are at most {MAX_AMOUNT:,} credits.")
            else:
                values[key] = int(raw)
    low, high = values.get("amount_min"), values.get("amount_max")
    if low is not None and high is not None and low > high:
        errors.append("The minimum amount is larger than the maximum.")

    slug = text("credit_type")
    if slug:
        types = credit_types if credit_types is not None else list(CreditType.objects.all())
        match = next((ct for ct in types if ct.slug == slug), None)
        if match is None:
            errors.append(f"“{slug[:40]}” is not a credit type.")
        values["credit_type"] = match

    email = text("member")
    if email:
        values["member_email"] = email
        wallet_id = member_wallet_id(org, email)
        if wallet_id is None:
            errors.append(f"No member of {org.name} has the email “{email[:80]}”.")
        values["member_wallet_id"] = wallet_id

    if errors:
        return TransactionFilter(), errors
    return TransactionFilter(**values), []


def member_wallet_id(org: Organization, email: str) -> int | None:
    """The Default wallet of the org's member with this email (case-insensitive), or None. Removed members
    included: their history is still this org's history. One query (none for an email with a NUL byte, which
    no address has and PostgreSQL cannot compare)."""
    if "\x00" in email:
        return None
    return (
        Wallet.objects.filter(kind=WalletKind.USER, user__email__iexact=email, user__memberships__org=org)
        .values_list("pk", flat=True)
        .first()
    )
