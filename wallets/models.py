"""The ledger: wallets hold pockets; transfers move credits between pockets as double-entry entries.

Invariant: for every credit type, the entries of each transfer sum to zero, so the whole book sums to
zero; every pocket's cached `balance` equals the sum of its entries; non-external pockets never go
below zero. `wallets.ledger.post_transfer` is the only code that writes entries or changes a balance.
"""

import datetime

import pgtrigger
from django.db import models
from django.db.models import F, Q
from django.db.models.signals import post_save
from django.utils import timezone

from orgs.models import Organization, User

MAX_AMOUNT = 10**15  # more credits than any org will ever hold; larger inputs are refused as absurd
# A pocket's expiry day when its credits never expire. A real date rather than NULL, so that the pocket's unique
# key (and the ledger statement's index probe) compares it with plain equality.
NEVER = datetime.date(9999, 12, 31)


class CreditType(models.Model):
    slug = models.SlugField(max_length=40, unique=True)
    name = models.CharField(max_length=60, unique=True)
    sort_order = models.PositiveSmallIntegerField(default=0)
    # Usage draws cheaper credit types first: lower draw_order is spent first (Promo before Org-allocated).
    draw_order = models.PositiveSmallIntegerField(default=100)

    class Meta:
        ordering = ["sort_order", "id"]

    def __str__(self) -> str:
        return self.name


class WalletKind(models.TextChoices):
    ORG = "org", "Org wallet"
    USER = "user", "Default wallet"
    EXTERNAL = "external", "External account"


class ExternalCode(models.TextChoices):
    STRIPE = "stripe", "Stripe"
    PROMOTIONS = "promotions", "Promotions"
    USAGE = "usage", "Usage"
    HOLDS = "holds", "Holds"  # credits reserved by open holds (issue 19: two-phase usage charges)
    EXPIRED = "expired", "Expired"  # credits that reached their expiry date


class WalletManager(models.Manager["Wallet"]):
    def create_for_org(self, org: Organization) -> "Wallet":
        return self.create(kind=WalletKind.ORG, org=org, name=f"{org.name} org wallet")

    def create_for_user(self, user: User) -> "Wallet":
        return self.create(kind=WalletKind.USER, user=user, name="Default wallet")

    def for_user(self, user: User) -> "Wallet":
        wallet = self.filter(kind=WalletKind.USER, user=user).first()
        return wallet or self.get_or_create(kind=WalletKind.USER, user=user, defaults={"name": "Default wallet"})[0]

    def for_org(self, org: Organization) -> "Wallet":
        wallet = self.filter(kind=WalletKind.ORG, org=org).first()
        return (
            wallet or self.get_or_create(kind=WalletKind.ORG, org=org, defaults={"name": f"{org.name} org wallet"})[0]
        )

    def external(self, code: str) -> "Wallet":
        wallet = self.filter(kind=WalletKind.EXTERNAL, code=code).first()
        return (
            wallet
            or self.get_or_create(kind=WalletKind.EXTERNAL, code=code, defaults={"name": ExternalCode(code).label})[0]
        )


class Wallet(models.Model):
    kind = models.CharField(max_length=16, choices=WalletKind.choices)
    org = models.ForeignKey(Organization, models.PROTECT, null=True, blank=True, related_name="wallets")
    user = models.ForeignKey(User, models.PROTECT, null=True, blank=True, related_name="wallets")
    code = models.CharField(max_length=20, choices=ExternalCode.choices, blank=True)
    name = models.CharField(max_length=160)
    created_at = models.DateTimeField(default=timezone.now)
    # Set by BalanceWatch's trigger when a watch names the wallet, never cleared: the ledger's drawn statement reads
    # the watches only of wallets with it set (wallets/sql/post_usage.sql).
    watched = models.BooleanField(default=False, editable=False)

    objects = WalletManager()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["org"], condition=Q(kind="org"), name="wallets_wallet_one_per_org"),
            models.UniqueConstraint(fields=["user"], condition=Q(kind="user"), name="wallets_wallet_one_per_user"),
            models.UniqueConstraint(
                fields=["code"], condition=Q(kind="external"), name="wallets_wallet_one_per_external_code"
            ),
            models.CheckConstraint(
                condition=(Q(kind="org", org__isnull=False, user__isnull=True))
                | Q(kind="user", user__isnull=False, org__isnull=True)
                | Q(kind="external", org__isnull=True, user__isnull=True) & ~Q(code=""),
                name="wallets_wallet_owner_matches_kind",
            ),
        ]

    def __str__(self) -> str:
        if self.kind == WalletKind.USER:
            return f"{self.user} · Default wallet"
        return self.name

    @property
    def is_external(self) -> bool:
        return self.kind == WalletKind.EXTERNAL


