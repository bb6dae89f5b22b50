"""Django admin for orgs, memberships and invitations: staff cannot move money around the domain services.

A membership's status, user, seat and the owner's role are the services' to change (removing a member returns
what the org gave, in the same transaction); the number fields take only what the Member defaults page takes;
an invitation's credit allocation is what the invite promised. Staff here is a superuser, the most powerful
staff there is.
"""

import re
from html.parser import HTMLParser

import pytest
from django.test import Client
from django.urls import reverse

from members.services import invitation_create
from orgs.models import Invitation, MemberDefaults, Membership, MembershipStatus, Organization, Role
from tests.factories import MembershipFactory, UserFactory, fund, ledger_snapshot
from wallets.models import CreditType, Entry, Transfer, TransferKind, Wallet
from wallets.selectors import ledger_problems, wallet_balance
from wallets.services import org_transfer_to_member

pytestmark = pytest.mark.django_db

BAD_NUMBERS = ["١٢٣", "+5", "1_000", "-1", "1.5", "１２３", "1e3", "abc", " 5 5"]


@pytest.fixture
def staff():
    user = UserFactory(email="staff@example.com", is_staff=True)
    user.is_superuser = True
    user.save(update_fields=["is_superuser"])
    client = Client()
    client.force_login(user)
    return user, client


def _give(org, membership, amount, slug="org-allocated"):
    return org_transfer_to_member(
        org=org, membership_id=membership.pk, credit_type=CreditType.objects.get(slug=slug), amount=amount
    )


@pytest.fixture
def member(funded_org):
    """A member the org gave 1,200 Org-allocated and 300 Promo credits."""
    fund(funded_org, 1_000, "promo")
    m = MembershipFactory(org=funded_org, user=UserFactory(email="member@example.com"))
    _give(funded_org, m, 1_200)
    _give(funded_org, m, 300, "promo")
    return m


class _FormFields(HTMLParser):
    """The values a browser would submit from the page's change form (what staff see, before they edit)."""

    def __init__(self):
        super().__init__()
        self.data: dict[str, str] = {}
        self._form = False
        self._select: str | None = None
        self._first_option: str | None = None
        self._textarea: str | None = None

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "form" and a.get("method", "").lower() == "post" and a.get("id", "").endswith("_form"):
            self._form = True
        if not self._form:
            return
        name = a.get("name")
        if tag == "input" and name and a.get("type") not in ("submit", "button", "file", "image"):
            if a.get("type") in ("checkbox", "radio"):
                if "checked" in a:
                    self.data[name] = a.get("value") or "on"
            else:
                self.data[name] = a.get("value") or ""
        elif tag == "select" and name:
            self._select, self._first_option = name, None
        elif tag == "option" and self._select:
            if self._first_option is None:
                self._first_option = a.get("value", "")
            if "selected" in a:
                self.data[self._select] = a.get("value", "")
        elif tag == "textarea" and name:
            self._textarea = name
            self.data[name] = ""

    def handle_data(self, data):
        if self._textarea:
            self.data[self._textarea] += data

    def handle_endtag(self, tag):
        if tag == "select" and self._select:
            self.data.setdefault(self._select, self._first_option or "")
            self._select = None
        elif tag == "textarea":
            self._textarea = None
        elif tag == "form":
            self._form = False


def _change_form(client, url) -> tuple[str, dict[str, str]]:
    response = client.get(url)
    assert response.status_code == 200
    html = response.content.decode()
    parser = _FormFields()
    parser.feed(html)
    assert parser.data, "no change form on the page"
    return html, {**parser.data, "_save": "Save"}


def _org_url(org):
    return reverse("admin:orgs_organization_change", args=[org.pk])


def _row(data, membership) -> str:
    """The inline prefix of a membership's row, e.g. 'memberships-1'."""
    for key, value in data.items():
        if key.startswith("memberships-") and key.endswith("-id") and value == str(membership.pk):
            return key[: -len("-id")]
    raise AssertionError(f"membership {membership.pk} is not in the inline")


def _membership_state():
    return sorted(
        Membership.objects.values_list(
            "pk", "org_id", "user_id", "role", "status", "has_seat", "removed_at", "removals", "seat_assignments"
        )
    )


