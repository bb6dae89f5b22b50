"""Members page, invitations, seats and Settings > Member defaults. Thin: parse, call one verb in members.services."""

from django.contrib import messages
from django.contrib.auth import authenticate, login
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.db import transaction
from django.db.models import Q
from django.http import HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.http import url_has_allowed_host_and_scheme, urlencode
from django.views.decorators.http import require_GET, require_http_methods, require_POST
from django_htmx.http import HttpRequest

from apikeys.models import ApiKey
from core.errors import DomainError
from core.money import credits_and_dollars
from core.ratelimit import rate_limited
from core.replica import read_alias, run_read
from core.siteurl import site_base
from core.tasks import send_email
from holds.selectors import held_subquery
from members import services as svc
from members.forms import (
    AcceptForm,
    BulkInviteForm,
    InviteConfirmForm,
    InviteForm,
    InviteSignUpForm,
    MemberDefaultsForm,
    MemberFilterForm,
    RoleForm,
)
from members.selectors import members_with_returnable
from orgs.middleware import SESSION_KEY
from orgs.models import Invitation, InvitationStatus, MemberDefaults, Membership, MembershipStatus, Role, User
from orgs.selectors import org_admin_membership
from reporting.usage import usage_this_month
from web.toast import add_toast
from web.views.accounts import SignupLinkInvalid, _email_throttle, link_lifetime, signup_from_token, signup_token

PER_PAGE = 25
PENDING_SHOWN = 10


def _base_url(request) -> str:
    """Invitation links start like every email's link (core.siteurl: SITE_URL, else this request's host)."""
    return site_base()


