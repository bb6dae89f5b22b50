"""The Transfer dialog: one member, selected members, all members; bad input moves nothing."""

import json
import re
import uuid

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from orgs.models import MembershipStatus
from tests.factories import MembershipFactory, UserFactory, bulk_members, fund, ledger_snapshot
from wallets.models import Entry, Transfer, TransferKind, Wallet
from wallets.selectors import ledger_problems, wallet_balance

pytestmark = pytest.mark.django_db

HTMX = {"HTTP_HX_REQUEST": "true", "HTTP_HX_TARGET": "transfer-dialog"}


def _url(org, name="transfer"):
    return reverse(f"billing:{name}", args=[org.slug])


def _key(html: str) -> str:
    return re.search(r'name="idempotency_key" value="([0-9a-f-]+)"', html).group(1)


def _one(member, amount="250", **extra):
    data = {
        "mode": "one",
        "recipient": str(member.pk),
        "credit_type": "org-allocated",
        "amount": amount,
        "message": "Lab time",
        "idempotency_key": str(uuid.uuid4()),
    }
    data.update(extra)
    return data


def _org_total(org) -> int:
    return wallet_balance(Wallet.objects.for_org(org)).total


@pytest.fixture
def admin_client(client, funded_org, owner):
    client.force_login(owner)
    return client


# --- opening the dialog -------------------------------------------------------------------------------


def test_transfer_button_on_balance_card_for_owner(admin_client, funded_org):
    html = admin_client.get(reverse("billing:page", args=[funded_org.slug])).content.decode()
    assert f'href="{_url(funded_org)}"' in html
    assert 'hx-target="#transfer-dialog"' in html
    assert '<dialog id="transfer-dialog"' in html


def test_dialog_htmx_partial_and_plain_page(admin_client, funded_org):
    partial = admin_client.get(_url(funded_org), **HTMX).content.decode()
    assert "<html" not in partial
    assert 'id="transfer-body"' in partial
    assert "Transfer Credits" in partial
    assert "data-close-dialog" in partial
    page = admin_client.get(_url(funded_org)).content.decode()
    assert "<html" in page and "Transfer Credits" in page
    assert _key(page) != _key(partial)  # a fresh idempotency key per opening


def test_credit_types_listed_are_only_those_the_org_holds(admin_client, funded_org):
    html = admin_client.get(_url(funded_org), **HTMX).content.decode()
    assert "Org-allocated (10,000 available)" in html
    assert 'value="promo"' not in html
    fund(funded_org, 300, "promo")
    html = admin_client.get(_url(funded_org), **HTMX).content.decode()
    assert "Promo (300 available)" in html


def test_empty_org_wallet_says_so(client, org, owner):
    client.force_login(owner)
    html = client.get(_url(org), **HTMX).content.decode()
    assert "The org wallet is empty" in html
    assert "Transfer Credits" not in html


def test_bulk_modes_have_their_words(admin_client, funded_org):
    selected = admin_client.get(_url(funded_org) + "?mode=selected", **HTMX).content.decode()
    assert "Amount per member" in selected
    assert 'placeholder="Monthly allocation"' in selected
    assert ">Transfer</button>" in selected
    assert "Select all" in selected
    all_ = admin_client.get(_url(funded_org) + "?mode=all", **HTMX).content.decode()
    assert 'data-testid="all-count">1<' in all_  # the owner alone
    assert ">Transfer</button>" in all_


def test_small_org_uses_a_dropdown_large_org_a_type_ahead(admin_client, funded_org):
    bulk_members(funded_org, 19)  # 20 with the owner
    html = admin_client.get(_url(funded_org), **HTMX).content.decode()
    assert '<select name="recipient"' in html
    assert len(re.findall(r'<option value="\d+"', html)) == 20
    bulk_members(funded_org, 1)
    html = admin_client.get(_url(funded_org), **HTMX).content.decode()
    assert '<select name="recipient"' not in html
    assert 'type="search" name="q"' in html
    assert html.count('type="radio" name="recipient"') == 20  # a capped first page, never the whole org