def _messages(response) -> list[str]:
    return [str(m) for m in response.context["messages"]]


# ---------------------------------------------------------------- memberships: only the services change them


@pytest.mark.parametrize(
    ("field", "value"),
    [("status", "removed"), ("status", "suspended"), ("user", "swap"), ("DELETE", "on")],
)
def test_org_inline_cannot_remove_suspend_swap_or_delete_a_member(staff, funded_org, member, field, value):
    """Setting status=removed by hand kept the org's credits with the member: no Return."""
    _, client = staff
    html, data = _change_form(client, _org_url(funded_org))
    row = _row(data, member)
    assert f'name="{row}-status"' not in html  # shown, not editable
    if value == "swap":
        value = str(UserFactory(email="someone-else@example.com").pk)
    data[f"{row}-{field}"] = value
    before, people = ledger_snapshot(), _membership_state()
    response = client.post(_org_url(funded_org), data)
    assert response.status_code in (200, 302)
    assert ledger_snapshot() == before
    assert _membership_state() == people
    member.refresh_from_db()
    assert member.status == MembershipStatus.ACTIVE and member.user.email == "member@example.com"
    assert _returnable(funded_org, member) == 1_500


def _returnable(org, membership) -> int:
    from members.services import returnable_credits

    return returnable_credits(org=org, user=membership.user)


def test_org_inline_cannot_change_the_owners_role(staff, funded_org, owner):
    _, client = staff
    owner_m = Membership.objects.get(org=funded_org, user=owner)
    html, data = _change_form(client, _org_url(funded_org))
    row = _row(data, owner_m)
    select = re.search(rf'<select name="{row}-role"[^>]*>', html).group(0)
    assert "disabled" in select  # shown as Owner, not editable
    assert html.count('<option value="owner"') == 1  # only in the owner's own row: nobody else can be made owner
    data[f"{row}-role"] = Role.ADMIN
    before = _membership_state()
    client.post(_org_url(funded_org), data)
    assert _membership_state() == before
    owner_m.refresh_from_db()
    assert owner_m.role == Role.OWNER


def test_org_inline_offers_no_add_row_for_memberships(staff, funded_org, member):
    """People join through invitations (which pay the default allocation and seat), not by a hand-made row."""
    _, client = staff
    _, data = _change_form(client, _org_url(funded_org))
    n = int(data["memberships-TOTAL_FORMS"])
    # What "Add another" would post: the empty row's fields, filled in.
    row = {k.replace("__prefix__", str(n)): v for k, v in data.items() if k.startswith("memberships-__prefix__-")}
    row.update(
        {
            f"memberships-{n}-user": str(UserFactory(email="walk-in@example.com").pk),
            f"memberships-{n}-role": Role.ADMIN,
            f"memberships-{n}-status": MembershipStatus.ACTIVE,
            f"memberships-{n}-joined_at_0": "2026-01-01",
            f"memberships-{n}-joined_at_1": "10:00:00",
        }
    )
    data.update({"memberships-TOTAL_FORMS": str(n + 1), **row})
    before = _membership_state()
    client.post(_org_url(funded_org), data)
    assert _membership_state() == before
    assert not Membership.objects.filter(user__email="walk-in@example.com").exists()


def test_org_inline_changes_a_role_through_the_service(staff, funded_org, member):
    _, client = staff
    _, data = _change_form(client, _org_url(funded_org))
    data[f"{_row(data, member)}-role"] = Role.MANAGER
    before = ledger_snapshot()
    response = client.post(_org_url(funded_org), data)
    assert response.status_code == 302
    member.refresh_from_db()
    assert (member.role, member.status) == (Role.MANAGER, MembershipStatus.ACTIVE)
    assert ledger_snapshot() == before


