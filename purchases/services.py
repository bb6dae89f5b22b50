"""Buy Credits: start a Stripe Checkout, fulfil it once, and follow refunds and disputes.

Every handler re-fetches the Stripe object and moves the purchase toward the state Stripe reports, so
events may arrive duplicated, late or in any order. Lock order, shared by every path: the Purchase row,
then the org's OutstandingBalance row, then (inside the ledger primitive, or just before it in id order) the
pockets.

Expiry (issue 19, docs/expiry.md): bought credits land in the org wallet's pocket of the day the org's
"purchased credits expire after N months" setting gives on the day they are paid (NEVER when the setting is
empty), recorded on the row once (`credits_expire_on`). A refund or dispute hold takes the credits back from
that pocket first, then from the others soonest-expiring first; a won dispute gives them back with their days.
"""

from __future__ import annotations

import calendar
import datetime
import logging
import re

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from core.errors import DomainError
from orgs.models import Organization
from purchases import stripe_client
from purchases.models import Purchase, PurchaseStatus, TopUpAttempt
from wallets.ledger import Leg, check_amount, fingerprint_of, leg, post_transfer
from wallets.models import NEVER, CreditType, ExternalCode, OutstandingBalance, Pocket, Transfer, TransferKind, Wallet
from wallets.outstanding import lock_outstanding
from wallets.services import org_credit_from_stripe

log = logging.getLogger("credits.billing")

OPEN_DISPUTE = {"needs_response", "under_review"}
LOST_DISPUTE = {"lost"}
CLOSED_NO_LOSS = {"won", "warning_closed", "prevented"}


class PurchaseError(DomainError):
    """A purchase could not be started; nothing was charged and no credits moved."""


# ---------------------------------------------------------------- amounts


def credits_for_cents(cents: int) -> int:
    return cents * settings.CREDITS_PER_USD // 100


def fmt_dollars(cents: int) -> str:
    return f"${cents // 100:,}.{cents % 100:02d}"


# ASCII digits only (`\d` and Decimal() would also take Arabic-Indic or full-width digits); commas only as thousands
# separators ("1,000.50", never "10,00"); at most one dot. No signs, exponents, underscores, NaN or Infinity.
_AMOUNT_RE = re.compile(r"(?P<whole>[0-9]{1,3}(?:,[0-9]{3})+|[0-9]*)(?:\.(?P<frac>[0-9]*))?", re.ASCII)