def test_type_ahead_search_finds_members(admin_client, funded_org):
    bulk_members(funded_org, 30)
    zed = MembershipFactory(org=funded_org, user=UserFactory(email="zed@lab.example", name="Zed Quark"))
    html = admin_client.get(_url(funded_org, "transfer_members"), {"mode": "one", "q": "quark"}).content.decode()
    assert f'value="{zed.pk}"' in html
    assert html.count('type="radio"') == 1
    html = admin_client.get(
        _url(funded_org, "transfer_members"), {"mode": "selected", "q": "nobody-matches", "member": [zed.pk]}
    ).content.decode()
    assert f'name="member" value="{zed.pk}" checked' in html  # checked people stay checked while searching
    assert "Select all 0" in html


def test_preview_shows_from_to_type_amount_and_balances(admin_client, funded_org, member_membership):
    html = admin_client.get(
        _url(funded_org, "transfer_preview"),
        {"mode": "one", "recipient": member_membership.pk, "credit_type": "org-allocated", "amount": "2,500"},
    ).content.decode()
    assert "Acme Quantum org wallet" in html
    assert member_membership.user.display_name in html
    assert "Org-allocated" in html
    assert "2,500" in html
    assert "10,000 → 7,500" in html


def test_preview_total_and_shortfall_for_all(admin_client, funded_org):
    bulk_members(funded_org, 4)  # 5 with the owner
    html = admin_client.get(
        _url(funded_org, "transfer_preview"), {"mode": "all", "credit_type": "org-allocated", "amount": "1500"}
    ).content.decode()
    # The sticky footer's total comes with the preview (out of band), in credits and dollars.
    assert 'id="transfer-summary" hx-swap-oob="true"' in html
    assert 'data-testid="transfer-total">7,500 credits ($75.00)<' in html
    assert 'data-testid="transfer-amount">1,500 credits ($15.00)<' in html
    assert "10,000 → 2,500 credits ($25.00)" in html
    html = admin_client.get(
        _url(funded_org, "transfer_preview"), {"mode": "all", "credit_type": "org-allocated", "amount": "2500"}
    ).content.decode()
    assert 'data-testid="transfer-total">12,500 credits ($125.00)<' in html
    assert "2,500 short of the 12,500 needed" in html
    assert 'data-testid="transfer-footer-shortfall">2,500 short<' in html


def test_preview_of_selected_members_names_them_before_the_click(admin_client, funded_org):
    """Selected mode says who gets the credits: the first three by name, then how many more; one query for them."""
    members = bulk_members(funded_org, 5)
    names = [m.user.display_name for m in members]
    params = {"mode": "selected", "credit_type": "org-allocated", "amount": "10"}
    html = admin_client.get(_url(funded_org, "transfer_preview"), {**params, "member": [members[0].pk, members[1].pk]})
    assert f'data-testid="transfer-names">: {names[0]}, {names[1]}<' in html.content.decode()
    with CaptureQueriesContext(connection) as few:
        admin_client.get(_url(funded_org, "transfer_preview"), {**params, "member": [members[0].pk]})
    with CaptureQueriesContext(connection) as many:
        html = admin_client.get(_url(funded_org, "transfer_preview"), {**params, "member": [m.pk for m in members]})
    text = html.content.decode()
    assert "5 members" in text and f": {names[0]}, {names[1]}, {names[2]} and 2 more<" in text
    assert names[3] not in text
    assert len(many.captured_queries) == len(few.captured_queries)


# --- one member ---------------------------------------------------------------------------------------


def test_one_member_transfer_moves_credits_and_refreshes_the_card(admin_client, funded_org, member_membership, owner):
    data = _one(member_membership)
    response = admin_client.post(_url(funded_org, "transfer_submit"), data, **HTMX)
    assert response.status_code == 200
    triggers = json.loads(response.headers["HX-Trigger"])
    assert "balances-changed" in triggers
    message = f"Transferred 250 Org-allocated credits ($2.50) to {member_membership.user.display_name}."
    assert triggers["toast"] == {"message": message, "level": "success"}
    html = response.content.decode()
    assert f'data-testid="transfer-success">{message}<' in html  # the dialog's result view
    assert 'name="idempotency_key"' not in html  # no form to resubmit: "Transfer more" opens a fresh one
    assert wallet_balance(Wallet.objects.for_user(member_membership.user)).total == 250
    assert _org_total(funded_org) == 9_750
    transfer = Transfer.objects.get(kind=TransferKind.TRANSFER)
    assert transfer.actor == owner and transfer.memo == "Lab time"
    assert ledger_problems() == []
    # The Credits tab lists it with the actor and the message.
    page = admin_client.get(reverse("billing:page", args=[funded_org.slug])).content.decode()
    assert "Lab time" in page and "-250" in page


