"""Demo data: org Quantum Lab with an owner and five members, and a few past movements of each kind, all made
through the real services (the ledger primitive underneath). Idempotent: every step has a fixed idempotency key
or checks that it was done before, so a second run changes nothing."""

import uuid
from contextlib import contextmanager
from datetime import datetime, timedelta
from unittest import mock

from django.conf import settings
from django.core.management.base import BaseCommand
from django.db import transaction
from django.test.utils import override_settings
from django.utils import timezone

from alerts.models import AlertRule
from alerts.services import save_org_rules
from credit_requests.models import CreditRequest
from credit_requests.services import credit_request_approve, credit_request_create, credit_request_reject
from members.services import invitation_accept, invitation_create, member_defaults_update, member_remove, seat_assign
from orgs.models import Invitation, MemberDefaults, Membership, Organization, Role, User
from orgs.services import membership_add, org_create, user_create
from purchases.models import Purchase, PurchaseStatus
from schedules.models import Cadence, Mode, Recipients, Schedule
from schedules.services import schedule_save
from wallets.models import CreditType, Transfer
from wallets.services import (
    member_charge_usage,
    org_bulk_transfer,
    org_credit_from_stripe,
    org_grant_promo,
    org_transfer_to_member,
)

PASSWORD = "demo"  # noqa: S105 - demo accounts, printed by `make run`
OWNER = "admin@example.com"
MEMBERS = ["alice@example.com", "bob@example.com", "carol@example.com", "dave@example.com", "erin@example.com"]
FORMER_MEMBER = "frank@example.com"  # joined by invitation, was removed: his credits came back as a Return
ORG_NAME = "Quantum Lab"

# Credit requests: (requester, credits asked, reason). Each has a fixed client key, so a re-run is a replay.
_REQUESTS = {
    "carol": ("carol@example.com", 400, "Noise characterization runs"),
    "dave": ("dave@example.com", 2_000, "Extra hardware time"),
    "erin": ("erin@example.com", 400, "Error-mitigation experiments"),
}


def _request_key(name: str) -> uuid.UUID:
    return uuid.uuid5(uuid.NAMESPACE_URL, f"seed_demo:credit-request:{name}")


# The seeded history is quiet: the services email admins about requests, members about decisions and invitees
# their link, which would print a dozen emails to `make run`'s console (or send them, with EMAIL_URL set).
_NO_MAIL = {"default": {"BACKEND": "django.core.mail.backends.dummy.EmailBackend"}}
# Emails are tasks: run them at once (into _NO_MAIL) rather than queue them for the worker.
_RUN_NOW = {"default": {"BACKEND": "django.tasks.backends.immediate.ImmediateBackend"}}


def _user(email: str, **extra) -> User:
    user = User.objects.filter(email=email).first()
    if user is None:
        user = user_create(email=email, password=None, name=email.split("@")[0].title(), **extra)
        # Demo passwords are deliberately short; set them directly rather than through validators.
        user.set_password(PASSWORD)
        user.save(update_fields=["password"])
    return user


def _done(org: Organization, key: str) -> bool:
    """Whether the seed already posted this movement (so a re-run skips it, even if a member has left since)."""
    return Transfer.objects.filter(org=org, idempotency_key=key).exists()


def _seed_purchase_row(org: Organization, owner: User, key: str) -> None:
    """The Credits tab's Purchases list shows a seeded purchase like a paid one: a Paid Purchase row linked to
    its ledger transfer (no Stripe session: it was never checked out, so reconcile_stripe leaves it alone).
    Also fills in the row for a database seeded before purchases had one; it moves no credits."""
    transfer = Transfer.objects.get(org=org, idempotency_key=key)
    if Purchase.objects.filter(transfer=transfer).exists():
        return
    Purchase.objects.create(
        org=org,
        created_by=owner,
        amount_cents=transfer.amount * 100 // settings.CREDITS_PER_USD,
        credits=transfer.amount,
        status=PurchaseStatus.PAID,
        transfer=transfer,
        created_at=transfer.created_at,
        paid_at=transfer.created_at,
    )


