"""Members page, invitations, seats and Settings > Member defaults. Thin: parse, call one verb in members.services."""

from django.contrib import messages
from django.contrib.auth import authenticate, login, password_validation
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.core.paginator import Paginator
from django.db.models import Q
from django.http import HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_GET, require_http_methods, require_POST
from django_htmx.http import HttpRequest

from core.errors import DomainError
from core.ratelimit import rate_limited
from members import services as svc
from members.forms import (
    AcceptForm,
    BulkInviteForm,
    InviteForm,
    MemberDefaultsForm,
    MemberFilterForm,
    RoleForm,
)
from members.selectors import members_with_returnable
from orgs.middleware import SESSION_KEY
from orgs.models import Invitation, InvitationStatus, MemberDefaults, Membership, MembershipStatus, User
from orgs.selectors import org_admin_membership
from orgs.services import user_create

PER_PAGE = 25


def _base_url(request) -> str:
    return request.build_absolute_uri("/")


def _members_context(request, admin: Membership) -> dict:
    """A fixed number of queries whatever the org's size: one count and one page per table."""
    org = admin.org
    filters = MemberFilterForm(request.GET)
    f = filters.values()
    now = timezone.now()
    pending = Invitation.objects.filter(org=org, status=InvitationStatus.PENDING, expires_at__gt=now)
    showing_invites = f["status"] == "pending"
    if showing_invites:
        rows = pending.select_related("invited_by")
        if f["q"]:
            rows = rows.filter(email__icontains=f["q"])
        if f["role"]:
            rows = rows.filter(role=f["role"])
        page = Paginator(rows.order_by("-created_at", "-id"), PER_PAGE).get_page(request.GET.get("page"))
        base = _base_url(request)
        for invitation in page:
            invitation.link = svc.invitation_url(invitation, base)
    else:
        rows = members_with_returnable(org)
        if f["q"]:
            rows = rows.filter(Q(user__email__icontains=f["q"]) | Q(user__name__icontains=f["q"]))
        if f["role"]:
            rows = rows.filter(role=f["role"])
        if f["status"] in (MembershipStatus.ACTIVE, MembershipStatus.SUSPENDED):
            rows = rows.filter(status=f["status"])
        page = Paginator(rows.order_by("user__email", "pk"), PER_PAGE).get_page(request.GET.get("page"))
    defaults = MemberDefaults.for_org(org)
    query = request.GET.copy()
    query.pop("page", None)
    query.pop("invited", None)
    return {
        "org": org,
        "admin": admin,
        "filters": filters,
        "page": page,
        "showing_invites": showing_invites,
        "pending_count": pending.count(),
        "attention_count": Membership.objects.filter(org=org, status=MembershipStatus.ACTIVE)
        .exclude(notice="")
        .count(),
        "query": query.urlencode(),
        "invite_form": InviteForm(initial={"role": defaults.default_role if defaults.auto_assign_default_role else ""}),
        "bulk_form": BulkInviteForm(),
        "role_choices": RoleForm.base_fields["role"].choices,
        "defaults": defaults,
    }


@require_GET
@login_required
def members_page(request: HttpRequest, org_slug: str) -> HttpResponse:
    admin = org_admin_membership(user=request.user, org_slug=org_slug)
    context = _members_context(request, admin)
    invited_id = request.GET.get("invited", "")
    if invited_id.isascii() and invited_id.isdigit():  # "²".isdigit() is True and int("²") raises
        invitation = Invitation.objects.filter(
            org=admin.org, pk=int(invited_id), status=InvitationStatus.PENDING
        ).first()
        if invitation:
            context["invited"] = invitation
            context["invited_link"] = svc.invitation_url(invitation, _base_url(request))
    return render(request, "orgs/members.html", context)


@require_POST
@login_required
@rate_limited("RATE_LIMIT_MONEY")
def member_invite(request: HttpRequest, org_slug: str) -> HttpResponse:
    admin = org_admin_membership(user=request.user, org_slug=org_slug)
    form = InviteForm(request.POST)
    if form.is_valid():
        try:
            invitation = svc.invitation_create(
                org=admin.org,
                email=form.cleaned_data["email"],
                role=form.cleaned_data["role"],
                credit_allocation=form.cleaned_data["credit_allocation"] or 0,
                actor=request.user,
                base_url=_base_url(request),
            )
        except DomainError as exc:
            form.add_error(None, exc.message)
        else:
            messages.success(request, f"Invitation sent to {invitation.email}.")
            return redirect(reverse("members:page", args=[org_slug]) + f"?invited={invitation.pk}")
    context = _members_context(request, admin)
    context["invite_form"] = form
    return render(request, "orgs/members.html", context, status=400)