def test_one_member_transfer_without_js_redirects_with_a_message(admin_client, funded_org, member_membership):
    response = admin_client.post(_url(funded_org, "transfer_submit"), _one(member_membership), follow=True)
    assert response.redirect_chain[-1][0] == reverse("billing:page", args=[funded_org.slug])
    assert "Transferred 250 Org-allocated credits ($2.50) to" in response.content.decode()


def test_resubmitted_form_moves_once(admin_client, funded_org, member_membership):
    data = _one(member_membership)
    for _ in range(3):
        assert admin_client.post(_url(funded_org, "transfer_submit"), data, **HTMX).status_code == 200
    assert Transfer.objects.filter(kind=TransferKind.TRANSFER).count() == 1
    assert _org_total(funded_org) == 9_750


def test_insufficient_credits_says_what_is_missing(admin_client, funded_org, member_membership):
    before = ledger_snapshot()
    html = admin_client.post(
        _url(funded_org, "transfer_submit"), _one(member_membership, amount="10001"), **HTMX
    ).content.decode()
    assert "1 missing" in html
    assert ledger_snapshot() == before


@pytest.mark.parametrize(
    ("amount", "message"),
    [
        ("0", "Enter an amount greater than zero."),
        ("-5", "Enter an amount greater than zero."),
        ("1.5", "Credits are whole numbers"),
        ("abc", "Enter a whole number of credits"),
        ("", "Enter an amount."),
        ("1e3", "Enter a whole number of credits"),
        ("0x10", "Enter a whole number of credits"),
        ("1,00", "Enter a whole number of credits"),
        (str(10**15 + 1), "That amount is too large"),
        ("9" * 5000, "That amount is too large"),
    ],
)
@pytest.mark.parametrize("mode", ["one", "all"])
def test_bad_amounts_get_a_message_next_to_the_field_and_move_nothing(
    admin_client, funded_org, member_membership, amount, message, mode
):
    before = ledger_snapshot()
    data = _one(member_membership, amount=amount, mode=mode)
    html = admin_client.post(_url(funded_org, "transfer_submit"), data, **HTMX).content.decode()
    field = re.search(r'<div class="field has-error">\s*<label for="id_amount">.*?</div>', html, re.S)
    assert field is not None, html
    assert message in field.group(0)
    assert ledger_snapshot() == before


def test_amount_with_thousands_separators_is_accepted(admin_client, funded_org, member_membership):
    admin_client.post(_url(funded_org, "transfer_submit"), _one(member_membership, amount="1,000"), **HTMX)
    assert wallet_balance(Wallet.objects.for_user(member_membership.user)).total == 1_000


def test_forged_recipients_are_refused(admin_client, funded_org, other_org):
    removed = MembershipFactory(org=funded_org)
    removed.status = MembershipStatus.REMOVED
    removed.save()
    foreign = MembershipFactory(org=other_org)
    before = ledger_snapshot()
    for recipient in [str(foreign.pk), str(removed.pk), "999999", "abc", "", "1 OR 1=1"]:
        data = _one(foreign, recipient=recipient)
        html = admin_client.post(_url(funded_org, "transfer_submit"), data, **HTMX).content.decode()
        assert ("not (or no longer) a member of this organization" in html) or (
            "Pick a member to receive the credits." in html
        ), recipient
    assert ledger_snapshot() == before


def test_credit_type_the_org_does_not_hold_is_refused(admin_client, funded_org, member_membership):
    before = ledger_snapshot()
    for slug in ["promo", "bogus", ""]:
        data = _one(member_membership, credit_type=slug)
        html = admin_client.post(_url(funded_org, "transfer_submit"), data, **HTMX).content.decode()
        assert "The org wallet holds no credits of that type." in html or "This field is required." in html
    assert ledger_snapshot() == before