class Command(BaseCommand):
    help = "Create the demo org Quantum Lab, its people, and a few past movements of each kind (idempotent)."

    def handle(self, *args, **options):
        with override_settings(MAILERS=_NO_MAIL, TASKS=_RUN_NOW), transaction.atomic():
            org, owner = self._people()
            self._history(org, owner)
            self._keep_it_full(org, owner)
        memberships = {m.user.email: m for m in Membership.objects.filter(org=org).select_related("user")}
        self.stdout.write(self.style.SUCCESS(f"Demo org '{ORG_NAME}' is ready."))
        self.stdout.write("Sign in at http://127.0.0.1:8000/ with (password 'demo' for all):")
        self.stdout.write(f"  {OWNER}  (owner of {ORG_NAME}, Django staff)")
        for email in MEMBERS:
            role = memberships[email].get_role_display()
            self.stdout.write(f"  {email}  ({role})")

    def _people(self) -> tuple[Organization, User]:
        owner = _user(OWNER, is_staff=True)
        if not owner.is_superuser:
            owner.is_superuser = True
            owner.save(update_fields=["is_superuser"])
        at = _Clock()  # the org and its people go back 90 days, before the seeded history
        org = Organization.objects.filter(name=ORG_NAME).first()
        if org is None:
            with at(90):
                org = org_create(name=ORG_NAME, owner=owner)
            Organization.objects.filter(pk=org.pk).update(created_at=at.when(90))
            Membership.objects.filter(org=org, user=owner).update(joined_at=at.when(90))
        people = {email: _user(email) for email in MEMBERS}
        roles = {"alice@example.com": Role.ADMIN, "bob@example.com": Role.MANAGER}
        for email, user in people.items():
            if not Membership.objects.filter(org=org, user=user).exists():
                with at(89):
                    joined = membership_add(org=org, user=user, role=roles.get(email, Role.MEMBER))
                Membership.objects.filter(pk=joined.pk).update(joined_at=at.when(89))
        if not org.seats:  # a few seats, so the Billing page's Seats section has something to manage
            org.seats = 10
            org.save(update_fields=["seats"])
        return org, owner

    def _history(self, org: Organization, owner: User) -> None:
        """Past movements of each kind, spread over the last 90 days (oldest first, so ids follow time and the
        Billing chart has a story). Together they leave the org wallet with 50,000 Org-allocated and 5,000 Promo
        credits (the README's figures): 53,700 bought, 3,700 given out for good (transfers 2,500, the monthly bulk
        750, an approved request 250, a seat 200); Frank's 500 came back when he was removed."""
        m = {mm.user.email: mm for mm in Membership.objects.filter(org=org).select_related("user")}
        org_allocated = CreditType.objects.get(slug="org-allocated")
        promo = CreditType.objects.get(slug="promo")
        at = _Clock()

        def purchase(days_ago: int, key: str, amount: int, memo: str) -> None:
            if not _done(org, key):
                with at(days_ago):
                    org_credit_from_stripe(org=org, amount=amount, actor=owner, memo=memo, idempotency_key=key)
            _seed_purchase_row(org, owner, key)

        def transfer(days_ago: int, key: str, email: str, ct: CreditType, amount: int, memo: str) -> None:
            if not _done(org, key):
                with at(days_ago):
                    org_transfer_to_member(
                        org=org,
                        membership_id=m[email].pk,
                        credit_type=ct,
                        amount=amount,
                        actor=owner,
                        memo=memo,
                        idempotency_key=key,
                    )

        # Credits come in from outside (Stripe, Promotions) and go to members, in both credit types.
        purchase(88, "seed:purchase:1", 40_000, "Initial purchase")
        if not _done(org, "seed:promo:1"):
            with at(84):
                org_grant_promo(org=org, amount=4_500, memo="Welcome promo", idempotency_key="seed:promo:1")
        transfer(76, "seed:transfer:1", "alice@example.com", org_allocated, 1_500, "Project kickoff")
        purchase(62, "seed:purchase:2", 12_500, "Top-up")
        transfer(55, "seed:transfer:2", "carol@example.com", org_allocated, 1_000, "Monthly allocation")
        transfer(47, "seed:transfer:3", "dave@example.com", promo, 1_000, "Try the new simulators")
        purchase(31, "seed:purchase:3", 1_200, "Top-up for the monthly allocation")

        # A bulk transfer: 250 each to the three Members, one movement.
        if not _done(org, "seed:bulk:1"):
            with at(30):
                org_bulk_transfer(
                    org=org,
                    credit_type=org_allocated,
                    amount_per_member=250,
                    membership_ids=[m[e].pk for e in ("carol@example.com", "dave@example.com", "erin@example.com")],
                    actor=owner,
                    memo="Monthly allocation",
                    idempotency_key="seed:bulk:1",
                )

        # Credit requests: Carol's approved for less than she asked, Dave's rejected, Erin's still pending (the
        # Credit Requests tab's badge). (asked, decided) days ago.
        decisions = {
            "carol": (25, 24, lambda r: credit_request_approve(org=org, request_id=r.pk, actor=owner, amount=250)),
            "dave": (
                21,
                20,
                lambda r: credit_request_reject(org=org, request_id=r.pk, actor=owner, reason="Budget exhausted"),
            ),
            "erin": (1, None, None),
        }
        for name, (email, amount, reason) in _REQUESTS.items():
            client_key = _request_key(name)
            if CreditRequest.objects.filter(org=org, client_key=client_key).exists():
                continue
            asked, decided, decide = decisions[name]
            with at(asked):
                request = credit_request_create(
                    org=org, user=m[email].user, amount=amount, reason=reason, client_key=client_key
                ).request
                # The row's own default clock is not the seed's: say when it was really asked.
                CreditRequest.objects.filter(pk=request.pk).update(created_at=at.when(asked))
            if decide:
                with at(decided):
                    decide(request)

        # Member defaults (Settings): a seat comes with 200 credits, a new member gets 100. Carol gets a seat.
        if not MemberDefaults.objects.filter(org=org).exists():
            with at(18):
                member_defaults_update(org=org, actor=owner, seat_assignment_credits=200, default_credit_allocation=100)
        if m["carol@example.com"].seat_assignments == 0:
            with at(15):
                seat_assign(org=org, membership_id=m["carol@example.com"].pk, actor=owner)

        # Expiring credits (docs/expiry.md): a conference promo that expires 20 days from today, still in the org
        # wallet, so the Balance card and the transfer preview show "1,500 credits ($15.00) expire on D".
        if not _done(org, "seed:promo:2"):
            with at(10):
                org_grant_promo(
                    org=org,
                    amount=1_500,
                    memo="Conference promo",
                    idempotency_key="seed:promo:2",
                    expires_on=at.today.date() + timedelta(days=20),
                )
        # Usage: Carol's simulator runs, charged to the credits the org gave her (she keeps 1,000).
        if not _done(org, "seed:usage:1"):
            with at(6):
                member_charge_usage(
                    org=org,
                    membership_id=m["carol@example.com"].pk,
                    amount=700,
                    description="Simulator runs",
                    idempotency_key="seed:usage:1",
                )

        # A former member: Frank was invited with 400 credits, joined (plus the 100 default allocation), and was
        # removed: the 500 came back to the org wallet as one Return.
        if not Invitation.objects.filter(org=org, email=FORMER_MEMBER).exists():
            frank = User.objects.filter(email=FORMER_MEMBER).first() or user_create(
                email=FORMER_MEMBER, password=None, name="Frank"
            )
            with at(5):
                invitation = invitation_create(
                    org=org, email=FORMER_MEMBER, role=Role.MEMBER, credit_allocation=400, actor=owner
                )
                Invitation.objects.filter(pk=invitation.pk).update(created_at=at.when(5))
            with at(4):
                joined = invitation_accept(invitation_id=invitation.pk, user=frank)
                Membership.objects.filter(pk=joined.membership.pk).update(joined_at=at.when(4))
            with at(2):
                member_remove(org=org, membership_id=joined.membership.pk, actor=owner)

    def _keep_it_full(self, org: Organization, owner: User) -> None:
        """What keeps the pool full, set up but not yet due, so nothing moves: a low-balance alert at 10,000
        credits on the org wallet's total (it holds 55,000), and the "Monthly allocation" as a schedule of 100
        Org-allocated credits to every member on the 1st, from next month."""
        if not AlertRule.objects.filter(org=org).exists():
            save_org_rules(org=org, thresholds={None: 10_000}, actor=owner)
        if not Schedule.objects.filter(org=org, name="Monthly allocation").exists():
            today = timezone.localdate()
            first_of_next_month = (today.replace(day=1) + timedelta(days=32)).replace(day=1)
            schedule_save(
                Schedule(
                    org=org,
                    name="Monthly allocation",
                    recipients=Recipients.ALL,
                    credit_type=CreditType.objects.get(slug="org-allocated"),
                    amount=100,
                    mode=Mode.ADD,
                    cadence=Cadence.MONTHLY,
                    day_of_month=1,
                    start_date=first_of_next_month,
                    created_by=owner,
                )
            )


class _Clock:
    """The seed's history happened over the past weeks: `with at(days_ago):` runs the real services with
    `timezone.now()` set to that day (mid-morning, a minute later per step so the order holds within a day), so
    transfers, entries, decisions and invitations carry that date. Nothing is updated after posting: the ledger
    stays append-only; only the seed's own clock moves."""

    def __init__(self) -> None:
        self.today = timezone.localtime(timezone.now()).replace(hour=10, minute=0, second=0, microsecond=0)
        self.steps = 0

    def when(self, days_ago: int) -> datetime:
        return self.today - timedelta(days=days_ago)

    @contextmanager
    def __call__(self, days_ago: int):
        self.steps += 1
        moment = self.when(days_ago) + timedelta(minutes=self.steps)
        with mock.patch.object(timezone, "now", return_value=moment):
            yield moment
