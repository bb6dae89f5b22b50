"""Demo data: org Quantum Lab with an owner and five members, funded through the ledger. Idempotent."""

from django.core.management.base import BaseCommand
from django.db import transaction

from orgs.models import Membership, Organization, Role, User
from orgs.services import membership_add, org_create, user_create
from wallets.models import CreditType
from wallets.services import org_credit_from_stripe, org_grant_promo, org_transfer_to_member

PASSWORD = "demo"  # noqa: S105 - demo accounts, printed by `make run`
OWNER = "admin@example.com"
MEMBERS = ["alice@example.com", "bob@example.com", "carol@example.com", "dave@example.com", "erin@example.com"]
ORG_NAME = "Quantum Lab"


def _user(email: str, **extra) -> User:
    user = User.objects.filter(email=email).first()
    if user is None:
        user = user_create(email=email, password=None, name=email.split("@")[0].title(), **extra)
        # Demo passwords are deliberately short; set them directly rather than through validators.
        user.set_password(PASSWORD)
        user.save(update_fields=["password"])
    return user


class Command(BaseCommand):
    help = "Create the demo org Quantum Lab, its people, and a few past movements of each kind (idempotent)."

    def handle(self, *args, **options):
        with transaction.atomic():
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
            memberships = {m.user.email: m for m in Membership.objects.filter(org=org).select_related("user")}
            org_allocated = CreditType.objects.get(slug="org-allocated")
            promo = CreditType.objects.get(slug="promo")

            # Past movements, each under a fixed idempotency key so a re-run replays instead of repeating.
            # They leave the org wallet with 50,000 Org-allocated and 5,000 Promo credits.
            org_credit_from_stripe(
                org=org, amount=40_000, actor=owner, memo="Initial purchase", idempotency_key="seed:purchase:1"
            )
            org_credit_from_stripe(
                org=org, amount=12_500, actor=owner, memo="Top-up", idempotency_key="seed:purchase:2"
            )
            org_grant_promo(org=org, amount=6_000, memo="Welcome promo", idempotency_key="seed:promo:1")
            for key, email, ct, amount, memo in [
                ("seed:transfer:1", "alice@example.com", org_allocated, 1_500, "Project kickoff"),
                ("seed:transfer:2", "carol@example.com", org_allocated, 1_000, "Monthly allocation"),
                ("seed:transfer:3", "dave@example.com", promo, 1_000, "Try the new simulators"),
            ]:
                org_transfer_to_member(
                    org=org,
                    membership_id=memberships[email].pk,
                    credit_type=ct,
                    amount=amount,
                    actor=owner,
                    memo=memo,
                    idempotency_key=key,
                )
        self.stdout.write(self.style.SUCCESS(f"Demo org '{ORG_NAME}' is ready."))
        self.stdout.write("Sign in at http://127.0.0.1:8000/ with (password 'demo' for all):")
        self.stdout.write(f"  {OWNER}  (owner of {ORG_NAME}, Django staff)")
        for email in MEMBERS:
            role = memberships[email].get_role_display()
            self.stdout.write(f"  {email}  ({role})")
