"""The Members, Seat Management and Member defaults pages, invitation links, and their permissions."""

import re

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from members import services as svc
from orgs.models import Invitation, InvitationStatus, MemberDefaults, Membership, MembershipStatus
from tests.factories import MembershipFactory, UserFactory, bulk_members, ledger_snapshot
from tests.members.helpers import join_by_email
from wallets.models import CreditType, Wallet
from wallets.selectors import wallet_balance
from wallets.services import org_transfer_to_member

pytestmark = pytest.mark.django_db


def url(name, org, *args):
    return reverse(f"members:{name}", args=[org.slug, *args])


def test_members_page_lists_people_with_returnable_credits(client, funded_org, owner, member_membership):
    org_transfer_to_member(
        org=funded_org,
        membership_id=member_membership.pk,
        credit_type=CreditType.objects.get(slug="org-allocated"),
        amount=1_234,
    )
    client.force_login(owner)
    client.post(reverse("workspace_switch"), {"workspace": funded_org.slug})
    html = client.get(url("page", funded_org)).content.decode()
    assert member_membership.user.email in html and owner.email in html
    assert "1,234" in html
    assert ">Members</a>" in html  # sidebar link


@pytest.mark.parametrize("who", ["manager_membership", "member_membership"])
def test_members_page_needs_an_admin(client, org, who, request):
    client.force_login(request.getfixturevalue(who).user)
    assert client.get(url("page", org)).status_code == 403
    assert client.get(url("defaults", org)).status_code == 403


def test_another_orgs_admin_gets_404_everywhere_and_nothing_changes(client, funded_org, other_org, member_membership):
    outsider = MembershipFactory(org=other_org, role="admin")
    client.force_login(outsider.user)
    before = ledger_snapshot()
    m = member_membership.pk
    for method, u in [
        ("get", url("page", funded_org)),
        ("get", url("seats", funded_org)),
        ("get", url("defaults", funded_org)),
        ("get", url("remove", funded_org, m)),
        ("post", url("remove", funded_org, m)),
        ("post", url("role", funded_org, m)),
        ("post", url("seat_assign", funded_org, m)),
        ("post", url("invite", funded_org)),
    ]:
        assert getattr(client, method)(u, {"role": "admin", "email": "x@example.com"}).status_code == 404, u
    assert ledger_snapshot() == before
    assert Membership.objects.get(pk=m).status == MembershipStatus.ACTIVE
    assert not Invitation.objects.exists()


def test_another_orgs_member_id_is_refused_here(client, funded_org, other_org, owner):
    foreign = MembershipFactory(org=other_org)
    client.force_login(owner)
    before = ledger_snapshot()
    assert client.get(url("remove", funded_org, foreign.pk)).status_code == 404
    response = client.post(url("remove", funded_org, foreign.pk), follow=True)
    assert "not (or no longer) a member" in response.content.decode()
    assert Membership.objects.get(pk=foreign.pk).status == MembershipStatus.ACTIVE
    assert ledger_snapshot() == before


def test_members_filters(client, org, owner):
    alice = MembershipFactory(org=org, user=UserFactory(email="alice@example.com", name="Alice Q"), role="admin")
    MembershipFactory(org=org, user=UserFactory(email="bob@example.com"), role="member")
    suspended = MembershipFactory(org=org, user=UserFactory(email="sam@example.com"))
    suspended.status = MembershipStatus.SUSPENDED
    suspended.save()
    svc.invitation_create(org=org, email="pending@example.com", role="manager", actor=owner)
    client.force_login(owner)
    by_name = client.get(url("page", org), {"q": "alice q"}).content.decode()
    assert "alice@example.com" in by_name and "bob@example.com" not in by_name
    by_role = client.get(url("page", org), {"role": "admin"}).content.decode()
    assert alice.user.email in by_role and "bob@example.com" not in by_role
    by_status = client.get(url("page", org), {"status": "suspended"}).content.decode()
    assert "sam@example.com" in by_status and "bob@example.com" not in by_status
    pending = client.get(url("page", org), {"status": "pending"}).content.decode()
    assert "pending@example.com" in pending and "bob@example.com" not in pending
    assert "Sent by email" in pending  # the link itself is only in the invitee's email


