"""Credits that expire (issue 19, docs/expiry.md).

`run_expiry(day)` moves every pocket whose expiry day has come into the external Expired account: one transfer of
kind Expiry per org (per batch of up to BATCH pockets), through `wallets.ledger.post_transfer` like any other
movement. Exactly once per pocket and day whatever the number of workers: each batch locks its pockets in
ascending id (the ledger's one lock order) and re-reads them under the lock, so a second worker waits on the
locks and then finds them empty; the idempotency key (day, first pocket, that pocket's last entry) is the
backstop, and a run repeated the same day finds nothing to do.

`announce_expiring(today)` emails, once, everyone whose credits expire within the next 7 days: an org wallet's
credits to the org's owners and admins, a member's credits funded by the org to that member. The
ExpiryNotice row (unique per org, person and day) is inserted in the transaction that schedules the email on
commit.
"""

from __future__ import annotations

import datetime
import logging
from collections import defaultdict
from dataclasses import dataclass

from django.db import OperationalError, connection, transaction
from django.urls import reverse
from django.utils import timezone

from core.errors import DomainError
from core.money import credits_and_dollars
from core.siteurl import absolute_url
from core.sql import load_sql
from core.tasks import send_email
from orgs.models import Organization
from wallets.errors import LedgerBusy
from wallets.ledger import Leg, post_transfer
from wallets.models import NEVER, ExternalCode, TransferKind, Wallet

log = logging.getLogger("credits.expiry")

BATCH = 20_000  # pockets per Expiry transfer: one statement and one transaction each
NOTICE_DAYS = 7  # owners, admins and members are told this many days before their credits expire

_DUE_ORGS = load_sql(__file__, "due_orgs.sql")
_LOCK_DUE = load_sql(__file__, "lock_due.sql")
_EXPIRED_POCKETS = load_sql(__file__, "expired_pockets.sql")
_DUE_NOW = load_sql(__file__, "due_now.sql")
_LAST_ENTRY = "SELECT max(id) FROM wallets_entry WHERE pocket_id = %s"
_EXPIRING = load_sql(__file__, "expiring.sql")


class InvalidExpiryDay(DomainError):
    message = "Credits can only be expired up to today."


@dataclass(frozen=True, slots=True)
class ExpiryRun:
    day: datetime.date
    orgs: int  # orgs whose credits expired in this run
    pockets: int
    credits: int
    transfers: int
    busy: int = 0  # orgs skipped because their pockets stayed locked past the lock timeout (the next run retries)


@dataclass(frozen=True, slots=True)
class _Batch:
    pockets: int
    credits: int
    moved: bool


@dataclass(frozen=True, slots=True)
class Due:
    """What a run for `day` would expire now (read without locks: a racer may take some of it first)."""

    day: datetime.date
    orgs: int
    pockets: int
    credits: int

    @property
    def credits_text(self) -> str:
        return credits_and_dollars(self.credits)


def due_now(day: datetime.date | None = None) -> Due:
    """The orgs, pockets and credits due to expire on or before `day` (default today). One query."""
    day = day or timezone.localdate()
    with connection.cursor() as cur:
        cur.execute(_DUE_NOW, [day])
        orgs, pockets, credits = cur.fetchone()
    return Due(day, int(orgs), int(pockets), int(credits))


def run_expiry(day: datetime.date | None = None) -> ExpiryRun:
    """Expire every org's credits whose expiry day is `day` (default today) or earlier. Safe to run any number of
    times, at once or late: what expired is gone from its pocket, so a repeat finds nothing. A day after today is
    refused (InvalidExpiryDay) before anything is read or written."""
    today = timezone.localdate()
    if day is None:
        day = today
    if not isinstance(day, datetime.date) or isinstance(day, datetime.datetime):
        raise InvalidExpiryDay("Give the expiry day as a date (YYYY-MM-DD).")
    if day > today:
        raise InvalidExpiryDay(
            f"{day:%Y-%m-%d} is after today ({today:%Y-%m-%d}): credits expire on their day, not before."
        )
    with connection.cursor() as cur:
        cur.execute(_DUE_ORGS, [day])
        org_ids = [row[0] for row in cur.fetchall()]
    if not org_ids:
        return ExpiryRun(day, 0, 0, 0, 0)
    expired = Wallet.objects.external(ExternalCode.EXPIRED)
    with connection.cursor() as cur:
        cur.execute(_EXPIRED_POCKETS, {"expired": expired.pk, "never": NEVER, "now": timezone.now(), "day": day})
    orgs = Organization.objects.in_bulk(org_ids)
    touched = pockets = credits = transfers = busy = 0
    for org_id in org_ids:
        org = orgs.get(org_id)
        if org is None:
            continue
        moved_any = False
        try:
            while True:
                batch = _expire_batch(org, day, expired)
                if batch.moved:
                    moved_any = True
                    pockets += batch.pockets
                    credits += batch.credits
                    transfers += 1
                if batch.pockets < BATCH or not batch.moved:
                    break
        except LedgerBusy:
            busy += 1
            log.warning("expiry org_id=%s day=%s: pockets busy, left for the next run", org_id, day)
        touched += moved_any
    log.info(
        "expiry day=%s orgs=%s pockets=%s credits=%s transfers=%s busy=%s",
        day,
        touched,
        pockets,
        credits,
        transfers,
        busy,
    )
    return ExpiryRun(day, touched, pockets, credits, transfers, busy)