def test_missing_or_bad_idempotency_key_is_refused(admin_client, funded_org, member_membership):
    before = ledger_snapshot()
    for key in ["", "not-a-uuid"]:
        html = admin_client.post(
            _url(funded_org, "transfer_submit"), _one(member_membership, idempotency_key=key), **HTMX
        ).content.decode()
        assert "This form has expired" in html
    assert ledger_snapshot() == before


def test_same_key_with_other_details_is_a_conflict(admin_client, funded_org, member_membership):
    data = _one(member_membership)
    admin_client.post(_url(funded_org, "transfer_submit"), data, **HTMX)
    before = ledger_snapshot()
    html = admin_client.post(_url(funded_org, "transfer_submit"), {**data, "amount": "999"}, **HTMX).content.decode()
    assert "already submitted with different details" in html
    assert ledger_snapshot() == before


def test_non_admins_get_403_and_strangers_404(client, funded_org, manager_membership, member_membership, other_org):
    before = ledger_snapshot()
    for membership in (manager_membership, member_membership):
        client.force_login(membership.user)
        assert client.get(_url(funded_org)).status_code == 403
        assert client.post(_url(funded_org, "transfer_submit"), _one(member_membership)).status_code == 403
        assert client.get(_url(funded_org, "transfer_members")).status_code == 403
        assert client.get(_url(funded_org, "transfer_preview")).status_code == 403
    stranger = MembershipFactory(org=other_org, role="admin")
    client.force_login(stranger.user)
    assert client.post(_url(funded_org, "transfer_submit"), _one(member_membership)).status_code == 404
    client.logout()
    assert client.post(_url(funded_org, "transfer_submit"), _one(member_membership)).status_code == 302
    assert ledger_snapshot() == before


def test_missing_csrf_token_is_403(funded_org, owner, member_membership):
    client = Client(enforce_csrf_checks=True)
    client.force_login(owner)
    before = ledger_snapshot()
    assert client.post(_url(funded_org, "transfer_submit"), _one(member_membership)).status_code == 403
    assert ledger_snapshot() == before


# --- many members -------------------------------------------------------------------------------------


def _bulk(mode, amount="100", **extra):
    data = {
        "mode": mode,
        "credit_type": "org-allocated",
        "amount": amount,
        "reason": "Monthly allocation",
        "idempotency_key": str(uuid.uuid4()),
    }
    data.update(extra)
    return data


def test_selected_members_get_one_bulk_transfer(admin_client, funded_org, owner):
    a, b, c = (MembershipFactory(org=funded_org) for _ in range(3))
    response = admin_client.post(_url(funded_org, "transfer_submit"), _bulk("selected", member=[a.pk, b.pk]), **HTMX)
    triggers = json.loads(response.headers["HX-Trigger"])
    assert "balances-changed" in triggers
    message = "Transferred 200 Org-allocated credits ($2.00) to 2 members, 100 credits ($1.00) each."
    assert triggers["toast"]["message"] == message
    assert message in response.content.decode()
    transfer = Transfer.objects.get(kind=TransferKind.BULK_TRANSFER)
    assert transfer.memo == "Monthly allocation" and transfer.actor == owner
    entries = Entry.objects.filter(transfer=transfer)
    assert entries.filter(amount=-200).count() == 1 and entries.filter(amount=100).count() == 2
    assert wallet_balance(Wallet.objects.for_user(c.user)).total == 0
    assert ledger_problems() == []


def test_all_members_get_one_bulk_transfer(admin_client, funded_org):
    bulk_members(funded_org, 9)  # 10 with the owner
    html = admin_client.post(_url(funded_org, "transfer_submit"), _bulk("all", "250"), **HTMX).content.decode()
    assert "Transferred 2,500 Org-allocated credits ($25.00) to 10 members, 250 credits ($2.50) each." in html
    assert _org_total(funded_org) == 7_500
    assert Entry.objects.filter(transfer__kind=TransferKind.BULK_TRANSFER, amount=250).count() == 10