class Pocket(models.Model):
    """The balance of one (wallet, credit type, funding org, expiry day).

    funding_org is the org the credits came from: null for an org's own credits in its org wallet and
    for personal credits. On external wallets it names the org the outside movement was for, so each
    org has its own external pockets.

    org is the org whose data the pocket is (the funding org, or the org of an org wallet; null for a
    person's own credits): the key a sharded ledger would distribute pockets by (docs/scaling.md).

    expires_on is the day the credits expire (NEVER for credits that do not). Expiry travels with the credits:
    credits moved out of a pocket land in the receiving wallet's pocket with the same day (docs/expiry.md).
    External pockets always have NEVER.

    External pockets (Stripe, Usage, Promotions, Expired...) have no floor and keep no cached balance
    (always 0; their balance is the sum of their entries): nothing locks or updates their row, so the
    charges of an org's members never wait on each other (docs/ledger.md).
    """

    wallet = models.ForeignKey(Wallet, models.PROTECT, related_name="pockets")
    credit_type = models.ForeignKey(CreditType, models.PROTECT, related_name="pockets")
    funding_org = models.ForeignKey(Organization, models.PROTECT, null=True, blank=True, related_name="funded_pockets")
    org = models.ForeignKey(Organization, models.PROTECT, null=True, blank=True, related_name="+", db_index=False)
    is_external = models.BooleanField(default=False)
    expires_on = models.DateField(default=NEVER)
    balance = models.BigIntegerField(default=0, editable=False)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            # (wallet, funding org) first: the one index serves the ledger's exact lookup of a funded leg's
            # pocket and "this wallet's pockets funded by that org" (Returns, usage charges, the API balance).
            models.UniqueConstraint(
                fields=["wallet", "funding_org", "credit_type", "expires_on"],
                condition=Q(funding_org__isnull=False),
                name="wallets_pocket_unique_funded",
            ),
            models.UniqueConstraint(
                fields=["wallet", "credit_type", "expires_on"],
                condition=Q(funding_org__isnull=True),
                name="wallets_pocket_unique_unfunded",
            ),
            models.CheckConstraint(
                condition=Q(balance__gte=0) | Q(is_external=True), name="wallets_pocket_balance_not_negative"
            ),
            models.CheckConstraint(
                condition=Q(balance=0) | Q(is_external=False), name="wallets_pocket_external_not_cached"
            ),
            models.CheckConstraint(
                condition=Q(expires_on=NEVER) | Q(is_external=False), name="wallets_pocket_external_never_expires"
            ),
        ]
        indexes = [models.Index(fields=["org"], name="wallets_pocket_org")]
        # Entries reference pockets without a foreign-key constraint (Entry): a pocket is never deleted.
        triggers = [pgtrigger.Protect(name="pocket_never_deleted", operation=pgtrigger.Delete)]

    def __str__(self) -> str:
        funded = f" from {self.funding_org}" if self.funding_org_id else ""
        expires = f" expiring {self.expires_on:%Y-%m-%d}" if self.expires_on != NEVER else ""
        return f"{self.wallet} · {self.credit_type}{funded}{expires}: {self.balance:,}"


class TransferKind(models.TextChoices):
    PURCHASE = "purchase", "Purchase"
    REFUND = "refund", "Refund"
    TRANSFER = "transfer", "Transfer"
    BULK_TRANSFER = "bulk_transfer", "Bulk transfer"
    REQUEST_APPROVAL = "request_approval", "Request approval"
    SEAT_CREDITS = "seat_credits", "Seat credits"
    DEFAULT_ALLOCATION = "default_allocation", "Default allocation"
    INVITE_ALLOCATION = "invite_allocation", "Invite allocation"
    RETURN = "return", "Return"
    PROMO_GRANT = "promo_grant", "Promo grant"
    USAGE = "usage", "Usage"
    DISPUTE_HOLD = "dispute_hold", "Dispute hold"
    DISPUTE_RELEASE = "dispute_release", "Dispute release"
    # Holds for running jobs: reserve, then capture (usage) and/or release what was not used.
    HOLD = "hold", "Hold"
    HOLD_CAPTURE = "hold_capture", "Hold capture"
    HOLD_RELEASE = "hold_release", "Hold release"
    EXPIRY = "expiry", "Expiry"
    AUTO_TOP_UP = "auto_top_up", "Auto top-up"
    SCHEDULED_ALLOCATION = "scheduled_allocation", "Scheduled allocation"
    SCHEDULED_RETURN = "scheduled_return", "Scheduled return"