def test_members_page_query_count_is_flat_for_10_and_10000_members(client, org, owner):
    """The same number of queries (and a page of 25 rows) for 10 and 10,000 members."""
    bulk_members(org, 10)
    client.force_login(owner)
    page = url("page", org)
    client.get(page)
    with CaptureQueriesContext(connection) as small:
        assert client.get(page).status_code == 200
    bulk_members(org, 9_990)
    with CaptureQueriesContext(connection) as large:
        response = client.get(page, {"page": 2})
        assert response.status_code == 200
    # 10, plus one for the page's "Used this month" column (reporting.usage.usage_this_month, one for all rows)
    assert len(small) == len(large) <= 11
    assert response.content.decode().count("data-member=") == 25


def test_invite_emails_the_link_and_never_shows_it(client, org, owner, mailoutbox, django_capture_on_commit_callbacks):
    client.force_login(owner)
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(
            url("invite", org), {"email": "ada@example.com", "role": "manager", "credit_allocation": "75"}
        )
    assert response.status_code == 302
    html = client.get(response.url).content.decode()
    assert "Invitation sent to ada@example.com" in html
    inv = Invitation.objects.get()
    assert inv.role == "manager" and inv.credit_allocation == 75
    [message] = mailoutbox
    token_path = re.search(r"https?://[^/\s]+(/invite/[^/\s]+/)", message.body).group(1)
    assert message.to == ["ada@example.com"]
    assert token_path not in html  # only the invitee gets the link: it is how they prove the address
    assert token_path not in client.get(url("page", org), {"status": "pending"}).content.decode()


@pytest.mark.parametrize(
    ("data", "error"),
    [
        ({"email": "nope", "role": "member"}, "valid email"),
        ({"email": "a@example.com", "role": "owner"}, "valid choice"),
        ({"email": "a@example.com", "role": "member", "credit_allocation": "-1"}, "Enter at least 0"),
        ({"email": "a@example.com", "role": "member", "credit_allocation": "1.5"}, "whole number"),
        ({"email": "owner@example.com", "role": "member"}, "already a member"),
    ],
)
def test_invite_bad_input_shows_error_and_invites_nobody(client, funded_org, owner, data, error):
    client.force_login(owner)
    response = client.post(url("invite", funded_org), data)
    assert response.status_code == 400
    assert error in response.content.decode()
    assert not Invitation.objects.exists()


def test_bulk_invite_upload_lists_skipped_rows(client, org, owner):
    client.force_login(owner)
    upload = SimpleUploadedFile("people.csv", b"email,role\na@example.com,member\nbad,member\n", "text/csv")
    html = client.post(url("invite_bulk", org), {"file": upload}).content.decode()
    assert "1 invitation sent" in html and "not a valid email" in html
    assert list(Invitation.objects.values_list("email", flat=True)) == ["a@example.com"]


@pytest.mark.parametrize(
    ("name", "content", "error"),
    [
        ("photo.png", b"\x89PNG", "not a CSV"),
        ("people.csv", b"\xff\xfe\x00bad", "not a CSV"),
        ("people.csv", "".join(f"p{i}@example.com,member\n" for i in range(101)).encode(), "at most 100"),
    ],
)
def test_bulk_invite_bad_file_invites_nobody(client, org, owner, name, content, error):
    client.force_login(owner)
    response = client.post(url("invite_bulk", org), {"file": SimpleUploadedFile(name, content)})
    assert response.status_code == 400 and error in response.content.decode()
    assert not Invitation.objects.exists()