def parse_dollars(text: str | None) -> int:
    """A dollar amount typed by a person -> whole US cents within the purchase limits, or PurchaseError."""
    raw = (text or "").strip().removeprefix("$").strip()
    lo, hi = settings.PURCHASE_MIN_CENTS, settings.PURCHASE_MAX_CENTS
    limits = f"Buy between {fmt_dollars(lo)} and {fmt_dollars(hi)}."
    if not raw:
        raise PurchaseError(f"Enter a dollar amount. {limits}")
    if raw.startswith("-"):
        raise PurchaseError(f"The amount must be positive. {limits}")
    match = _AMOUNT_RE.fullmatch(raw)
    if match is None or raw == ".":
        raise PurchaseError("Enter a dollar amount as a number, like 25 or 25.50.")
    whole, frac = match["whole"].replace(",", "").lstrip("0"), (match["frac"] or "").rstrip("0")
    if len(frac) > 2:
        raise PurchaseError("Use whole cents: at most two digits after the decimal point.")
    if len(whole) > len(str(hi // 100)):  # no int() of a 300-digit string
        raise PurchaseError(f"The maximum purchase is {fmt_dollars(hi)}.")
    cents = int(whole or "0") * 100 + int(frac.ljust(2, "0"))
    if cents < lo:
        raise PurchaseError(f"The minimum purchase is {fmt_dollars(lo)}.")
    if cents > hi:
        raise PurchaseError(f"The maximum purchase is {fmt_dollars(hi)}.")
    return cents


def _org_allocated() -> CreditType:
    return CreditType.objects.get(slug="org-allocated")


# ---------------------------------------------------------------- expiry of bought credits


def add_months(day: datetime.date, months: int) -> datetime.date:
    """`day` plus `months` calendar months, the day of the month clamped to the month's last (Jan 31 + 1 month
    is Feb 28, or Feb 29 in a leap year)."""
    years, month0 = divmod(day.month - 1 + months, 12)
    year, month = day.year + years, month0 + 1
    return datetime.date(year, month, min(day.day, calendar.monthrange(year, month)[1]))


def purchased_credits_expire_on(org: Organization, paid_on: datetime.date | None = None) -> datetime.date | None:
    """The day credits the org buys on `paid_on` (today by default) expire: N months later under the org's
    "purchased credits expire after N months" setting, None (never) when it is empty."""
    months = org.purchased_credits_expire_months
    if not months:
        return None
    return add_months(paid_on or timezone.localdate(), months)


def _days_of(pieces) -> list[tuple[datetime.date, int]]:
    return [(datetime.date.fromisoformat(day), amount) for day, amount in pieces]


def _take_back(
    *, org: Organization, credits: int, kind: str, key: str, memo: str, ob: OutstandingBalance, prefer=NEVER
) -> tuple[int, list[tuple[datetime.date, int]]]:
    """Move up to `credits` Org-allocated credits from the org wallet back to Stripe; what the wallet no
    longer has is added to the outstanding balance. The pocket of day `prefer` (the paid thing's own credits)
    goes first, then the others soonest-expiring first. Returns (the part recorded as outstanding, the
    (expiry day, credits) taken from each pocket).

    The org wallet's Org-allocated pockets are locked here, in id order (the ledger's order), so the plan made
    from their balances is the one the ledger posts: a plan that names each pocket, including the never-expiring
    one, which `wallets.draw.post_drawn` cannot express (a NEVER leg means "choose"). Its fingerprint is the
    unsplit movement's, as post_drawn's would be."""
    ct = _org_allocated()
    org_wallet = Wallet.objects.for_org(org)
    pockets = list(
        Pocket.objects.select_for_update()
        .filter(wallet=org_wallet, credit_type=ct, funding_org__isnull=True, balance__gt=0)
        .order_by("pk")
        .values_list("expires_on", "balance")
    )
    pockets.sort(key=lambda p: (p[0] != prefer, p[0]))
    take = min(sum(balance for _, balance in pockets), credits)
    taken: list[tuple[datetime.date, int]] = []
    if take > 0:
        stripe_wallet = Wallet.objects.external(ExternalCode.STRIPE)
        left, legs = take, []
        for day, balance in pockets:
            piece = min(left, balance)
            if piece:
                legs.append(Leg(org_wallet.pk, ct.pk, -piece, None, False, day))
                taken.append((day, piece))
                left -= piece
        legs.append(leg(stripe_wallet, ct, take, funding_org=org))
        unsplit = [leg(org_wallet, ct, -take), leg(stripe_wallet, ct, take, funding_org=org)]
        post_transfer(
            kind=kind,
            org=org,
            memo=memo,
            idempotency_key=key,
            fingerprint=fingerprint_of(kind, unsplit, (memo or "").strip()[:500], org.pk),
            legs=legs,
        )
    owed = credits - take
    if owed:
        ob.credits += owed
        ob.save(update_fields=["credits", "updated_at"])
    return owed, taken


def _give_back(*, org: Organization, pieces: list[tuple[datetime.date, int]], kind: str, key: str, memo: str) -> None:
    """Credits from Stripe back into the org wallet, each piece into the pocket of its expiry day."""
    total = sum(amount for _, amount in pieces)
    if total <= 0:
        return
    if all(day == NEVER for day, _ in pieces):
        org_credit_from_stripe(org=org, amount=total, memo=memo, idempotency_key=key, kind=kind)
        return
    ct = _org_allocated()
    org_wallet = Wallet.objects.for_org(org)
    legs = [leg(Wallet.objects.external(ExternalCode.STRIPE), ct, -total, funding_org=org)]
    legs += [Leg(org_wallet.pk, ct.pk, amount, None, False, day) for day, amount in pieces if amount]
    post_transfer(kind=kind, org=org, memo=memo, idempotency_key=key, legs=legs)


# ---------------------------------------------------------------- starting a checkout


def purchase_start(*, org: Organization, user, amount_cents: int, success_url, cancel_url) -> Purchase:
    """Create the pending Purchase, then its Checkout Session (price from the server-side amount).

    `success_url` and `cancel_url` are callables: purchase id -> absolute URL.
    """
    credits = credits_for_cents(amount_cents)
    purchase = Purchase.objects.create(org=org, created_by=user, amount_cents=amount_cents, credits=credits)
    try:
        session = stripe_client.create_checkout_session(
            amount_cents=amount_cents,
            currency=purchase.currency,
            credits=credits,
            purchase_id=purchase.pk,
            # Unique per purchase even across databases sharing one Stripe account (ids restart, times don't).
            purchase_key=f"{purchase.pk}-{int(purchase.created_at.timestamp() * 1_000_000)}",
            org_id=org.pk,
            org_name=org.name,
            customer_email=getattr(user, "email", ""),
            success_url=success_url(purchase.pk),
            cancel_url=cancel_url(purchase.pk),
        )
    except stripe_client.StripeError as exc:
        log.warning("stripe checkout create failed purchase=%s: %s", purchase.pk, exc)
        Purchase.objects.filter(pk=purchase.pk).update(status=PurchaseStatus.FAILED, updated_at=timezone.now())
        raise PurchaseError("We could not reach Stripe to start the checkout. Nothing was charged; try again.") from exc
    if session.get("client_reference_id") != str(purchase.pk) or session.get("amount_total") != amount_cents:
        log.error("checkout session %s does not match purchase %s", session.get("id"), purchase.pk)
        Purchase.objects.filter(pk=purchase.pk).update(status=PurchaseStatus.FAILED, updated_at=timezone.now())
        raise PurchaseError("Stripe returned a checkout for a different purchase. Nothing was charged; try again.")
    purchase.stripe_session_id = session["id"]
    purchase.checkout_url = session.get("url") or ""
    purchase.save(update_fields=["stripe_session_id", "checkout_url", "updated_at"])
    return purchase


def purchase_cancel(purchase: Purchase) -> Purchase:
    """The buyer's "Cancel checkout": expire the unpaid session so its link can't be paid later.

    The intent is recorded first (under the row lock), so the expiry reads "Cancelled" whichever comes first,
    this call's answer or Stripe's `checkout.session.expired` webhook. A session that was paid meanwhile
    still becomes Paid (Stripe refuses to expire it; the webhook and the success page settle it)."""
    with transaction.atomic():
        locked = Purchase.objects.select_for_update().get(pk=purchase.pk)
        if locked.status != PurchaseStatus.PENDING or not locked.stripe_session_id:
            return locked
        if locked.cancelled_at is None:
            locked.cancelled_at = timezone.now()
            locked.save(update_fields=["cancelled_at", "updated_at"])
    try:
        session = stripe_client.expire_checkout_session(locked.stripe_session_id)
    except stripe_client.StripeError as exc:
        # Already paid or already expired: Stripe refuses; the webhook and success page settle it.
        log.info("cancel: session %s not expired: %s", locked.stripe_session_id, exc)
        return locked
    return purchase_sync_session(session, purchase=locked) or locked


# ---------------------------------------------------------------- fulfilment


def purchase_for_session(session) -> Purchase | None:
    """The purchase a Checkout Session belongs to: by session id, else by client_reference_id + org."""
    purchase = Purchase.objects.filter(stripe_session_id=session["id"]).first()
    if purchase is not None:
        return purchase
    ref = session.get("client_reference_id") or ""
    meta = session.get("metadata") or {}
    if ref.isascii() and ref.isdigit():  # '²'.isdigit() is True and int('²') raises
        purchase = Purchase.objects.filter(pk=int(ref), stripe_session_id__isnull=True).first()
        if purchase is not None and str(purchase.org_id) == str(meta.get("org_id")):
            return purchase
    return None


def _id_of(value) -> str:
    if value is None:
        return ""
    return value if isinstance(value, str) else value.get("id", "")


def purchase_sync_session(session, *, event_type: str = "", purchase: Purchase | None = None) -> Purchase | None:
    """Bring the purchase in line with a (freshly retrieved) Checkout Session. Idempotent.

    Paid -> credit the org wallet once (keyed by the session id) and pay any outstanding balance first.
    Expired unpaid -> Cancelled if the buyer cancelled it on our cancel page, else Expired. An async payment that
    failed -> Failed. Otherwise it stays Pending.
    """
    found = purchase or purchase_for_session(session)
    if found is None:
        return None
    with transaction.atomic(savepoint=False):
        purchase = Purchase.objects.select_for_update(of=("self",)).select_related("org", "created_by").get(pk=found.pk)
        changed = not purchase.stripe_session_id
        purchase.stripe_session_id = purchase.stripe_session_id or session["id"]
        if session.get("amount_total") is not None and session["amount_total"] != purchase.amount_cents:
            log.error("session %s amount %s != purchase %s", session["id"], session["amount_total"], purchase.pk)
            return purchase
        paid = session.get("status") == "complete" and session.get("payment_status") in ("paid", "no_payment_required")
        if purchase.transfer_id is None and paid:
            _fulfil(purchase, session)
            changed = False
        elif purchase.transfer_id is None and purchase.status == PurchaseStatus.PENDING:
            if session.get("status") == "expired":
                ended = PurchaseStatus.CANCELLED if purchase.cancelled_at else PurchaseStatus.EXPIRED
                purchase.status, changed = ended, True
            elif event_type == "checkout.session.async_payment_failed":
                purchase.status, changed = PurchaseStatus.FAILED, True
        if changed:
            purchase.save()
    return purchase


_LEDGER_IDS = (
    f"SELECT ct.id, (SELECT id FROM {Wallet._meta.db_table} WHERE kind = 'external' AND code = %s), "
    f"(SELECT id FROM {Wallet._meta.db_table} WHERE kind = 'org' AND org_id = %s) "
    f"FROM {CreditType._meta.db_table} ct WHERE ct.slug = 'org-allocated'"
)


def _credit_org_wallet(
    *,
    org: Organization,
    amount: int,
    actor,
    memo: str,
    idempotency_key: str,
    kind: str = TransferKind.PURCHASE,
    expires_on: datetime.date = NEVER,
) -> Transfer:
    """`org_credit_from_stripe` with its three look-ups done in one round trip (the webhook's hot path);
    the same legs (into the pocket of day `expires_on`), so the same fingerprint. Falls back to the service
    when a wallet does not exist yet."""
    with connection.cursor() as cursor:
        cursor.execute(_LEDGER_IDS, [ExternalCode.STRIPE, org.pk])
        row = cursor.fetchone()
    if row is None or None in row:
        posted = org_credit_from_stripe(
            org=org,
            amount=amount,
            actor=actor,
            memo=memo,
            idempotency_key=idempotency_key,
            kind=kind,
            expires_on=expires_on,
        )
        return posted.transfer
    ct_id, stripe_wallet_id, org_wallet_id = row
    check_amount(amount)
    return post_transfer(
        kind=kind,
        org=org,
        actor=actor,
        memo=memo,
        idempotency_key=idempotency_key,
        legs=[
            Leg(stripe_wallet_id, ct_id, -amount, org.pk, is_external=True),
            Leg(org_wallet_id, ct_id, amount, None, is_external=False, expires_on=expires_on),
        ],
    ).transfer


def credit_paid(
    *,
    org: Organization,
    credits: int,
    actor,
    memo: str,
    key: str,
    label: str,
    kind: str = TransferKind.PURCHASE,
    expires_on: datetime.date | None = None,
) -> Transfer:
    """The fulfilment every Stripe payment shares (Buy Credits, auto top-up): lock the org's outstanding balance,
    credit the org wallet's pocket of day `expires_on` (None: never) under idempotency key `key` (a replay
    credits nothing new), then pay any outstanding balance first from those credits (key `<key>:outstanding`).
    The caller holds its own row lock (Purchase or TopUpAttempt), where it recorded `expires_on`."""
    day = expires_on or NEVER
    ob = lock_outstanding(org.pk)
    transfer = _credit_org_wallet(
        org=org, amount=credits, actor=actor, memo=memo, idempotency_key=key, kind=kind, expires_on=day
    )
    if ob.credits:
        settle = min(ob.credits, credits)
        post_transfer(
            kind=TransferKind.REFUND,
            org=org,
            memo=f"Outstanding balance paid from {label}",
            idempotency_key=f"{key}:outstanding",
            legs=[
                leg(Wallet.objects.for_org(org), _org_allocated(), -settle, expires_on=day),
                leg(Wallet.objects.external(ExternalCode.STRIPE), _org_allocated(), settle, funding_org=org),
            ],
        )
        ob.credits -= settle
        ob.save(update_fields=["credits", "updated_at"])
    return transfer


def _fulfil(purchase: Purchase, session) -> None:
    org = purchase.org
    # The day is fixed now, once, under the purchase's row lock: a later change of the setting leaves it be.
    purchase.credits_expire_on = purchased_credits_expire_on(org)
    transfer = credit_paid(
        org=org,
        credits=purchase.credits,
        actor=purchase.created_by,
        memo=f"Bought {purchase.credits:,} credits for {purchase.dollars} (purchase #{purchase.pk})",
        key=f"stripe:{session['id']}",
        label=f"purchase #{purchase.pk}",
        expires_on=purchase.credits_expire_on,
    )
    pi = session.get("payment_intent")
    purchase.payment_intent_id = _id_of(pi)
    if pi is not None and not isinstance(pi, str):
        purchase.charge_id = _id_of(pi.get("latest_charge"))
    purchase.transfer_id = transfer.pk
    purchase.status = PurchaseStatus.PAID
    purchase.paid_at = timezone.now()
    purchase.save()
    log.info(
        "purchase_paid purchase=%s org=%s credits=%s transfer=%s", purchase.pk, org.pk, purchase.credits, transfer.pk
    )


def purchase_refresh(purchase: Purchase) -> Purchase:
    """The success page: re-fetch the session and fulfil if paid (whichever of this and the webhook comes
    first credits; the other is a no-op)."""
    if purchase.status != PurchaseStatus.PENDING or not purchase.stripe_session_id:
        return purchase
    session = stripe_client.retrieve_checkout_session(purchase.stripe_session_id)
    return purchase_sync_session(session) or purchase


# ---------------------------------------------------------------- refunds and disputes


def _purchase_for_charge(charge) -> Purchase | None:
    charge_id, pi_id = _id_of(charge), _id_of(charge.get("payment_intent"))
    purchase = Purchase.objects.filter(charge_id=charge_id).first() if charge_id else None
    if purchase is None and pi_id:
        purchase = Purchase.objects.filter(payment_intent_id=pi_id).first()
    if purchase is None:
        meta = charge.get("metadata") or {}
        ref = str(meta.get("purchase_id", ""))
        if ref.isascii() and ref.isdigit():
            purchase = Purchase.objects.filter(pk=int(ref), org_id=meta.get("org_id")).first()
    if purchase is not None and purchase.transfer_id is None and purchase.stripe_session_id:
        # A refund or dispute event overtook the checkout events: fulfil first, from the session.
        purchase = purchase_refresh(purchase)
    return purchase


def _status_after_claims(p: Purchase) -> str:
    if p.dispute_id and (p.dispute_status in OPEN_DISPUTE or p.dispute_status in LOST_DISPUTE):
        return PurchaseStatus.DISPUTED
    if p.refunded_cents >= p.amount_cents:
        return PurchaseStatus.REFUNDED
    if p.refunded_cents > 0:
        return PurchaseStatus.PARTIALLY_REFUNDED
    return PurchaseStatus.PAID


# One charge, two claims on its credits: refunds (Stripe's cumulative amount_refunded) and a dispute. They never
# claim the same credit twice, whatever order the events arrive in: the refund's claim is
# credits x amount_refunded / amount, and an open or lost dispute claims at most what the refunds left,
#     dispute claim = min(credits x dispute amount / amount, credits - refund claim),
# so refunds + dispute <= credits. Every handler moves the paid thing to exactly these claims for the Stripe facts
# it has (the re-fetched charge, the re-fetched dispute, and what earlier events recorded), taking back or giving
# back only the difference; the same final facts give the same claims, and so the same wallet and outstanding
# balance, in any order.
#
# "What was paid" is a Purchase (Buy Credits) or a TopUpAttempt (auto top-up): both carry org, credits,
# amount_cents, charge_id, refunded_cents/credits and dispute_id/status/held/outstanding, plus `ledger_key` (the
# key of the credits it bought; the refund and dispute keys extend it) and `claim_label` (how memos name it).
# The functions below take such a row already locked by the caller, with the org's OutstandingBalance locked
# after it (the caller's lock order: its own row(s), then the outstanding balance, then the pockets).


def sync_claims_refunds(p: Purchase | TopUpAttempt, charge, ob: OutstandingBalance) -> int:
    """Refunds of what was paid (a locked Purchase or TopUpAttempt): bring the refund claim up to the charge's
    amount_refunded (which never goes down at Stripe). Credits the dispute already holds and the refund now
    claims change claim, not wallet: the dispute's claim shrinks to what the refunds leave, and only the rest is
    taken back. Returns the credits taken back now. The caller saves the row."""
    refunded = min(int(charge.get("amount_refunded") or 0), p.amount_cents)
    if refunded <= p.refunded_cents:
        return 0  # a duplicate or stale event
    target = p.credits * refunded // p.amount_cents
    disputed = p.dispute_held_credits + p.dispute_outstanding_credits
    overlap = max(0, target + disputed - p.credits)  # held for the dispute, now refunded: already taken back
    from_outstanding = min(overlap, p.dispute_outstanding_credits)
    p.dispute_outstanding_credits -= from_outstanding
    p.dispute_held_credits -= overlap - from_outstanding
    _shrink_dispute_days(p)
    delta = target - p.refunded_credits - overlap
    if delta > 0:
        _take_back(
            org=p.org,
            credits=delta,
            kind=TransferKind.REFUND,
            key=f"{p.ledger_key}:refund:{refunded}",
            memo=f"Refund of {fmt_dollars(refunded - p.refunded_cents)} on {p.claim_label}",
            ob=ob,
            prefer=p.expires_on,
        )
    p.refunded_cents, p.refunded_credits = refunded, target
    p.charge_id = p.charge_id or _id_of(charge)
    log.info("refund %s refunded_cents=%s credits=%s", p.claim_label, refunded, max(delta, 0))
    return max(delta, 0)


def _shrink_dispute_days(p: Purchase | TopUpAttempt) -> None:
    """Keep the recorded dispute pieces at the held credits: a refund that claims held credits keeps them at
    Stripe, so they will not come back on a won dispute (the latest-taken pieces go first)."""
    pieces = [[day, amount] for day, amount in p.dispute_days or []]
    excess = sum(amount for _, amount in pieces) - p.dispute_held_credits
    while excess > 0 and pieces:
        cut = min(excess, pieces[-1][1])
        pieces[-1][1] -= cut
        excess -= cut
        if not pieces[-1][1]:
            pieces.pop()
    p.dispute_days = pieces


def refund_is_new(p: Purchase | TopUpAttempt, charge) -> bool:
    """False for a duplicate or stale refund event: Stripe's cumulative total never goes down."""
    return min(int(charge.get("amount_refunded") or 0), p.amount_cents) > p.refunded_cents


def purchase_sync_refunds(charge) -> Purchase | None:
    """Take back the credits for Stripe's cumulative amount_refunded on the charge (never twice, and never
    credits a dispute already holds)."""
    found = _purchase_for_charge(charge)
    if found is None or found.transfer_id is None:
        return found
    with transaction.atomic():
        p = Purchase.objects.select_for_update(of=("self",)).select_related("org").get(pk=found.pk)
        if not refund_is_new(p, charge):
            return p  # a duplicate or stale event: Stripe's total never goes down
        ob = lock_outstanding(p.org_id)
        sync_claims_refunds(p, charge, ob)
        p.status = _status_after_claims(p)
        p.save()
        return p


def _release_dispute(p: Purchase | TopUpAttempt, dispute_id: str, ob: OutstandingBalance) -> None:
    """A dispute closed without a loss: give its claim back. Like a purchase, the credits pay the org's
    outstanding balance first (that part is simply no longer owed); the rest goes back to the org wallet."""
    claim = p.dispute_held_credits + p.dispute_outstanding_credits
    cancel = min(claim, ob.credits)
    if cancel:
        ob.credits -= cancel
        ob.save(update_fields=["credits", "updated_at"])
    _give_back(
        org=p.org,
        pieces=_release_pieces(p, claim - cancel),
        kind=TransferKind.DISPUTE_RELEASE,
        key=f"{p.ledger_key}:dispute:{dispute_id}:release",
        memo=f"Dispute won: credits released on {p.claim_label}",
    )
    p.dispute_held_credits = p.dispute_outstanding_credits = 0
    p.dispute_days = []


def _release_pieces(p: Purchase | TopUpAttempt, credits: int) -> list[tuple[datetime.date, int]]:
    """`credits` of a won dispute as (expiry day, credits): first the pockets the hold took them from, with
    their days (expiry travels with the credits; a day already past lands them in a pocket the next daily
    expiry run expires); any more (its outstanding part, paid meanwhile) with the paid thing's own day."""
    pieces, left = [], credits
    for day, amount in _days_of(p.dispute_days or []):
        piece = min(left, amount)
        if piece:
            pieces.append((day, piece))
            left -= piece
    if left:
        pieces.append((p.expires_on, left))
    return pieces


def sync_claims_dispute(p: Purchase | TopUpAttempt, dispute, charge, ob: OutstandingBalance) -> None:
    """Move what was paid (a locked Purchase or TopUpAttempt, the org's outstanding balance locked after it) to
    the claims of the (re-fetched) dispute and charge. Open dispute: hold the disputed credits the refunds have
    not taken back (what the wallet no longer has becomes the outstanding balance). Lost: they stay taken. Won:
    release them. The charge's refunds are applied first, so the hold never claims them again. The caller saves
    the row. Exactly once: the claim recorded on the row only grows to the target (and the ledger keys
    `<ledger_key>:dispute:<id>:hold` / `:release` are unique per org); a closed dispute is final."""
    status = dispute.get("status", "")
    sync_claims_refunds(p, charge, ob)
    if p.dispute_id and p.dispute_id != dispute["id"] and p.dispute_status not in CLOSED_NO_LOSS:
        log.warning("second dispute %s on %s ignored while %s is open", dispute["id"], p.claim_label, p.dispute_id)
        return
    if p.dispute_id == dispute["id"] and (p.dispute_status in LOST_DISPUTE or p.dispute_status in CLOSED_NO_LOSS):
        return  # closed disputes are final; a late "created" or "updated" changes nothing
    if p.dispute_id != dispute["id"]:
        p.dispute_id, p.dispute_status, p.dispute_held_credits, p.dispute_outstanding_credits = dispute["id"], "", 0, 0
        p.dispute_days = []
    claim = p.dispute_held_credits + p.dispute_outstanding_credits
    if status in OPEN_DISPUTE or status in LOST_DISPUTE:
        want = min(p.credits * int(dispute.get("amount") or 0) // p.amount_cents, p.credits - p.refunded_credits)
        if want > claim:
            owed, taken = _take_back(
                org=p.org,
                credits=want - claim,
                kind=TransferKind.DISPUTE_HOLD,
                key=f"{p.ledger_key}:dispute:{dispute['id']}:hold",
                memo=f"Credits held for a payment dispute on {p.claim_label}",
                ob=ob,
                prefer=p.expires_on,
            )
            p.dispute_outstanding_credits += owed
            p.dispute_held_credits += want - claim - owed
            p.dispute_days = (p.dispute_days or []) + [[day.isoformat(), amount] for day, amount in taken]
        p.dispute_status = status
    elif status in CLOSED_NO_LOSS:
        if claim:
            _release_dispute(p, dispute["id"], ob)
        p.dispute_status = status
    else:
        p.dispute_status = p.dispute_status or status
    log.info("dispute %s dispute=%s status=%s", p.claim_label, dispute["id"], status)


def purchase_sync_dispute(dispute, charge=None) -> Purchase | None:
    """A dispute on a Buy Credits purchase: sync_claims_dispute under the purchase's row lock."""
    charge_id = _id_of(dispute.get("charge"))
    if charge is None and charge_id:
        charge = stripe_client.retrieve_charge(charge_id)
    found = _purchase_for_charge(charge) if charge is not None else None
    if found is None or found.transfer_id is None:
        return found
    with transaction.atomic():
        p = Purchase.objects.select_for_update(of=("self",)).select_related("org").get(pk=found.pk)
        ob = lock_outstanding(p.org_id)
        sync_claims_dispute(p, dispute, charge, ob)
        p.status = _status_after_claims(p)
        p.save()
        return p


# ---------------------------------------------------------------- reads


def org_purchases(org: Organization, limit: int = 20):
    return (
        Purchase.objects.filter(org=org).select_related("created_by", "transfer").order_by("-created_at", "-id")[:limit]
    )


def purchase_paid_outstanding(purchase: Purchase) -> int:
    """Credits of this purchase that went to pay the org's outstanding balance."""
    key = f"stripe:{purchase.stripe_session_id}:outstanding"
    return (
        Transfer.objects.filter(org_id=purchase.org_id, idempotency_key=key).values_list("amount", flat=True).first()
        or 0
    )


def purchase_transfers(purchase: Purchase):
    return Transfer.objects.filter(org=purchase.org, idempotency_key__startswith=f"stripe:{purchase.stripe_session_id}")
