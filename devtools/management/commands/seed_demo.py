"""Demo data: org Quantum Lab with an owner and five members, and a few past movements of each kind, all made
through the real services (the ledger primitive underneath). Idempotent: every step has a fixed idempotency key
or checks that it was done before, so a second run changes nothing."""

import uuid

from django.conf import settings
from django.core.management.base import BaseCommand
from django.db import transaction
from django.test.utils import override_settings

from credit_requests.models import CreditRequest
from credit_requests.services import credit_request_approve, credit_request_create, credit_request_reject
from members.services import invitation_accept, invitation_create, member_defaults_update, member_remove, seat_assign
from orgs.models import Invitation, MemberDefaults, Membership, Organization, Role, User
from orgs.services import membership_add, org_create, user_create
from purchases.models import Purchase, PurchaseStatus
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
        org = Organization.objects.filter(name=ORG_NAME).first() or org_create(name=ORG_NAME, owner=owner)
        people = {email: _user(email) for email in MEMBERS}
        roles = {"alice@example.com": Role.ADMIN, "bob@example.com": Role.MANAGER}
        for email, user in people.items():
            if not Membership.objects.filter(org=org, user=user).exists():
                membership_add(org=org, user=user, role=roles.get(email, Role.MEMBER))
        if not org.seats:  # a few seats, so the Billing page's Seats section has something to manage
            org.seats = 10
            org.save(update_fields=["seats"])
        return org, owner

    def _history(self, org: Organization, owner: User) -> None:
        """Past movements of each kind. Together they leave the org wallet with 50,000 Org-allocated and 5,000
        Promo credits (the README's figures): 53,700 bought, 3,700 given out for good (transfers 2,500, the
        monthly bulk 750, an approved request 250, a seat 200); Frank's 500 came back when he was removed."""
        m = {mm.user.email: mm for mm in Membership.objects.filter(org=org).select_related("user")}
        org_allocated = CreditType.objects.get(slug="org-allocated")
        promo = CreditType.objects.get(slug="promo")

        # Purchases and a promo grant: credits come in from outside (Stripe, Promotions).
        for key, amount, memo in [
            ("seed:purchase:1", 40_000, "Initial purchase"),
            ("seed:purchase:2", 12_500, "Top-up"),
            ("seed:purchase:3", 1_200, "Top-up for the monthly allocation"),
        ]:
            if not _done(org, key):
                org_credit_from_stripe(org=org, amount=amount, actor=owner, memo=memo, idempotency_key=key)
            _seed_purchase_row(org, owner, key)
        if not _done(org, "seed:promo:1"):
            org_grant_promo(org=org, amount=6_000, memo="Welcome promo", idempotency_key="seed:promo:1")

        # Transfers to one member, in both credit types.
        for key, email, ct, amount, memo in [
            ("seed:transfer:1", "alice@example.com", org_allocated, 1_500, "Project kickoff"),
            ("seed:transfer:2", "carol@example.com", org_allocated, 1_000, "Monthly allocation"),
            ("seed:transfer:3", "dave@example.com", promo, 1_000, "Try the new simulators"),
        ]:
            if not _done(org, key):
                org_transfer_to_member(
                    org=org,
                    membership_id=m[email].pk,
                    credit_type=ct,
                    amount=amount,
                    actor=owner,
                    memo=memo,
                    idempotency_key=key,
                )

        # A bulk transfer: 250 each to the three Members, one movement.
        if not _done(org, "seed:bulk:1"):
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
        # Credit Requests tab's badge).
        decisions = {
            "carol": lambda r: credit_request_approve(org=org, request_id=r.pk, actor=owner, amount=250),
            "dave": lambda r: credit_request_reject(org=org, request_id=r.pk, actor=owner, reason="Budget exhausted"),
            "erin": None,
        }
        for name, (email, amount, reason) in _REQUESTS.items():
            client_key = _request_key(name)
            if CreditRequest.objects.filter(org=org, client_key=client_key).exists():
                continue
            request = credit_request_create(
                org=org, user=m[email].user, amount=amount, reason=reason, client_key=client_key
            ).request
            if decisions[name]:
                decisions[name](request)

        # Member defaults (Settings): a seat comes with 200 credits, a new member gets 100. Carol gets a seat.
        if not MemberDefaults.objects.filter(org=org).exists():
            member_defaults_update(org=org, actor=owner, seat_assignment_credits=200, default_credit_allocation=100)
        if m["carol@example.com"].seat_assignments == 0:
            seat_assign(org=org, membership_id=m["carol@example.com"].pk, actor=owner)

        # Usage: Carol's simulator runs, charged to the credits the org gave her (she keeps 1,000).
        if not _done(org, "seed:usage:1"):
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
            invitation = invitation_create(
                org=org, email=FORMER_MEMBER, role=Role.MEMBER, credit_allocation=400, actor=owner
            )
            joined = invitation_accept(invitation_id=invitation.pk, user=frank)
            member_remove(org=org, membership_id=joined.membership.pk, actor=owner)