def test_remove_confirm_states_the_credits_and_post_returns_them(client, funded_org, owner, member_membership):
    org_transfer_to_member(
        org=funded_org,
        membership_id=member_membership.pk,
        credit_type=CreditType.objects.get(slug="org-allocated"),
        amount=1_500,
    )
    client.force_login(owner)
    confirm = client.get(url("remove", funded_org, member_membership.pk), headers={"HX-Request": "true"})
    html = confirm.content.decode()
    assert "<html" not in html and "1,500 credits</strong> will return to the org wallet" in html
    response = client.post(url("remove", funded_org, member_membership.pk), follow=True)
    assert "1,500 credits returned to the org wallet" in response.content.decode()
    assert wallet_balance(Wallet.objects.for_org(funded_org)).total == 10_000


def test_remove_owner_from_page_is_refused(client, funded_org, owner):
    owner_m = Membership.objects.get(org=funded_org, user=owner)
    client.force_login(owner)
    before = ledger_snapshot()
    response = client.post(url("remove", funded_org, owner_m.pk), follow=True)
    assert "owner cannot be removed" in response.content.decode()
    assert ledger_snapshot() == before


def test_change_role_from_page(client, org, owner, member_membership):
    client.force_login(owner)
    client.post(url("role", org, member_membership.pk), {"role": "manager"})
    assert Membership.objects.get(pk=member_membership.pk).role == "manager"
    response = client.post(url("role", org, member_membership.pk), {"role": "owner"}, follow=True)
    assert "Pick a role" in response.content.decode()
    assert Membership.objects.get(pk=member_membership.pk).role == "manager"


def test_member_defaults_page_saves_and_refuses_out_of_range(client, org, owner):
    client.force_login(owner)
    page = url("defaults", org)
    assert "Seat assignment credits" in client.get(page).content.decode()
    good = {
        "auto_assign_default_role": "on",
        "default_role": "manager",
        "auto_assign_seats": "on",
        "seat_assignment_credits": "200",
        "default_credit_allocation": "100",
    }
    assert client.post(page, good).status_code == 302
    saved = MemberDefaults.objects.get(org=org)
    assert (saved.default_role, saved.seat_assignment_credits, saved.default_credit_allocation) == ("manager", 200, 100)
    for field, value in [
        ("seat_assignment_credits", "100001"),
        ("seat_assignment_credits", "-1"),
        ("default_credit_allocation", "abc"),
        ("default_role", "owner"),
    ]:
        response = client.post(page, {**good, field: value})
        assert response.status_code == 400, (field, value)
    saved.refresh_from_db()
    assert (saved.default_role, saved.seat_assignment_credits) == ("manager", 200)


def test_seat_assign_from_billing_page_beyond_seats_is_refused(client, funded_org, owner, member_membership):
    client.force_login(owner)
    billing = reverse("billing:page", args=[funded_org.slug])
    html = client.get(billing).content.decode()
    assert "Seat Management" in html and "<strong>0</strong> of 0 used" in html
    before = ledger_snapshot()
    response = client.post(url("seat_assign", funded_org, member_membership.pk), {"next": billing}, follow=True)
    assert "No free seat" in response.content.decode()
    assert ledger_snapshot() == before
    funded_org.seats = 1
    funded_org.save()
    client.post(url("seat_assign", funded_org, member_membership.pk), {"next": billing})
    assert Membership.objects.get(pk=member_membership.pk).has_seat
    assert "<strong>1</strong> of 1 used" in client.get(billing).content.decode()
    client.post(url("seat_revoke", funded_org, member_membership.pk))
    assert not Membership.objects.get(pk=member_membership.pk).has_seat


def test_seats_page_query_count_is_flat(client, org, owner):
    bulk_members(org, 5)
    client.force_login(owner)
    client.get(url("seats", org))
    with CaptureQueriesContext(connection) as small:
        client.get(url("seats", org))
    bulk_members(org, 2_000)
    with CaptureQueriesContext(connection) as large:
        client.get(url("seats", org))
    assert len(small) == len(large)


# ---------------------------------------------------------------- accepting through the link


def _token_path(inv):
    return reverse("invite_accept", args=[svc.invitation_token(inv)])