def test_select_all_matching_a_search(admin_client, funded_org):
    lab = [MembershipFactory(org=funded_org, user=UserFactory(email=f"p{i}@physics.example")) for i in range(3)]
    MembershipFactory(org=funded_org, user=UserFactory(email="x@chem.example"))
    admin_client.post(_url(funded_org, "transfer_submit"), _bulk("selected", q="physics", match_all="on"), **HTMX)
    assert all(wallet_balance(Wallet.objects.for_user(m.user)).total == 100 for m in lab)
    assert _org_total(funded_org) == 9_700


def test_bulk_blocked_shows_the_shortfall_and_moves_nothing(admin_client, funded_org):
    bulk_members(funded_org, 9)
    before = ledger_snapshot()
    html = admin_client.post(_url(funded_org, "transfer_submit"), _bulk("all", "1001"), **HTMX).content.decode()
    assert "10 missing" in html
    assert 'data-testid="transfer-shortfall"' in html
    assert ledger_snapshot() == before


def test_bulk_with_forged_or_no_members_is_refused(admin_client, funded_org, other_org):
    a = MembershipFactory(org=funded_org)
    foreign = MembershipFactory(org=other_org)
    before = ledger_snapshot()
    html = admin_client.post(
        _url(funded_org, "transfer_submit"), _bulk("selected", member=[a.pk, foreign.pk]), **HTMX
    ).content.decode()
    assert "not (or no longer) members of this organization" in html
    html = admin_client.post(_url(funded_org, "transfer_submit"), _bulk("selected"), **HTMX).content.decode()
    assert "Pick at least one member." in html
    assert ledger_snapshot() == before


def test_search_and_preview_without_js_move_nothing(admin_client, funded_org, member_membership):
    before = ledger_snapshot()
    html = admin_client.post(
        _url(funded_org, "transfer_submit"), _one(member_membership, action="preview")
    ).content.decode()
    assert "10,000 → 9,750" in html
    html = admin_client.post(
        _url(funded_org, "transfer_submit"), _bulk("selected", action="search", q=member_membership.user.email)
    ).content.decode()
    assert f'value="{member_membership.pk}"' in html
    assert ledger_snapshot() == before


@pytest.mark.parametrize("amount", ["", "12", "abc"])
def test_search_without_js_is_a_search_not_a_submit(admin_client, funded_org, amount):
    """The no-JS Search button redisplays the form with the matches: no "enter an amount" or "pick a member" errors,
    what was typed (amount, reason, the ticked members, the form's key) kept, nothing moved."""
    ticked = MembershipFactory(org=funded_org, user=UserFactory(name="Ticked Person", email="ticked@example.com"))
    found = MembershipFactory(org=funded_org, user=UserFactory(name="Zed Found", email="zed@physics.example"))
    before = ledger_snapshot()
    data = _bulk("selected", amount, action="search", q="physics", member=[ticked.pk], reason="Kickoff")
    response = admin_client.post(_url(funded_org, "transfer_submit"), data)
    assert response.status_code == 200
    html = response.content.decode()
    assert 'class="field-error"' not in html and 'class="form-error"' not in html and "has-error" not in html
    assert f'name="member" value="{ticked.pk}" checked' in html  # still ticked
    assert f'name="member" value="{found.pk}">' in html  # the match, ready to tick
    assert 'value="Kickoff"' in html and f'value="{data["idempotency_key"]}"' in html
    if amount:
        assert f'name="amount" value="{amount}"' in html
    assert ledger_snapshot() == before


def test_search_without_js_in_one_member_mode_has_no_errors(admin_client, funded_org):
    bulk_members(funded_org, 25)  # a type-ahead, not a dropdown
    data = _one(MembershipFactory(org=funded_org), "", action="search", q="bulk", recipient="")
    html = admin_client.post(_url(funded_org, "transfer_submit"), data).content.decode()
    assert 'class="field-error"' not in html and "has-error" not in html
    assert 'type="radio" name="recipient"' in html


# --- query counts -------------------------------------------------------------------------------------


def _queries(client, url, params=None) -> int:
    with CaptureQueriesContext(connection) as ctx:
        assert client.get(url, params or {}, **HTMX).status_code == 200
    return len(ctx.captured_queries)


