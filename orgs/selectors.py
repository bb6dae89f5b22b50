"""Permission-aware reads for orgs. Views call these first."""

from django.core.exceptions import PermissionDenied
from django.http import Http404

from orgs.models import Membership, MembershipStatus, Organization


def active_membership(*, user, org_slug: str) -> Membership:
    """The user's active membership in the org, or 404 (another org's data does not exist for them)."""
    if not user.is_authenticated:
        raise Http404
    workspace = getattr(user, "_credits_workspace", None)
    if workspace is not None:  # the request's memberships, already loaded for the sidebar
        membership = workspace.active_membership_for(org_slug)
    else:
        membership = (
            Membership.objects.select_related("org")
            .filter(user=user, org__slug=org_slug, status=MembershipStatus.ACTIVE)
            .first()
        )
    if membership is None:
        raise Http404("No such organization.")
    return membership


def billing_viewer_membership(*, user, org_slug: str) -> Membership:
    """Owner, admins and managers may view Billing; members get 403."""
    membership = active_membership(user=user, org_slug=org_slug)
    if not membership.can_view_billing:
        raise PermissionDenied("Only the org's owner, admins and managers can see Billing.")
    return membership


def billing_admin_membership(*, user, org_slug: str) -> Membership:
    """Owner and admins act on Billing; managers and members get 403."""
    membership = active_membership(user=user, org_slug=org_slug)
    if not membership.can_manage_billing:
        raise PermissionDenied("Only the org's owner and admins can do this.")
    return membership


def user_orgs(user) -> list[Organization]:
    return list(
        Organization.objects.filter(memberships__user=user, memberships__status=MembershipStatus.ACTIVE).order_by(
            "name"
        )
    )


def org_admin_membership(*, user, org_slug: str) -> Membership:
    """Owner and admins manage members, seats and Member defaults; others get 403, non-members 404."""
    membership = active_membership(user=user, org_slug=org_slug)
    if not membership.can_manage_billing:
        raise PermissionDenied("Only the org's owner and admins can manage members.")
    return membership
