"""Workflows that create and change organizations and memberships."""

from django.db import transaction

from orgs.models import Membership, MembershipStatus, Organization, Role, User


def user_create(*, email: str, password: str | None, name: str = "", is_staff: bool = False) -> User:
    """Create a user (the wallets app gives every new user a Default wallet, in the same transaction)."""
    return User.objects.create_user(email=email, password=password, name=name, is_staff=is_staff)


def org_create(*, name: str, owner: User) -> Organization:
    """Create an org and the owner's membership (the wallets app adds the org wallet in the same transaction)."""
    with transaction.atomic():
        org = Organization.objects.create(name=name, slug=Organization.unique_slug(name))
        Membership.objects.create(org=org, user=owner, role=Role.OWNER)
    return org


def membership_add(*, org: Organization, user: User, role: str = Role.MEMBER) -> Membership:
    """Add (or re-activate) a user's membership in an org."""
    if role == Role.OWNER:
        raise ValueError("An org has exactly one owner; add the person as an admin instead.")
    membership, created = Membership.objects.get_or_create(org=org, user=user, defaults={"role": role})
    if not created and membership.status != MembershipStatus.ACTIVE:
        membership.status = MembershipStatus.ACTIVE
        membership.role = role
        membership.removed_at = None
        membership.save(update_fields=["status", "role", "removed_at"])
    return membership