def test_dialog_query_count_is_constant_from_a_few_to_10000_members(
    admin_client, funded_org, django_assert_num_queries
):
    bulk_members(funded_org, 25)
    picked = list(funded_org.memberships.values_list("pk", flat=True)[:3])
    cases = [
        (_url(funded_org), {"mode": "one"}),
        (_url(funded_org), {"mode": "selected"}),
        (_url(funded_org), {"mode": "all"}),
        (_url(funded_org, "transfer_members"), {"mode": "selected", "q": "bulk", "member": picked}),
        (_url(funded_org, "transfer_preview"), {"mode": "all", "credit_type": "org-allocated", "amount": "5"}),
    ]
    small = [_queries(admin_client, url, params) for url, params in cases]
    bulk_members(funded_org, 10_000 - 26)
    large = [_queries(admin_client, url, params) for url, params in cases]
    assert small == large
    assert all(0 < n <= 10 for n in small), small
    with django_assert_num_queries(small[0]):
        html = admin_client.get(_url(funded_org), **HTMX).content.decode()
    assert html.count('type="radio" name="recipient"') == 20


@pytest.mark.postgres
def test_bulk_transfer_post_query_count_does_not_grow_with_members(admin_client, funded_org):
    """The whole POST (permissions, form, one set-based bulk transfer, fresh form) is the same number of queries."""
    bulk_members(funded_org, 4)

    def post() -> int:
        with CaptureQueriesContext(connection) as ctx:
            html = admin_client.post(_url(funded_org, "transfer_submit"), _bulk("all", "2"), **HTMX).content.decode()
        assert "Org-allocated credits ($" in html and "2 credits ($0.02) each." in html
        return len(ctx.captured_queries)

    small = post()
    bulk_members(funded_org, 1_000)
    assert post() == small
    assert Entry.objects.filter(transfer__kind=TransferKind.BULK_TRANSFER, amount=2).count() == 5 + 1_005
    assert ledger_problems() == []


def test_all_members_includes_a_member_without_a_default_wallet_yet(admin_client, funded_org):
    """Users inserted outside create_user (imported rows) have no Default wallet; a bulk transfer makes one."""
    from orgs.models import User
    from orgs.services import membership_add

    (staff,) = User.objects.bulk_create([User(email="staff@example.com", password="!")])
    staff = User.objects.get(email="staff@example.com")
    membership_add(org=funded_org, user=staff, role="member")
    assert not Wallet.objects.filter(user=staff).exists()
    html = admin_client.post(_url(funded_org, "transfer_submit"), _bulk("all", "10"), **HTMX).content.decode()
    assert "Transferred 20 Org-allocated credits ($0.20) to 2 members, 10 credits ($0.10) each." in html
    assert wallet_balance(Wallet.objects.for_user(staff)).total == 10
    assert ledger_problems() == []


# --- the same URL opened on its own (a new tab, a bookmark): a plain page, no htmx targets -------------


def test_standalone_transfer_page_has_no_htmx_dialog_targets(admin_client, funded_org):
    """Opened directly, the page has no #transfer-dialog, so its form and mode links must not aim htmx at it
    (htmx would swallow the submit and do nothing); the live preview and type-ahead stay."""
    for mode in ("one", "selected", "all"):
        html = admin_client.get(_url(funded_org) + f"?mode={mode}").content.decode()
        assert "#transfer-dialog" not in html
        assert "hx-post" not in html
        assert f'action="{_url(funded_org, "transfer_submit")}"' in html
        assert 'hx-get="' + _url(funded_org, "transfer_preview") + '"' in html


def test_dialog_transfer_form_posts_with_htmx_into_the_dialog(admin_client, funded_org):
    for mode in ("one", "selected", "all"):
        html = admin_client.get(_url(funded_org) + f"?mode={mode}", **HTMX).content.decode()
        assert f'hx-post="{_url(funded_org, "transfer_submit")}" hx-target="#transfer-dialog"' in html
        assert html.count('hx-target="#transfer-dialog"') == 4  # the three mode links and the form