class Transfer(models.Model):
    """One business event that moved credits. Append-only: a correction is a new, reversing transfer."""

    # Indexes are kept to the ones pages use: every index is paid on each insert of the hot write path.
    # No foreign-key constraint on org: its check at COMMIT took a KEY SHARE lock on the org's row, which every
    # charge of the org shares (a multixact written per charge). Organizations are never deleted (PROTECT here,
    # and nothing deletes one); verify_ledger reports a transfer whose org is gone.
    org = models.ForeignKey(
        Organization,
        models.PROTECT,
        null=True,
        blank=True,
        related_name="transfers",
        db_index=False,  # covered by wallets_transfer_org_recent
        db_constraint=False,
    )
    kind = models.CharField(max_length=24, choices=TransferKind.choices)
    actor = models.ForeignKey(User, models.PROTECT, null=True, blank=True, related_name="+", db_index=False)
    memo = models.CharField(max_length=500, blank=True)
    idempotency_key = models.CharField(max_length=120, null=True, blank=True)
    fingerprint = models.CharField(max_length=64, editable=False)
    amount = models.BigIntegerField(help_text="Credits moved: the sum of the positive entries.")
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["org", "idempotency_key"],
                condition=Q(org__isnull=False, idempotency_key__isnull=False),
                name="wallets_transfer_idem_per_org",
            ),
            models.UniqueConstraint(
                fields=["idempotency_key"],
                condition=Q(org__isnull=True, idempotency_key__isnull=False),
                name="wallets_transfer_idem_personal",
            ),
            models.CheckConstraint(condition=Q(amount__gt=0), name="wallets_transfer_amount_positive"),
        ]
        indexes = [models.Index(F("org"), F("created_at").desc(), F("id").desc(), name="wallets_transfer_org_recent")]
        triggers = [
            pgtrigger.Protect(name="transfer_append_only", operation=pgtrigger.Update | pgtrigger.Delete),
        ]

    def __str__(self) -> str:
        return f"#{self.pk} {self.get_kind_display()} {self.amount:,}"


class Entry(models.Model):
    """One signed leg of a transfer on one pocket. wallet, credit type and time are copied from the
    pocket and transfer so that history pages read one table."""

    # FK indexes off: the composite indexes below lead with these columns. No column here carries a foreign-key
    # constraint: each cost a lookup per entry at COMMIT and a KEY SHARE lock on the row, and some rows are shared
    # by every charge of an org (its Usage pocket; the Usage wallet, a credit type, the org for the copies). The
    # entry statement trigger (sql/entry_guard.sql) refuses a new entry whose pocket or transfer does not exist
    # or whose copies (wallet, credit type, org) differ from theirs; transfers and entries are append-only and
    # pockets are never deleted (PROTECT); verify_ledger checks every row.
    transfer = models.ForeignKey(Transfer, models.PROTECT, related_name="entries", db_index=False, db_constraint=False)
    pocket = models.ForeignKey(Pocket, models.PROTECT, related_name="entries", db_index=False, db_constraint=False)
    wallet = models.ForeignKey(Wallet, models.PROTECT, related_name="entries", db_index=False, db_constraint=False)
    credit_type = models.ForeignKey(CreditType, models.PROTECT, related_name="+", db_index=False, db_constraint=False)
    # The transfer's org (null for a person's own movements): the key a sharded ledger distributes entries
    # by (docs/scaling.md).
    org = models.ForeignKey(
        Organization, models.PROTECT, null=True, blank=True, related_name="+", db_index=False, db_constraint=False
    )
    amount = models.BigIntegerField()
    # The pocket's balance after this entry; null on external pockets, which keep no running balance.
    balance_after = models.BigIntegerField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        verbose_name_plural = "entries"
        constraints = [
            models.CheckConstraint(condition=~Q(amount=0), name="wallets_entry_nonzero"),
            models.UniqueConstraint(fields=["transfer", "pocket"], name="wallets_entry_one_per_pocket"),
        ]
        indexes = [
            models.Index(F("wallet"), F("id").desc(), name="wallets_entry_wallet_recent"),
            # Balance over time (reporting.transactions.balance_chart): a pocket's last entry before a moment.
            # It also serves every other look-up by pocket, so (pocket, id) is not kept as well: each index is
            # paid on every entry the hot path inserts.
            models.Index(fields=["pocket", "created_at", "id"], name="wallets_entry_pocket_time"),
        ]
        triggers = [
            pgtrigger.Protect(name="entry_append_only", operation=pgtrigger.Update | pgtrigger.Delete),
        ]

    def __str__(self) -> str:
        return f"{self.amount:+,} on {self.pocket_id} (transfer {self.transfer_id})"