def test_accept_link_signs_up_a_new_user_and_joins(
    client, funded_org, owner, mailoutbox, django_capture_on_commit_callbacks
):
    MemberDefaults.objects.create(org=funded_org, default_credit_allocation=100)
    inv = svc.invitation_create(
        org=funded_org, email="new@example.com", role="member", credit_allocation=20, actor=owner
    )
    path = _token_path(inv)
    assert "Email me a link to join" in client.get(path).content.decode()  # a new address proves it first
    response = join_by_email(client, path, django_capture_on_commit_callbacks, mailoutbox, name="New Person")
    assert response.status_code == 302 and response.url == reverse("wallet")
    user = Membership.objects.get(org=funded_org, user__email="new@example.com").user
    assert wallet_balance(Wallet.objects.for_user(user)).total == 120
    assert Invitation.objects.get().status == InvitationStatus.ACCEPTED
    before = ledger_snapshot()
    assert client.post(path).status_code == 302  # clicked twice: joined once, paid once
    assert ledger_snapshot() == before


def test_accept_link_signs_in_an_existing_user(client, org, owner):
    UserFactory(email="known@example.com", password="pw-correct-horse-battery")
    inv = svc.invitation_create(org=org, email="known@example.com", role="admin", actor=owner)
    path = _token_path(inv)
    assert "Sign in and join" in client.get(path).content.decode()
    bad = client.post(path, {"password": "wrong"})
    assert bad.status_code == 400 and "does not match" in bad.content.decode()
    assert not Membership.objects.filter(org=org, user__email="known@example.com").exists()
    client.post(path, {"password": "pw-correct-horse-battery"})
    assert Membership.objects.get(org=org, user__email="known@example.com").role == "admin"


def test_accept_link_tampered_cancelled_used_expired_all_refused(client, funded_org, owner):
    from datetime import timedelta

    from django.utils import timezone

    MemberDefaults.objects.create(org=funded_org, default_credit_allocation=100)
    inv = svc.invitation_create(org=funded_org, email="new@example.com", role="member", actor=owner)
    path = _token_path(inv)
    before = ledger_snapshot()
    tampered = path[:-3] + ("x" if path[-2] != "x" else "y") + "/"
    response = client.post(tampered, {"password": "a-long-enough-passphrase"})
    assert response.status_code == 400 and "not valid" in response.content.decode()
    Invitation.objects.filter(pk=inv.pk).update(expires_at=timezone.now() - timedelta(minutes=1))
    response = client.post(path, {"password": "a-long-enough-passphrase"})
    assert response.status_code == 400 and "expired" in response.content.decode()
    Invitation.objects.filter(pk=inv.pk).update(status=InvitationStatus.CANCELLED)
    response = client.get(path)
    assert response.status_code == 400 and "cancelled" in response.content.decode()
    assert ledger_snapshot() == before
    assert not Membership.objects.filter(user__email="new@example.com").exists()


def test_accept_link_used_by_someone_else_is_refused(
    client, org, owner, mailoutbox, django_capture_on_commit_callbacks
):
    inv = svc.invitation_create(org=org, email="new@example.com", role="member", actor=owner)
    path = _token_path(inv)
    assert join_by_email(client, path, django_capture_on_commit_callbacks, mailoutbox).status_code == 302
    client.logout()
    other = UserFactory(email="other@example.com")
    client.force_login(other)
    response = client.post(path)
    assert response.status_code == 400 and "already been used" in response.content.decode()
    assert not Membership.objects.filter(user=other).exists()


def test_staff_cannot_lower_seats_below_the_seats_assigned(funded_org, owner, member_membership):
    from django.forms.models import model_to_dict

    from members.admin import OrganizationAdminForm

    funded_org.seats = 2
    funded_org.save()
    svc.seat_assign(org=funded_org, membership_id=member_membership.pk, actor=owner)
    data = {**model_to_dict(funded_org), "seats": 0}
    form = OrganizationAdminForm(data=data, instance=funded_org)
    assert not form.is_valid() and "Seats assigned now: 1." in str(form.errors["seats"])
    assert OrganizationAdminForm(data={**data, "seats": 1}, instance=funded_org).is_valid()