def test_standalone_transfer_post_redirects_with_the_message(admin_client, funded_org):
    member = MembershipFactory(org=funded_org)
    response = admin_client.post(_url(funded_org, "transfer_submit"), _one(member, "300"))
    assert response.status_code == 302
    assert _org_total(funded_org) == 10_000 - 300


# --- errors sit next to their field: parsed from the HTML, not just found somewhere in it ------

NOT_A_MEMBER = "That person is not (or no longer) a member of this organization."
NOT_HELD = "The org wallet holds no credits of that type. Pick one of the listed types."


class _Node:
    def __init__(self, tag, attrs, parent):
        self.tag, self.attrs, self.parent, self.children = tag, dict(attrs), parent, []

    def walk(self):
        yield self
        for child in self.children:
            if isinstance(child, _Node):
                yield from child.walk()

    def text(self) -> str:
        parts = [c if isinstance(c, str) else c.text() for c in self.children]
        return re.sub(r"\s+", " ", "".join(parts)).strip()

    def classes(self) -> set[str]:
        return set((self.attrs.get("class") or "").split())


def _dom(html: str) -> _Node:
    from html.parser import HTMLParser

    void = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source", "track", "wbr"}

    class Parser(HTMLParser):
        def __init__(self):
            super().__init__(convert_charrefs=True)
            self.root = self.current = _Node("#root", [], None)

        def handle_starttag(self, tag, attrs):
            node = _Node(tag, attrs, self.current)
            self.current.children.append(node)
            if tag not in void:
                self.current = node

        def handle_startendtag(self, tag, attrs):
            self.current.children.append(_Node(tag, attrs, self.current))

        def handle_endtag(self, tag):
            node = self.current
            while node is not None and node.tag != tag:
                node = node.parent
            if node is not None and node.parent is not None:
                self.current = node.parent

        def handle_data(self, data):
            self.current.children.append(data)

    parser = Parser()
    parser.feed(html)
    return parser.root


def _field_errors(html: str, name: str) -> tuple[list[str], list[str]]:
    """(errors shown in the field wrapper of the control named `name`, errors shown anywhere else).

    The wrapper is the control's nearest `div.field` (its label, the control, its `p.field-error`s); it must be
    marked `has-error`. Error elements the control's aria-describedby names count as next to it too.
    """
    root = _dom(html)
    controls = [n for n in root.walk() if n.tag in ("input", "select", "textarea") and n.attrs.get("name") == name]
    assert controls, f"no control named {name!r}"
    wrapper = controls[0].parent
    while wrapper is not None and "field" not in wrapper.classes():
        wrapper = wrapper.parent
    assert wrapper is not None, f"{name!r} has no field wrapper"
    described = set((controls[0].attrs.get("aria-describedby") or "").split())
    containers = [wrapper] + [n for n in root.walk() if n.attrs.get("id") in described]
    errors = [n for n in root.walk() if n.classes() & {"field-error", "form-error"}]
    near_nodes = []
    for container in containers:
        inside = [n for n in container.walk() if n in errors]
        # an error element named by aria-describedby with no error paragraphs inside is the message itself
        own = container is not wrapper and any("error" in c for c in container.classes())
        for node in inside or ([container] if own else []):
            if node not in near_nodes:
                near_nodes.append(node)
    near = [n.text() for n in near_nodes]
    elsewhere = [n.text() for n in errors if n not in near_nodes]
    if near:
        assert "has-error" in wrapper.classes(), f"{name!r}: errors shown but the field is not marked"
    return near, elsewhere


@pytest.fixture
def forged(funded_org, other_org):
    """Recipients a forged form could name: another org's member, a removed and a suspended member of this
    org, and an id that is nobody."""
    removed = MembershipFactory(org=funded_org)
    removed.status = MembershipStatus.REMOVED
    removed.save()
    suspended = MembershipFactory(org=funded_org)
    suspended.status = MembershipStatus.SUSPENDED
    suspended.save()
    return {
        "another org's member": MembershipFactory(org=other_org).pk,
        "removed member": removed.pk,
        "suspended member": suspended.pk,
        "nonexistent id": 999_999_999,
    }