@require_POST
@login_required
@rate_limited("RATE_LIMIT_MONEY")
def member_invite_bulk(request: HttpRequest, org_slug: str) -> HttpResponse:
    admin = org_admin_membership(user=request.user, org_slug=org_slug)
    form = BulkInviteForm(request.POST, request.FILES)
    result = None
    if form.is_valid():
        try:
            result = svc.invitation_bulk_create(
                org=admin.org, data=form.cleaned_data["file"].read(), actor=request.user, base_url=_base_url(request)
            )
        except DomainError as exc:
            form.add_error("file", exc.message)
    context = _members_context(request, admin)
    context["bulk_form"] = form if result is None else BulkInviteForm()
    context["bulk_result"] = result
    return render(request, "orgs/members.html", context, status=200 if result else 400)


@require_POST
@login_required
def invitation_cancel(request: HttpRequest, org_slug: str, invitation_id: int) -> HttpResponse:
    admin = org_admin_membership(user=request.user, org_slug=org_slug)
    try:
        invitation = svc.invitation_cancel(org=admin.org, invitation_id=invitation_id, actor=request.user)
    except DomainError as exc:
        messages.error(request, exc.message)
    else:
        messages.success(request, f"Invitation for {invitation.email} cancelled. Its link no longer works.")
    return redirect(reverse("members:page", args=[org_slug]) + "?status=pending")


@require_POST
@login_required
def member_role(request: HttpRequest, org_slug: str, membership_id: int) -> HttpResponse:
    admin = org_admin_membership(user=request.user, org_slug=org_slug)
    form = RoleForm(request.POST)
    if not form.is_valid():
        messages.error(request, "Pick a role: Member, Manager or Admin.")
    else:
        try:
            m = svc.membership_change_role(
                org=admin.org, membership_id=membership_id, role=form.cleaned_data["role"], actor=request.user
            )
        except DomainError as exc:
            messages.error(request, exc.message)
        else:
            messages.success(request, f"{m.user.display_name} is now {m.get_role_display()}.")
    return redirect(_back(request, reverse("members:page", args=[org_slug])))


@require_http_methods(["GET", "POST"])
@login_required
@rate_limited("RATE_LIMIT_MONEY")
def member_remove(request: HttpRequest, org_slug: str, membership_id: int) -> HttpResponse:
    """GET: the confirm (in a dialog with htmx, a page without), stating the credits that will return."""
    admin = org_admin_membership(user=request.user, org_slug=org_slug)
    if request.method == "POST":
        try:
            removal = svc.member_remove(org=admin.org, membership_id=membership_id, actor=request.user)
        except DomainError as exc:
            messages.error(request, exc.message)
        else:
            who = removal.membership.user.display_name
            messages.success(request, f"{who} was removed. {removal.returned:,} credits returned to the org wallet.")
        return redirect(reverse("members:page", args=[org_slug]))
    target = members_with_returnable(admin.org).filter(pk=membership_id).first()
    if target is None:
        return render(request, "404.html", status=404)
    template = "orgs/member_remove.html" + ("#confirm" if request.htmx else "")
    return render(request, template, {"org": admin.org, "target": target})


@require_POST
@login_required
@rate_limited("RATE_LIMIT_MONEY")
def seat_assign(request: HttpRequest, org_slug: str, membership_id: int) -> HttpResponse:
    admin = org_admin_membership(user=request.user, org_slug=org_slug)
    try:
        m = svc.seat_assign(org=admin.org, membership_id=membership_id, actor=request.user)
    except DomainError as exc:
        messages.error(request, exc.message)
    else:
        messages.success(request, f"Seat assigned to {m.user.display_name}.")
    return redirect(_back(request, reverse("members:seats", args=[org_slug])))


@require_POST
@login_required
def seat_revoke(request: HttpRequest, org_slug: str, membership_id: int) -> HttpResponse:
    admin = org_admin_membership(user=request.user, org_slug=org_slug)
    try:
        m = svc.seat_revoke(org=admin.org, membership_id=membership_id, actor=request.user)
    except DomainError as exc:
        messages.error(request, exc.message)
    else:
        messages.success(request, f"Seat revoked from {m.user.display_name}. They keep their credits.")
    return redirect(_back(request, reverse("members:seats", args=[org_slug])))