def test_staff_sets_seats_in_django_admin(client, org):
    staff = UserFactory(email="staff@example.com", is_staff=True)
    staff.is_superuser = True
    staff.save()
    client.force_login(staff)
    html = client.get(reverse("admin:orgs_organization_change", args=[org.pk])).content.decode()
    assert 'name="seats"' in html and "Member defaults" in html


# ---------------------------------------------------------------- invite credits, Member defaults, Needs attention


def _row(html: str, email: str, testid: str) -> str:
    """The table row of `email` in the table marked data-testid=`testid`."""
    table = re.search(rf'<table[^>]*data-testid="{testid}".*?</table>', html, re.S)
    assert table is not None, testid
    row = re.search(rf'<tr data-member="{re.escape(email)}">.*?</tr>', table.group(0), re.S)
    assert row is not None, (testid, email)
    return row.group(0)


def test_invite_with_an_allocation_from_the_page_moves_nothing_until_accepted(
    client, funded_org, owner, mailoutbox, django_capture_on_commit_callbacks
):
    from datetime import timedelta

    from django.utils import timezone

    MemberDefaults.objects.create(org=funded_org, default_credit_allocation=100)
    client.force_login(owner)
    before = ledger_snapshot()
    for email in ("kept@example.com", "cancelled@example.com", "expired@example.com"):
        response = client.post(
            url("invite", funded_org), {"email": email, "role": "member", "credit_allocation": "750"}
        )
        assert response.status_code == 302
    assert ledger_snapshot() == before  # three invitations of 750 each: not one credit moved
    # Listed with what joining gives: the 750 on the invitation and the 100 default allocation.
    assert "850 credits ($8.50)" in client.get(url("page", funded_org), {"status": "pending"}).content.decode()
    cancelled = Invitation.objects.get(email="cancelled@example.com")
    assert client.post(url("invite_cancel", funded_org, cancelled.pk)).status_code == 302
    expired = Invitation.objects.get(email="expired@example.com")
    Invitation.objects.filter(pk=expired.pk).update(expires_at=timezone.now() - timedelta(minutes=1))
    assert ledger_snapshot() == before
    client.logout()
    for inv, word in [(cancelled, "cancelled"), (expired, "expired")]:
        response = client.post(_token_path(inv), {"password": "a-long-enough-passphrase"})
        assert response.status_code == 400 and word in response.content.decode()
    assert ledger_snapshot() == before
    assert not Membership.objects.filter(user__email__in=["cancelled@example.com", "expired@example.com"]).exists()
    kept = Invitation.objects.get(email="kept@example.com")
    join_by_email(client, _token_path(kept), django_capture_on_commit_callbacks, mailoutbox)
    user = Membership.objects.get(org=funded_org, user__email="kept@example.com").user
    assert wallet_balance(Wallet.objects.for_user(user)).total == 850  # 750 invite + 100 default, on accept