class BalanceWatch(models.Model):
    """A threshold on a wallet's balance that a feature wants to hear about when a movement crosses it
    (low-balance alerts, auto top-up): `wallets.watches` detects the crossing on the movement's path in one
    query and sends `balance_crossed` on commit. `purpose` + `ref_id` name the feature's own row."""

    wallet = models.ForeignKey(Wallet, models.CASCADE, related_name="+", db_index=False)
    # Null: the wallet's total over all its pockets (every credit type and funding org).
    credit_type = models.ForeignKey(CreditType, models.CASCADE, null=True, blank=True, related_name="+")
    threshold = models.BigIntegerField()
    purpose = models.CharField(max_length=32)
    ref_id = models.BigIntegerField()
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["purpose", "ref_id", "wallet", "credit_type"],
                nulls_distinct=False,
                name="wallets_balancewatch_unique",
            ),
            models.CheckConstraint(
                condition=Q(threshold__gte=0, threshold__lte=MAX_AMOUNT), name="wallets_balancewatch_threshold"
            ),
        ]
        indexes = [models.Index(fields=["wallet"], name="wallets_balancewatch_wallet")]
        triggers = [
            # Whatever writes the watch (watch_balance, a bulk_create, the admin), its wallet is marked watched in
            # the same transaction, so a movement that can see the watch sees the mark too.
            pgtrigger.Trigger(
                name="watch_marks_wallet",
                when=pgtrigger.After,
                operation=pgtrigger.Insert | pgtrigger.UpdateOf("wallet_id"),
                func="UPDATE wallets_wallet SET watched = true WHERE id = NEW.wallet_id AND NOT watched; RETURN NULL;",
            )
        ]

    def __str__(self) -> str:
        return f"{self.purpose}#{self.ref_id}: {self.wallet_id} below {self.threshold:,}"


REFERENCE_CREDIT_TYPES = [
    # slug, name, sort_order, draw_order (Promo is spent before Org-allocated)
    ("org-allocated", "Org-allocated", 1, 20),
    ("promo", "Promo", 2, 10),
]


def ensure_reference_data() -> None:
    """The seeded credit types and external wallets (also created by migration 0002). Idempotent."""
    for slug, name, sort_order, draw_order in REFERENCE_CREDIT_TYPES:
        CreditType.objects.get_or_create(
            slug=slug, defaults={"name": name, "sort_order": sort_order, "draw_order": draw_order}
        )
    for code in ExternalCode:
        Wallet.objects.get_or_create(kind=WalletKind.EXTERNAL, code=code.value, defaults={"name": code.label})


class OutstandingBalance(models.Model):
    """Credits an org owes after a refund or dispute took back credits it had already given away or spent.

    The next purchase pays it first; transfers out of the org wallet are blocked while it is above zero.
    """

    org = models.OneToOneField(Organization, models.PROTECT, related_name="outstanding_balance")
    credits = models.BigIntegerField(default=0)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        db_table = "billing_outstandingbalance"  # the table keeps the name it had in the billing app
        constraints = [models.CheckConstraint(condition=Q(credits__gte=0), name="billing_outstanding_not_negative")]

    def __str__(self) -> str:
        return f"{self.org}: {self.credits:,} credits outstanding"


# Every user has a Default wallet and every org an org wallet from the moment they exist.
#
# orgs sits below wallets and cannot create wallets itself, so wallets listens for new users and orgs,
# whatever made them (sign-up, invitation, createsuperuser, the admin). The receivers run inside the
# save's transaction: a user or org is never committed without its wallet.


def _user_wallet(sender, instance: User, created: bool, raw: bool = False, **kwargs) -> None:
    if created and not raw:
        Wallet.objects.create_for_user(instance)


def _org_wallet(sender, instance: Organization, created: bool, raw: bool = False, **kwargs) -> None:
    if created and not raw:
        Wallet.objects.create_for_org(instance)


post_save.connect(_user_wallet, sender=User, dispatch_uid="wallets.user_wallet")
post_save.connect(_org_wallet, sender=Organization, dispatch_uid="wallets.org_wallet")