def _add_usage_this_month(request, org, members: list[Membership]) -> None:
    """Each member's usage this calendar month paid by the org, as `used_this_month`: ONE query for the whole
    page (reporting.usage), on the replica when core.replica.read_alias allows it."""
    user_ids = [m.user_id for m in members]
    used = run_read(read_alias(request), lambda using: usage_this_month(org.pk, user_ids, using=using))
    for m in members:
        m.used_this_month = used.get(m.user_id, 0)


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
        # Links are never shown here, only emailed: the link is how the invitee proves the address is theirs.
        page = Paginator(rows.order_by("-created_at", "-id"), PER_PAGE).get_page(request.GET.get("page"))
    else:
        # Plus each member's credits held by open holds: a correlated sum in the same query (holds.selectors).
        rows = members_with_returnable(org).annotate(held=held_subquery())
        if f["q"]:
            rows = rows.filter(Q(user__email__icontains=f["q"]) | Q(user__name__icontains=f["q"]))
        if f["role"]:
            rows = rows.filter(role=f["role"])
        if f["status"] in (MembershipStatus.ACTIVE, MembershipStatus.SUSPENDED):
            rows = rows.filter(status=f["status"])
        page = Paginator(rows.order_by("user__email", "pk"), PER_PAGE).get_page(request.GET.get("page"))
    defaults = MemberDefaults.for_org(org)
    # Pending invitations stay in view under People (the first few; all of them behind ?status=pending), each
    # with the credits joining gives (members.services.welcome_for: the same sums as joining).
    pending_rows = []
    page.object_list = list(page.object_list)
    if not showing_invites:
        pending_rows = list(pending.select_related("invited_by").order_by("-created_at", "-id")[:PENDING_SHOWN])
        _add_usage_this_month(request, org, page.object_list)
    seat_free = svc.seats_used(org) < org.seats
    for inv in [*pending_rows, *(page.object_list if showing_invites else [])]:
        inv.welcome = svc.welcome_for(inv, defaults, seat_free=seat_free)
    query = request.GET.copy()
    query.pop("page", None)
    query.pop("invited", None)
    query.pop("invite", None)
    return {
        "org": org,
        "admin": admin,
        "filters": filters,
        "page": page,
        "showing_invites": showing_invites,
        "pending_count": pending.count(),
        "pending_rows": pending_rows,
        "seat_free": seat_free,
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
    """The Members page; `?invite=1` is the Invite dialog's body (with htmx) or the Invite page (without)."""
    admin = org_admin_membership(user=request.user, org_slug=org_slug)
    if request.GET.get("invite"):
        return _invite_page(request, admin)
    return render(request, "orgs/members.html", _members_context(request, admin))


def _invite_page(request: HttpRequest, admin: Membership, form=None, bulk_form=None, status: int = 200):
    defaults = MemberDefaults.for_org(admin.org)
    context = {
        "org": admin.org,
        "invite_page": True,
        "defaults": defaults,
        "invite_form": form
        or InviteForm(initial={"role": defaults.default_role if defaults.auto_assign_default_role else ""}),
        "bulk_form": bulk_form or BulkInviteForm(),
    }
    template = "orgs/members.html" + ("#invite_dialog" if request.htmx and status == 200 else "")
    return render(request, template, context, status=status)


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
            # One confirmation: this message (the invitation is also listed under Pending invitations).
            messages.success(
                request,
                f"Invitation sent to {invitation.email}. Their link is in that email only and works until "
                f"{invitation.expires_at:%b %-d, %Y}.",
            )
            return redirect("members:page", org_slug)
    return _invite_page(request, admin, form=form, status=400)


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
    if result is None:
        return _invite_page(request, admin, bulk_form=form, status=400)
    context = _members_context(request, admin)
    context["bulk_result"] = result
    return render(request, "orgs/members.html", context)


@require_POST
@login_required
def invitation_cancel(request: HttpRequest, org_slug: str, invitation_id: int) -> HttpResponse:
    admin = org_admin_membership(user=request.user, org_slug=org_slug)
    try:
        invitation = svc.invitation_cancel(org=admin.org, invitation_id=invitation_id, actor=request.user)
    except DomainError as exc:
        messages.error(request, exc.message)
    else:
        messages.success(request, f"Invitation for {invitation.email} revoked. Its link no longer works.")
    return redirect(_back(request, reverse("members:page", args=[org_slug])))


@require_POST
@login_required
def member_role(request: HttpRequest, org_slug: str, membership_id: int) -> HttpResponse:
    """Change a role. Promoting to Admin asks first (a dialog with htmx, a page without): the form comes back
    with `confirmed`. With htmx a change that needs no confirmation answers 204 and a toast."""
    admin = org_admin_membership(user=request.user, org_slug=org_slug)
    back = _back(request, reverse("members:page", args=[org_slug]))
    form = RoleForm(request.POST)
    if not form.is_valid():
        return _role_result(request, back, "Pick a role: Member, Manager or Admin.", error=True)
    role = form.cleaned_data["role"]
    target = (
        Membership.objects.select_related("user")
        .filter(org=admin.org, pk=membership_id)
        .exclude(status=MembershipStatus.REMOVED)
        .exclude(role__in=[Role.ADMIN, Role.OWNER])  # already Admin, or the owner (refused below): nothing to ask
        .first()
    )
    if target and role == Role.ADMIN and not request.POST.get("confirmed"):
        return _role_confirm(request, admin.org, target, back)
    try:
        m = svc.membership_change_role(org=admin.org, membership_id=membership_id, role=role, actor=request.user)
    except DomainError as exc:
        return _role_result(request, back, exc.message, error=True)
    return _role_result(request, back, f"{m.user.display_name} is now {m.get_role_display()}.")


def _role_result(request: HttpRequest, back: str, message: str, error: bool = False) -> HttpResponse:
    if request.htmx and not request.POST.get("confirmed"):
        response = HttpResponse(status=204)
        if error:  # the select shows a role they do not have: reload to show the real one (and the message)
            messages.error(request, message)
            response["HX-Refresh"] = "true"
            return response
        return add_toast(response, message)
    (messages.error if error else messages.success)(request, message)
    return redirect(back)


def _role_confirm(request: HttpRequest, org, target: Membership, back: str) -> HttpResponse:
    name = target.user.display_name
    context = {
        "org": org,
        "title": "Make admin",
        "question": f"Make {name} an Admin?",
        "lines": [
            f"{name} will be able to buy credits, transfer credits from the org wallet, approve credit requests, "
            "invite and remove members, assign seats, change Member defaults and create API keys.",
            "You can change their role back at any time.",
        ],
        "action": reverse("members:role", args=[org.slug, target.pk]),
        "fields": [("role", Role.ADMIN), ("confirmed", "1")],
        "button": "Make admin",
        "back": back,
    }
    return render(request, "orgs/member_confirm.html" + ("#confirm" if request.htmx else ""), context)


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
            # Their API keys were revoked in the same transaction (apikeys.models): say so, by name.
            revoked = _keys_revoked_with(removal.membership)
            if revoked:
                names = ", ".join(f"“{name}”" for name in revoked)
                messages.warning(
                    request,
                    f"API keys they created, now revoked: {names}. Systems using them get 401 from now on: "
                    "create new keys on the API keys page.",
                )
        return redirect(reverse("members:page", args=[org_slug]))
    target = members_with_returnable(admin.org).filter(pk=membership_id).first()
    if target is None:
        return render(request, "404.html", status=404)
    template = "orgs/member_remove.html" + ("#confirm" if request.htmx else "")
    keys = list(
        ApiKey.objects.filter(org=admin.org, created_by_id=target.user_id, revoked_at__isnull=True)
        .order_by("name")
        .values_list("name", flat=True)
    )
    return render(request, template, {"org": admin.org, "target": target, "api_keys": keys})


def _keys_revoked_with(membership: Membership) -> list[str]:
    return list(
        ApiKey.objects.filter(
            org_id=membership.org_id,
            created_by_id=membership.user_id,
            revoked_reason=ApiKey.REVOKED_CREATOR_REMOVED,
            revoked_at__gte=membership.removed_at,
        )
        .order_by("name")
        .values_list("name", flat=True)
    )


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
        credits = MemberDefaults.for_org(admin.org).seat_assignment_credits
        moved = f" {credits_and_dollars(credits)} moved from the org wallet to them." if credits else ""
        messages.success(request, f"Seat assigned to {m.user.display_name}.{moved}")
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
    assign = request.GET.get("assign", "")
    if assign:
        return _seat_confirm(request, admin, assign)
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


def _seat_confirm(request: HttpRequest, admin: Membership, assign: str) -> HttpResponse:
    """`?assign=<membership>`: the confirmation before a seat is assigned, stating the credits that move."""
    org = admin.org
    target = None
    if assign.isascii() and assign.isdigit() and len(assign) < 12:
        target = (
            Membership.objects.select_related("user")
            .filter(org=org, pk=int(assign), status=MembershipStatus.ACTIVE)
            .first()
        )
    if target is None:
        return render(request, "404.html", status=404)
    back = request.GET.get("next", "")
    if not url_has_allowed_host_and_scheme(back, {request.get_host()}, require_https=request.is_secure()):
        back = reverse("members:seats", args=[org.slug])
    name = target.user.display_name
    credits = MemberDefaults.for_org(org).seat_assignment_credits
    problem = ""
    if target.has_seat:
        problem = f"{name} already has a seat."
    elif svc.seats_used(org) >= org.seats:
        problem = f"No free seat: all {org.seats:,} of the organization's seats are assigned. Revoke a seat first."
    lines = [
        f"{credits_and_dollars(credits)} move from the org wallet to {name}, as Org-allocated credits."
        if credits
        else "No credits move: Seat assignment credits are 0 in Member defaults.",
        "Revoking the seat later frees it; they keep the credits.",
    ]
    context = {
        "org": org,
        "title": "Assign seat",
        "question": f"Assign a seat to {name}?",
        "lines": lines,
        "problem": problem,
        "action": reverse("members:seat_assign", args=[org.slug, target.pk]),
        "fields": [],
        "button": "Assign seat",
        "back": back,
    }
    return render(request, "orgs/member_confirm.html" + ("#confirm" if request.htmx else ""), context)


@require_http_methods(["GET", "POST"])
@login_required
def member_defaults(request: HttpRequest, org_slug: str) -> HttpResponse:
    admin = org_admin_membership(user=request.user, org_slug=org_slug)
    current = MemberDefaults.for_org(admin.org)
    saved = {name: getattr(current, name) for name in ("seat_assignment_credits", "default_credit_allocation")}
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
    return render(request, "orgs/member_defaults.html", {"org": admin.org, "form": form, "saved": saved}, status=status)


# ---------------------------------------------------------------- accepting an invitation (public)
#
# A known address signs in, then joins. An address with no account proves it is theirs first: the page emails
# a sign-up link (accounts.signup_token, bound to this invitation) to the invited address, and only that link
# lets them choose a password; the account is created and joins in one transaction. So whoever else sees an
# invitation link (an admin, a forwarded email) cannot make the invitee's account.


@require_http_methods(["GET", "POST"])
def invite_accept(request: HttpRequest, token: str) -> HttpResponse:
    """Sign in (known address) or get the emailed link (new address), then join. Any problem is told plainly."""
    try:
        invitation = svc.invitation_from_token(token)
    except svc.InvitationInvalid as exc:
        return _invalid(request, exc.message)
    replay = invitation.status == InvitationStatus.ACCEPTED and invitation.accepted_by_id == getattr(
        request.user, "pk", None
    )
    problem = _invitation_problem(invitation)
    if problem and not replay:
        return _invalid(request, problem, invitation)
    context: dict = {"invitation": invitation, "welcome": svc.invitation_welcome(invitation)}
    if request.user.is_authenticated:
        if request.method == "POST":
            return _accept(request, invitation, request.user)
        return render(request, "orgs/invite_accept.html", context)
    existing_user = User.objects.filter(email__iexact=invitation.email).first()
    if existing_user is not None:
        form = AcceptForm(request.POST or None)
        if request.method == "POST" and form.is_valid():
            user = authenticate(request, username=invitation.email, password=form.cleaned_data["password"])
            if user is None:
                form.add_error("password", "That password does not match the account for this email.")
            else:
                login(request, user, backend="django.contrib.auth.backends.ModelBackend")
                return _accept(request, invitation, user)
        context.update(form=form, existing_user=existing_user)
        return render(request, "orgs/invite_accept.html", context, status=400 if form.errors else 200)
    if "confirm" in request.GET:
        return _confirm_and_join(request, invitation, request.GET["confirm"])
    form = InviteSignUpForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        name = form.cleaned_data["name"]
        send = _email_throttle(request, invitation.email, "invitation sign-up")
        if isinstance(send, HttpResponse):
            return send
        if send:
            transaction.on_commit(lambda: _send_invite_signup_email(invitation, token, name), robust=True)
        return render(
            request, "orgs/invite_sent.html", {"invitation": invitation, "lifetime": link_lifetime()}, status=200
        )
    context["form"] = form
    return render(request, "orgs/invite_accept.html", context, status=400 if form.errors else 200)


def _confirm_and_join(request: HttpRequest, invitation: Invitation, confirm: str) -> HttpResponse:
    """Behind the emailed link: choose a password; the account is created and joins, or nothing is created."""
    try:
        data = signup_from_token(confirm)
    except SignupLinkInvalid as exc:
        if exc.used:  # the account exists now (a racing tab made it): it signs in on the plain invitation page
            return _invalid(request, svc.AccountExists.message, invitation)
        return _invalid(request, exc.message.replace("Sign up again", "Open the invitation link again"), invitation)
    if data["email"].lower() != invitation.email.lower() or data.get("invitation") != invitation.pk:
        return _invalid(request, "This link is not for this invitation. Open the link from your email.", invitation)
    form = InviteConfirmForm(request.POST or None, email=invitation.email, initial={"name": data["name"]})
    if request.method == "POST" and form.is_valid():
        try:
            acceptance = svc.invitation_accept_new_user(
                invitation_id=invitation.pk,
                email=data["email"],
                name=form.cleaned_data["name"],
                password=form.cleaned_data["password"],
            )
        except DomainError as exc:
            return _invalid(request, exc.message, invitation)
        user = acceptance.membership.user
        login(request, user, backend="django.contrib.auth.backends.ModelBackend")
        return _joined(request, invitation, acceptance)
    context = {
        "invitation": invitation,
        "welcome": svc.invitation_welcome(invitation),
        "form": form,
        "confirming": True,
        "lifetime": link_lifetime(),
    }
    return render(request, "orgs/invite_accept.html", context, status=400 if form.errors else 200)


def _accept(request: HttpRequest, invitation: Invitation, user: User) -> HttpResponse:
    try:
        acceptance = svc.invitation_accept(invitation_id=invitation.pk, user=user)
    except DomainError as exc:
        return _invalid(request, exc.message, invitation)
    return _joined(request, invitation, acceptance)


def _joined(request: HttpRequest, invitation: Invitation, acceptance: svc.Acceptance) -> HttpResponse:
    request.session[SESSION_KEY] = invitation.org_id
    messages.success(request, f"Welcome to {invitation.org.name}.")
    if acceptance.notices:
        # The details (a short org wallet, credits the org owes) are the admins' business: see the Members page.
        messages.warning(
            request, "Some of your welcome credits could not be given yet. The org's admins have been told."
        )
    return redirect("wallet")


def _invalid(request: HttpRequest, message: str, invitation: Invitation | None = None) -> HttpResponse:
    return render(request, "orgs/invite_invalid.html", {"message": message, "invitation": invitation}, status=400)


def _send_invite_signup_email(invitation: Invitation, token: str, name: str) -> None:
    """The sign-up link for an invited address with no account: to that address only (core.tasks.send_email)."""
    confirm = signup_token(email=invitation.email, name=name, invitation=invitation.pk)
    link = site_base() + reverse("invite_accept", args=[token]) + "?" + urlencode({"confirm": confirm})
    send_email.enqueue(
        subject=f"Finish joining {invitation.org.name} on Credits",
        body=(
            f"Someone (hopefully you) opened the invitation for {invitation.email} to join {invitation.org.name} "
            "and asked for this link.\n\n"
            f"Choose your password to create your account and join (the link works for {link_lifetime()}, once):\n"
            f"{link}\n\n"
            "If it wasn't you, you can ignore this email: no account is created without the link.\n"
        ),
        to=[invitation.email],
    )


def _invitation_problem(invitation: Invitation) -> str:
    if invitation.status == InvitationStatus.ACCEPTED:
        return svc.InvitationUsed.message
    if invitation.status == InvitationStatus.CANCELLED:
        return "This invitation was cancelled. Ask an admin of the organization for a new one."
    if invitation.is_expired:
        return "This invitation has expired. Ask an admin of the organization for a new one."
    return ""