def test_changing_member_defaults_on_the_page_leaves_members_alone_and_applies_to_the_next_joiner(
    client, funded_org, owner, member_membership, manager_membership, mailoutbox, django_capture_on_commit_callbacks
):
    funded_org.seats = 10
    funded_org.save()
    svc.seat_assign(org=funded_org, membership_id=manager_membership.pk, actor=owner)
    people = sorted(Membership.objects.filter(org=funded_org).values_list("pk", "role", "status", "has_seat", "notice"))
    before = ledger_snapshot()
    client.force_login(owner)
    response = client.post(
        url("defaults", funded_org),
        {
            "auto_assign_default_role": "on",
            "default_role": "admin",
            "auto_assign_seats": "on",
            "seat_assignment_credits": "200",
            "default_credit_allocation": "100",
        },
    )
    assert response.status_code == 302
    assert ledger_snapshot() == before
    after = sorted(Membership.objects.filter(org=funded_org).values_list("pk", "role", "status", "has_seat", "notice"))
    assert after == people
    # The next joiner: the invite form starts on the new default role, and joining pays the new defaults.
    html = client.get(url("page", funded_org), {"invite": "1"}).content.decode()  # the Invite dialog/page
    role_select = re.search(r'<select name="role"[^>]*id="invite_role".*?</select>', html, re.S).group(0)
    assert re.search(r'<option value="admin" selected>', role_select)
    client.post(url("invite", funded_org), {"email": "next@example.com", "role": "admin"})
    client.logout()
    join_by_email(
        client,
        _token_path(Invitation.objects.get(email="next@example.com")),
        django_capture_on_commit_callbacks,
        mailoutbox,
    )
    joined = Membership.objects.get(org=funded_org, user__email="next@example.com")
    assert (joined.role, joined.has_seat) == ("admin", True)
    assert wallet_balance(Wallet.objects.for_user(joined.user)).total == 300
    assert wallet_balance(Wallet.objects.for_org(funded_org)).total == 10_000 - 300


@pytest.mark.parametrize("cause", ["short wallet", "no free seat"])
def test_needs_attention_is_shown_to_admins_when_auto_assign_could_not_seat_a_joiner(client, org, owner, cause):
    from tests.factories import fund

    fund(org, 150 if cause == "short wallet" else 10_000)
    org.seats = 5 if cause == "short wallet" else 0
    org.save()
    MemberDefaults.objects.create(org=org, auto_assign_seats=True, seat_assignment_credits=200)
    inv = svc.invitation_create(org=org, email="late@example.com", role="member", actor=owner)
    joined = svc.invitation_accept(invitation_id=inv.pk, user=UserFactory(email="late@example.com")).membership
    assert not joined.has_seat
    client.force_login(owner)

    members = client.get(url("page", org)).content.decode()
    assert re.search(r'class="alert alert-warning" role="status">1 member joined without a seat', members)
    row = _row(members, "late@example.com", "members-table")
    assert "Needs attention" in row
    assert ("org wallet held less" if cause == "short wallet" else "no seat was free") in row
    assert "Needs attention" not in _row(members, owner.email, "members-table")

    for page in (url("seats", org), reverse("billing:page", args=[org.slug])):
        html = client.get(page).content.decode()
        assert "Needs attention" in _row(html, "late@example.com", "seat-table"), page
        assert "Needs attention" not in _row(html, owner.email, "seat-table"), page

    # Not a permanent mark: once seated by hand, the warning goes away.
    if cause == "short wallet":
        fund(org, 1_000)
    else:
        org.seats = 1
        org.save()
    svc.seat_assign(org=org, membership_id=joined.pk, actor=owner)
    members = client.get(url("page", org)).content.decode()
    assert "Needs attention" not in members and "joined without a seat" not in members


@pytest.mark.parametrize("invited", ["1", "²", "١", "１", "+1", "9" * 30])
def test_odd_invited_parameter_shows_the_plain_members_page(client, org, owner, invited):
    """One confirmation per invite: the message after the redirect (no second panel), so an old `?invited=<id>`
    link, however odd, is just the Members page (and '²', which str.isdigit() calls a digit, is not a 500)."""
    inv = svc.invitation_create(org=org, email="new@example.com", role="member", actor=owner)
    Invitation.objects.filter(pk=inv.pk).update(id=1)
    client.force_login(owner)
    response = client.get(url("page", org), {"invited": invited})
    assert response.status_code == 200
    assert 'data-testid="invite-sent-box"' not in response.content.decode()


# ---------------------------------------------------------------- issue 17: one confirmation, dialogs, dollars