@pytest.mark.parametrize(
    ("field", "value"),
    [("status", "removed"), ("has_seat", "on"), ("user", "swap"), ("org", "other"), ("removals", "7")],
)
def test_membership_changeform_cannot_change_what_the_services_own(staff, funded_org, other_org, member, field, value):
    _, client = staff
    url = reverse("admin:orgs_membership_change", args=[member.pk])
    html, data = _change_form(client, url)
    assert 'name="status"' not in html
    value = {"swap": lambda: str(UserFactory(email="x@example.com").pk), "other": lambda: str(other_org.pk)}.get(
        value, lambda: value
    )()
    data[field] = value
    before, people = ledger_snapshot(), _membership_state()
    client.post(url, data)
    assert ledger_snapshot() == before
    assert _membership_state() == people


def test_membership_cannot_be_added_or_deleted_in_admin(staff, funded_org, member):
    _, client = staff
    before, people = ledger_snapshot(), _membership_state()
    assert client.get(reverse("admin:orgs_membership_add")).status_code == 403
    assert client.post(reverse("admin:orgs_membership_delete", args=[member.pk]), {"post": "yes"}).status_code == 403
    client.post(
        reverse("admin:orgs_membership_changelist"),
        {"action": "delete_selected", "_selected_action": [member.pk], "post": "yes"},
    )
    assert ledger_snapshot() == before
    assert _membership_state() == people


# ---------------------------------------------------------------- the removal action


def _remove(client, memberships):
    return client.post(
        reverse("admin:orgs_membership_changelist"),
        {"action": "remove_members", "_selected_action": [m.pk for m in memberships]},
        follow=True,
    )


def _legs(transfer):
    return sorted(Entry.objects.filter(transfer=transfer).values_list("wallet__kind", "credit_type__slug", "amount"))


def test_removal_action_returns_the_credits_exactly_like_the_members_page(staff, funded_org, owner, member):
    user, client = staff
    twin = MembershipFactory(org=funded_org, user=UserFactory(email="twin@example.com"))
    _give(funded_org, twin, 1_200)
    _give(funded_org, twin, 300, "promo")
    org_wallet = Wallet.objects.for_org(funded_org)
    before_org = wallet_balance(org_wallet).total

    page = Client()
    page.force_login(owner)
    page.post(reverse("members:remove", args=[funded_org.slug, twin.pk]))
    by_page = Transfer.objects.get(kind=TransferKind.RETURN)

    response = _remove(client, [member])
    assert response.status_code == 200
    assert any("1,500 credits returned to the org wallet" in m for m in _messages(response))
    by_admin = Transfer.objects.filter(kind=TransferKind.RETURN).exclude(pk=by_page.pk).get()  # exactly one more

    assert by_admin.idempotency_key == f"return:{member.pk}:1"
    assert by_admin.actor_id == user.pk and by_admin.org_id == funded_org.pk
    assert by_admin.memo == "Return from member@example.com (removed)"
    assert _legs(by_admin) == _legs(by_page)  # same shape: each pocket back to the org wallet, per credit type
    member.refresh_from_db()
    assert member.status == MembershipStatus.REMOVED and member.removed_at and member.removals == 1
    assert _returnable(funded_org, member) == 0
    assert wallet_balance(org_wallet).total == before_org + 1_500 * 2
    assert ledger_problems() == []


def test_removal_action_refuses_the_owner_with_a_message(staff, funded_org, owner, member):
    _, client = staff
    owner_m = Membership.objects.get(org=funded_org, user=owner)
    before = ledger_snapshot()
    response = _remove(client, [owner_m])
    assert any("owner cannot be removed" in m for m in _messages(response))
    assert ledger_snapshot() == before
    owner_m.refresh_from_db()
    assert (owner_m.role, owner_m.status) == (Role.OWNER, MembershipStatus.ACTIVE)


def test_removal_action_with_the_owner_selected_removes_only_the_others(staff, funded_org, owner, member):
    _, client = staff
    owner_m = Membership.objects.get(org=funded_org, user=owner)
    response = _remove(client, [owner_m, member])
    messages = _messages(response)
    assert any("owner cannot be removed" in m for m in messages)
    assert any("member@example.com" in m and "1,500 credits returned" in m for m in messages)
    assert Transfer.objects.filter(kind=TransferKind.RETURN).count() == 1
    assert Membership.objects.get(pk=owner_m.pk).status == MembershipStatus.ACTIVE
    assert ledger_problems() == []