def _expire_batch(org: Organization, day: datetime.date, expired: Wallet) -> _Batch:
    """Lock up to BATCH of the org's due pockets (ascending id, nothing locked before) and move their whole
    balances to the Expired account in one transfer."""
    with transaction.atomic():
        try:
            with connection.cursor() as cur:
                cur.execute(_LOCK_DUE, [org.pk, day, BATCH])
                rows = cur.fetchall()
                if not rows:
                    return _Batch(0, 0, moved=False)
                cur.execute(_LAST_ENTRY, [rows[0][0]])
                ((last_entry,),) = cur.fetchall()
        except OperationalError as exc:
            if getattr(exc.__cause__, "sqlstate", None) in {"55P03", "40P01"}:
                raise LedgerBusy() from exc
            raise
        legs: list[Leg] = []
        per_type: dict[int, int] = defaultdict(int)
        for _pocket_id, wallet_id, ct_id, funding_org_id, expires_on, balance in rows:
            legs.append(Leg(wallet_id, ct_id, -balance, funding_org_id, False, expires_on))
            per_type[ct_id] += balance
        legs += [Leg(expired.pk, ct_id, amount, org.pk, True, NEVER) for ct_id, amount in sorted(per_type.items())]
        posted = post_transfer(
            kind=TransferKind.EXPIRY,
            legs=legs,
            org=org,
            memo=f"Credits that expired on or before {day:%Y-%m-%d}",
            # The batch's identity: its first pocket and that pocket's last movement (an expiry empties the
            # pocket, so the same key can only come back for the very same batch).
            idempotency_key=f"expiry:{day:%Y-%m-%d}:{rows[0][0]}:{last_entry}",
        )
    return _Batch(len(rows), sum(per_type.values()), moved=not posted.replayed)


@dataclass(frozen=True, slots=True)
class Announced:
    today: datetime.date
    notices: int  # emails scheduled (one per person, org and expiry day)


def announce_expiring(today: datetime.date | None = None) -> Announced:
    """Email, once, each owner and admin about their org wallet's credits expiring within NOTICE_DAYS days, and
    each member about their own credits funded by the org. One statement finds, records and returns the notices
    still due; the emails are enqueued on commit. Safe to run at once: a concurrent run waits on the notice rows
    and then records nothing."""
    today = today or timezone.localdate()
    until = today + datetime.timedelta(days=NOTICE_DAYS)
    with transaction.atomic():
        with connection.cursor() as cur:
            cur.execute(_EXPIRING, {"today": today, "until": until, "now": timezone.now()})
            rows = cur.fetchall()
        for _org_id, org_name, slug, email, expires_on, org_credits, own_credits in rows:
            subject, body = _message(org_name, slug, expires_on, org_credits, own_credits)
            transaction.on_commit(
                lambda subject=subject, body=body, email=email: send_email.enqueue(
                    subject=subject, body=body, to=[email]
                )
            )
    return Announced(today, len(rows))


def _message(org_name: str, slug: str, expires_on: datetime.date, org_credits: int, own_credits: int):
    day = f"{expires_on:%B} {expires_on.day}, {expires_on.year}"
    total = org_credits + own_credits
    subject = f"{total:,} credits of {org_name} expire on {day}"
    lines = []
    if org_credits:
        link = absolute_url(reverse("billing:page", args=[slug]))
        lines.append(
            f"{credits_and_dollars(org_credits)} in {org_name}'s org wallet expire on {day}.\n"
            f"Hand them to members or use them before then: {link}"
        )
    if own_credits:
        link = absolute_url(reverse("wallet"))
        lines.append(
            f"{credits_and_dollars(own_credits)} that {org_name} gave you expire on {day}.\n"
            f"Use them before then: {link}"
        )
    body = "\n\n".join(lines) + (
        "\n\nExpired credits are gone for good: they leave the wallet on that day.\n"
        "You get this email once, 7 days before the credits expire.\n"
    )
    return subject, body