def test_invite_says_it_once_and_lists_the_invitation_under_pending(client, org, owner):
    MemberDefaults.objects.create(org=org, default_credit_allocation=1_000)
    client.force_login(owner)
    response = client.post(
        url("invite", org), {"email": "ann@example.com", "role": "member", "credit_allocation": "250"}
    )
    assert response.status_code == 302 and response.url == url("page", org)
    html = client.get(response.url).content.decode()
    assert html.count("Invitation sent to ann@example.com") == 1  # the message; no second panel
    pending = re.search(r'<tr data-invite="ann@example.com">.*?</tr>', html, re.S).group(0)
    assert "1,250 credits ($12.50)" in pending  # 250 on the invite + the 1,000 default allocation
    assert "Revoke invite for ann@example.com" in pending


def test_invite_page_without_js_and_dialog_body_with_htmx(client, org, owner):
    client.force_login(owner)
    page = client.get(url("page", org), {"invite": "1"})
    html = page.content.decode()
    assert page.status_code == 200 and "<html" in html and 'data-testid="invite-dialog"' in html
    assert 'data-testid="members-table"' not in html
    body = client.get(url("page", org), {"invite": "1"}, headers={"HX-Request": "true"}).content.decode()
    assert "<html" not in body and 'id="invite-heading"' in body and "data-close-dialog" in body
    bad = client.post(url("invite", org), {"email": "not-an-address", "role": "member"})
    assert bad.status_code == 400 and 'data-testid="invite-dialog"' in bad.content.decode()
    assert "valid email" in bad.content.decode()
    assert not Invitation.objects.exists()


def test_members_page_shows_pending_invites_at_a_flat_query_count(client, org, owner):
    client.force_login(owner)
    page = url("page", org)
    svc.invitation_create(org=org, email="p0@example.com", role="member", actor=owner)
    client.get(page)
    with CaptureQueriesContext(connection) as few:
        client.get(page)
    for n in range(1, 15):
        svc.invitation_create(org=org, email=f"p{n}@example.com", role="member", actor=owner)
    with CaptureQueriesContext(connection) as many:
        html = client.get(page).content.decode()
    assert len(few) == len(many)
    assert html.count("data-invite=") == 10 and "All 15 pending invitations" in html


def test_invitation_page_says_the_credits_joining_really_gives(client, org, owner):
    """The invitation says the total joining moves (invite + default allocation + seat credits when a seat is
    auto-assigned), computed by the function joining uses."""
    from tests.factories import fund

    fund(org, 10_000)
    org.seats = 5
    org.save()
    MemberDefaults.objects.create(
        org=org, default_credit_allocation=1_000, auto_assign_seats=True, seat_assignment_credits=200
    )
    inv = svc.invitation_create(org=org, email="ann@example.com", role="member", credit_allocation=250, actor=owner)
    assert svc.invitation_welcome(inv).total == 1_450
    html = client.get(_token_path(inv)).content.decode()
    assert "You get <strong>1,450 credits ($14.50)</strong> when you join" in html
    joined = svc.invitation_accept(invitation_id=inv.pk, user=UserFactory(email="ann@example.com")).membership
    assert wallet_balance(Wallet.objects.for_user(joined.user)).total == 1_450
    # No free seat: the seat credits are not promised.
    org.seats = 1
    org.save()
    other = svc.invitation_create(org=org, email="bo@example.com", role="member", actor=owner)
    assert "You get <strong>1,000 credits ($10.00)</strong>" in client.get(_token_path(other)).content.decode()


def test_seat_assignment_asks_first_and_states_the_credits(client, funded_org, owner, member_membership):
    funded_org.seats = 3
    funded_org.save()
    MemberDefaults.objects.create(org=funded_org, seat_assignment_credits=500)
    client.force_login(owner)
    before = ledger_snapshot()
    confirm = client.get(url("seats", funded_org), {"assign": member_membership.pk, "next": url("page", funded_org)})
    html = confirm.content.decode()
    name = member_membership.user.display_name
    assert confirm.status_code == 200 and "<html" in html
    assert f"500 credits ($5.00) move from the org wallet to {name}" in html
    assert f'action="{url("seat_assign", funded_org, member_membership.pk)}"' in html
    assert ledger_snapshot() == before and not Membership.objects.get(pk=member_membership.pk).has_seat
    partial = client.get(url("seats", funded_org), {"assign": member_membership.pk}, headers={"HX-Request": "true"})
    assert "<html" not in partial.content.decode() and "Assign a seat to" in partial.content.decode()
    for odd in ("abc", "²", "999999"):
        assert client.get(url("seats", funded_org), {"assign": odd}).status_code == 404
    done = client.post(
        url("seat_assign", funded_org, member_membership.pk), {"next": url("page", funded_org)}, follow=True
    )
    assert f"Seat assigned to {name}. 500 credits ($5.00) moved from the org wallet to them." in done.content.decode()
    assert Membership.objects.get(pk=member_membership.pk).has_seat