@pytest.mark.parametrize("htmx", [True, False], ids=["dialog", "plain page"])
@pytest.mark.parametrize("who", ["another org's member", "removed member", "suspended member", "nonexistent id"])
def test_forged_recipient_error_is_next_to_the_recipient_field(admin_client, funded_org, forged, who, htmx):
    member = MembershipFactory(org=funded_org)  # the form is otherwise valid
    before = ledger_snapshot()
    data = _one(member, recipient=str(forged[who]))
    response = admin_client.post(_url(funded_org, "transfer_submit"), data, **(HTMX if htmx else {}))
    assert response.status_code in (200, 400)
    near, elsewhere = _field_errors(response.content.decode(), "recipient")
    assert near == [NOT_A_MEMBER], who
    assert elsewhere == [], who  # not repeated at the top of the form, nor next to another field
    assert ledger_snapshot() == before


@pytest.mark.parametrize("who", ["another org's member", "removed member", "suspended member", "nonexistent id"])
def test_forged_member_in_a_selected_transfer_is_flagged_next_to_the_member_list(admin_client, funded_org, forged, who):
    member = MembershipFactory(org=funded_org)
    before = ledger_snapshot()
    data = _bulk("selected", member=[member.pk, forged[who]])
    html = admin_client.post(_url(funded_org, "transfer_submit"), data, **HTMX).content.decode()
    near, elsewhere = _field_errors(html, "q")  # the Members field: its search box, list and errors
    assert near == ["Some of the selected people are not (or no longer) members of this organization."], who
    assert elsewhere == []
    assert ledger_snapshot() == before


@pytest.mark.parametrize("mode", ["one", "all"])
@pytest.mark.parametrize("slug", ["promo", "spent-promo", "bogus", "org-allocated'--"])
def test_credit_type_not_held_error_is_next_to_the_credit_type_field(
    admin_client, funded_org, member_membership, owner, slug, mode
):
    """One message, next to Credit type, whether the type never was in the org wallet, was spent to zero after
    the dialog opened, or does not exist at all."""
    from wallets.models import CreditType
    from wallets.services import org_transfer_to_member

    if slug == "spent-promo":
        fund(funded_org, 300, "promo")
        org_transfer_to_member(
            org=funded_org,
            membership_id=member_membership.pk,
            credit_type=CreditType.objects.get(slug="promo"),
            amount=300,
            actor=owner,
        )
        slug = "promo"
    before = ledger_snapshot()
    data = _one(member_membership, credit_type=slug, mode=mode)
    html = admin_client.post(_url(funded_org, "transfer_submit"), data, **HTMX).content.decode()
    near, elsewhere = _field_errors(html, "credit_type")
    assert near == [NOT_HELD]
    assert elsewhere == []
    assert ledger_snapshot() == before


def test_missing_credit_type_is_required_next_to_the_field(admin_client, funded_org, member_membership):
    before = ledger_snapshot()
    html = admin_client.post(
        _url(funded_org, "transfer_submit"), _one(member_membership, credit_type=""), **HTMX
    ).content.decode()
    near, elsewhere = _field_errors(html, "credit_type")
    assert near == ["This field is required."]
    assert elsewhere == []
    assert ledger_snapshot() == before


def test_empty_org_wallet_links_to_buy_credits(client, org, owner):
    client.force_login(owner)
    for headers in ({}, HTMX):
        html = client.get(_url(org), **headers).content.decode()
        assert f'<a class="btn primary" href="{reverse("billing:buy", args=[org.slug])}">Buy Credits</a>' in html


def test_member_list_with_nobody_says_where_people_come_from(funded_org):
    """No search and no one to list: point at Members rather than "No current member matches “”"."""
    from django.template.loader import render_to_string

    for mode in ("one", "selected"):
        context = {"org": funded_org, "mode": mode, "q": "", "chosen": [], "results": [], "results_limit": 20}
        html = render_to_string("billing/_transfer_members.html", {**context, "match_count": 0})
        assert "No members to send to yet — invite people from" in html
        assert f'href="{reverse("members:page", args=[funded_org.slug])}">Members</a>' in html
        assert "“”" not in html
        html = render_to_string("billing/_transfer_members.html", {**context, "q": "zed", "match_count": 0})
        assert "No current member matches “zed”." in html