def _back(request, fallback: str) -> str:
    target = request.POST.get("next", "")
    if target and url_has_allowed_host_and_scheme(target, {request.get_host()}, require_https=request.is_secure()):
        return target
    return fallback


@require_GET
@login_required
def seats_page(request: HttpRequest, org_slug: str) -> HttpResponse:
    """Seat Management: every current member with their seat; one count and one page of rows."""
    admin = org_admin_membership(user=request.user, org_slug=org_slug)
    org = admin.org
    rows = (
        Membership.objects.filter(org=org, status=MembershipStatus.ACTIVE)
        .select_related("user")
        .order_by("-has_seat", "user__email", "pk")
    )
    page = Paginator(rows, PER_PAGE).get_page(request.GET.get("page"))
    return render(
        request,
        "orgs/seats.html",
        {"org": org, "page": page, "used": svc.seats_used(org), "defaults": MemberDefaults.for_org(org)},
    )


@require_http_methods(["GET", "POST"])
@login_required
def member_defaults(request: HttpRequest, org_slug: str) -> HttpResponse:
    admin = org_admin_membership(user=request.user, org_slug=org_slug)
    current = MemberDefaults.for_org(admin.org)
    form = MemberDefaultsForm(request.POST or None, instance=current)
    status = 200
    if request.method == "POST":
        if form.is_valid():
            try:
                svc.member_defaults_update(
                    org=admin.org, actor=request.user, **{name: form.cleaned_data[name] for name in form.Meta.fields}
                )
            except DomainError as exc:
                form.add_error(None, exc.message)
            else:
                messages.success(request, "Member defaults saved. They apply to people who join from now on.")
                return redirect("members:defaults", org_slug)
        status = 400
    return render(request, "orgs/member_defaults.html", {"org": admin.org, "form": form}, status=status)


# ---------------------------------------------------------------- accepting an invitation (public)


@require_http_methods(["GET", "POST"])
def invite_accept(request: HttpRequest, token: str) -> HttpResponse:
    """Sign up (new address) or sign in (known address), then join. Any problem is told plainly."""
    try:
        invitation = svc.invitation_from_token(token)
    except svc.InvitationInvalid as exc:
        return render(request, "orgs/invite_invalid.html", {"message": exc.message}, status=400)
    replay = invitation.status == InvitationStatus.ACCEPTED and invitation.accepted_by_id == getattr(
        request.user, "pk", None
    )
    problem = _invitation_problem(invitation)
    if problem and not replay:
        return render(request, "orgs/invite_invalid.html", {"message": problem, "invitation": invitation}, status=400)
    existing_user = User.objects.filter(email__iexact=invitation.email).first()
    form = AcceptForm(request.POST or None)
    if request.method == "POST":
        user = request.user if request.user.is_authenticated else None
        if user is None and form.is_valid():
            user = _sign_up_or_in(request, form, invitation, existing_user)
        if user is not None:
            try:
                acceptance = svc.invitation_accept(invitation_id=invitation.pk, user=user)
            except DomainError as exc:
                return render(
                    request, "orgs/invite_invalid.html", {"message": exc.message, "invitation": invitation}, status=400
                )
            request.session[SESSION_KEY] = invitation.org_id
            messages.success(request, f"Welcome to {invitation.org.name}.")
            for notice in acceptance.notices:
                messages.warning(request, notice)
            return redirect("wallet")
    context = {"invitation": invitation, "form": form, "existing_user": existing_user}
    return render(request, "orgs/invite_accept.html", context, status=400 if form.errors else 200)


def _invitation_problem(invitation: Invitation) -> str:
    if invitation.status == InvitationStatus.ACCEPTED:
        return "This invitation has already been used."
    if invitation.status == InvitationStatus.CANCELLED:
        return "This invitation was cancelled. Ask an admin of the organization for a new one."
    if invitation.is_expired:
        return "This invitation has expired. Ask an admin of the organization for a new one."
    return ""


def _sign_up_or_in(request, form: AcceptForm, invitation: Invitation, existing_user: User | None) -> User | None:
    password = form.cleaned_data["password"]
    if existing_user is not None:
        user = authenticate(request, username=invitation.email, password=password)
        if user is None:
            form.add_error("password", "That password does not match the account for this email.")
            return None
    else:
        try:
            password_validation.validate_password(password, User(email=invitation.email))
        except ValidationError as exc:
            form.add_error("password", exc)
            return None
        user = user_create(email=invitation.email, password=password, name=form.cleaned_data["name"])
    login(request, user, backend="django.contrib.auth.backends.ModelBackend")
    return user