def test_promoting_to_admin_asks_first_other_roles_save_at_once(client, org, owner, member_membership):
    client.force_login(owner)
    m = member_membership.pk
    page = client.post(url("role", org, m), {"role": "admin"})
    assert page.status_code == 200 and "will be able to buy credits" in page.content.decode()
    assert Membership.objects.get(pk=m).role == "member"
    dialog = client.post(url("role", org, m), {"role": "admin"}, headers={"HX-Request": "true"})
    assert "<html" not in dialog.content.decode() and 'name="confirmed"' in dialog.content.decode()
    assert Membership.objects.get(pk=m).role == "member"
    done = client.post(url("role", org, m), {"role": "admin", "confirmed": "1"}, follow=True)
    assert "is now Admin" in done.content.decode() and Membership.objects.get(pk=m).role == "admin"
    # Not a promotion to Admin: saved at once; with htmx a 204 and a toast.
    quick = client.post(url("role", org, m), {"role": "manager"}, headers={"HX-Request": "true"})
    assert quick.status_code == 204 and "is now Manager" in quick.headers["HX-Trigger"]
    assert Membership.objects.get(pk=m).role == "manager"


def test_members_page_rows_have_one_role_control_and_a_menu(client, org, owner, member_membership):
    client.force_login(owner)
    html = client.get(url("page", org)).content.decode()
    row = _row(html, member_membership.user.email, "members-table")
    assert row.count("<select") == 1 and 'class="row-menu"' in row
    assert "Remove " in row and "Assign seat to" not in row  # no seats in this org: nothing to assign
    assert 'class="table stack' in html and 'data-label="Credits from this org"' in row


def test_member_defaults_page_states_the_saved_amounts_with_dollars(client, org, owner):
    MemberDefaults.objects.create(org=org, seat_assignment_credits=500, default_credit_allocation=1_250)
    client.force_login(owner)
    html = client.get(url("defaults", org)).content.decode()
    assert "a seat moves <strong>500 credits ($5.00)</strong>" in html
    assert "each new member gets <strong>1,250 credits ($12.50)</strong>" in html
    bad = client.post(url("defaults", org), {"default_role": "member", "seat_assignment_credits": "-1"})
    assert bad.status_code == 400 and "a seat moves <strong>500 credits ($5.00)</strong>" in bad.content.decode()


def test_a_refused_role_change_with_htmx_reloads_the_page_with_the_reason(client, org, owner):
    client.force_login(owner)
    owner_row = Membership.objects.get(org=org, user=owner)
    response = client.post(url("role", org, owner_row.pk), {"role": "admin"}, headers={"HX-Request": "true"})
    assert response.status_code == 204 and response.headers["HX-Refresh"] == "true"
    assert "role cannot be changed" in client.get(url("page", org)).content.decode()
    assert Membership.objects.get(pk=owner_row.pk).role == "owner"


def test_invitation_email_states_the_real_total_with_dollars(
    client, org, owner, mailoutbox, django_capture_on_commit_callbacks
):
    MemberDefaults.objects.create(org=org, default_credit_allocation=1_000)
    client.force_login(owner)
    with django_capture_on_commit_callbacks(execute=True):
        client.post(url("invite", org), {"email": "ann@example.com", "role": "member", "credit_allocation": "250"})
    [message] = mailoutbox
    assert "You will get 1,250 credits ($12.50) when you join." in message.body