def test_removal_action_twice_returns_once(staff, funded_org, member):
    _, client = staff
    _remove(client, [member])
    before = ledger_snapshot()
    response = _remove(client, [member])
    assert any("not (or no longer) a member" in m for m in _messages(response))
    assert ledger_snapshot() == before
    assert Transfer.objects.filter(kind=TransferKind.RETURN).count() == 1


# ---------------------------------------------------------------- number fields


def _defaults_state(org):
    return (
        Organization.objects.filter(pk=org.pk).values_list("seats", flat=True).get(),
        list(
            MemberDefaults.objects.filter(org=org).values_list("seat_assignment_credits", "default_credit_allocation")
        ),
    )


@pytest.mark.parametrize("bad", BAD_NUMBERS)
@pytest.mark.parametrize(
    "field", ["seats", "member_defaults-0-seat_assignment_credits", "member_defaults-0-default_credit_allocation"]
)
def test_number_fields_refuse_what_the_member_defaults_page_refuses(staff, funded_org, member, field, bad):
    _, client = staff
    _, data = _change_form(client, _org_url(funded_org))
    data[field] = bad
    before, state = ledger_snapshot(), _defaults_state(funded_org)
    response = client.post(_org_url(funded_org), data)
    assert response.status_code == 200, bad  # the form again, with the error
    assert 'class="errorlist' in response.content.decode()
    assert _defaults_state(funded_org) == state
    assert ledger_snapshot() == before


@pytest.mark.parametrize(
    ("field", "too_big"),
    [
        ("member_defaults-0-seat_assignment_credits", "100,001"),
        ("member_defaults-0-default_credit_allocation", "1000001"),
    ],
)
def test_member_defaults_keep_the_settings_page_ranges(staff, funded_org, field, too_big):
    _, client = staff
    _, data = _change_form(client, _org_url(funded_org))
    data[field] = too_big
    state = _defaults_state(funded_org)
    response = client.post(_org_url(funded_org), data)
    assert response.status_code == 200 and "too large" in response.content.decode()
    assert _defaults_state(funded_org) == state


def test_number_fields_take_plain_and_grouped_whole_numbers(staff, funded_org):
    user, client = staff
    _, data = _change_form(client, _org_url(funded_org))
    data.update(
        {
            "seats": "12",
            "member_defaults-0-seat_assignment_credits": "0",
            "member_defaults-0-default_credit_allocation": "1,000",
        }
    )
    before = ledger_snapshot()
    response = client.post(_org_url(funded_org), data)
    assert response.status_code == 302
    assert _defaults_state(funded_org) == (12, [(0, 1_000)])
    assert MemberDefaults.objects.get(org=funded_org).updated_by == user
    assert ledger_snapshot() == before


# ---------------------------------------------------------------- invitations


@pytest.fixture
def invitation(funded_org, owner):
    return invitation_create(
        org=funded_org, email="new@example.com", role=Role.MEMBER, credit_allocation=750, actor=owner
    )


def test_invitation_allocation_org_and_email_are_read_only(staff, funded_org, other_org, invitation):
    _, client = staff
    url = reverse("admin:orgs_invitation_change", args=[invitation.pk])
    html, data = _change_form(client, url)
    assert 'name="credit_allocation"' not in html and "750" in html
    data.update({"credit_allocation": "999999", "org": str(other_org.pk), "email": "attacker@example.com"})
    client.post(url, data)
    invitation.refresh_from_db()
    assert (invitation.credit_allocation, invitation.org_id, invitation.email) == (
        750,
        funded_org.pk,
        "new@example.com",
    )


def test_invitations_are_not_added_in_admin(staff, funded_org):
    """Invitations come from the Members page, which emails the signed link."""
    _, client = staff
    assert client.get(reverse("admin:orgs_invitation_add")).status_code == 403
    response = client.post(
        reverse("admin:orgs_invitation_add"),
        {"org": funded_org.pk, "email": "x@example.com", "role": "member", "credit_allocation": "١٢٣"},
    )
    assert response.status_code == 403
    assert not Invitation.objects.exists()
