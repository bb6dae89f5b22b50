"""Issue 17, credit requests: the limit said before the form, "just now", the approver's context beside each
pending request (constant queries), decision messages with dollars, stacked tables and the dialog pattern."""

import json
import re
from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from core.money import dollars
from credit_requests.display import age, decision_note
from credit_requests.models import CreditRequest
from credit_requests.selectors import with_requester_context
from credit_requests.services import credit_request_approve, credit_request_create, credit_request_reject
from tests.factories import MembershipFactory, OrgFactory, UserFactory, fund, ledger_snapshot
from wallets.models import CreditType
from wallets.services import member_charge_usage, org_transfer_to_member

pytestmark = pytest.mark.django_db


def _ask(membership, amount=500, reason="Run the VQE sweep"):
    return credit_request_create(org=membership.org, user=membership.user, amount=amount, reason=reason).request


def _url(name, org, req=None):
    return reverse(f"billing:{name}", args=[org.slug] if req is None else [org.slug, req.pk])


def _in_org_workspace(client, membership):
    client.force_login(membership.user)
    client.post(reverse("workspace_switch"), {"workspace": membership.org.slug})


def _give(org, membership, amount):
    ct = CreditType.objects.get(slug="org-allocated")
    org_transfer_to_member(org=org, membership_id=membership.pk, credit_type=ct, amount=amount)


# --- one helper for ages and amounts ---------------------------------------------------------


def test_age_says_just_now_under_a_minute():
    now = timezone.now()
    assert age(now, now) == "just now"
    assert age(now - timedelta(seconds=59), now) == "just now"
    assert age(now - timedelta(minutes=1), now) == "1\xa0minute ago"  # Django's timesince keeps "1 minute" whole
    assert age(now - timedelta(days=2, hours=3), now) == "2\xa0days, 3\xa0hours ago"
    assert age(None) == ""


def test_decision_notes(funded_org, owner, member_membership):
    name = member_membership.user.display_name
    full = credit_request_approve(org=funded_org, request_id=_ask(member_membership, 1200).pk, actor=owner)
    assert decision_note(full) == f"Approved 1,200 credits ($12.00) for {name}."
    part = credit_request_approve(org=funded_org, request_id=_ask(member_membership, 1200).pk, actor=owner, amount=800)
    assert decision_note(part) == f"Approved 800 of 1,200 credits ($8.00) for {name}."
    rejected = credit_request_reject(org=funded_org, request_id=_ask(member_membership, 1200).pk, actor=owner)
    assert decision_note(rejected) == f"Rejected request for 1,200 credits from {name} ($12.00)."


def test_pending_list_and_dialog_say_just_now(client, funded_org, owner, member_membership):
    req = _ask(member_membership, 10)
    client.force_login(owner)
    html = client.get(_url("requests", funded_org)).content.decode()
    assert "just now" in html and "0 minutes" not in html
    assert "just now" in client.get(_url("request_approve", funded_org, req)).content.decode()
    _in_org_workspace(client, member_membership)
    wallet = client.get(reverse("wallet")).content.decode()
    assert "just now" in wallet and "0 minutes" not in wallet


# --- the limit, before the form ----------------------------------------------------------------


@pytest.mark.parametrize("htmx", [False, True])
def test_request_form_at_the_limit_shows_the_message_and_no_form(client, funded_org, member_membership, htmx):
    headers = {"HX-Request": "true"} if htmx else {}
    _in_org_workspace(client, member_membership)
    for _ in range(2):
        _ask(member_membership, 10)
    below = client.get(_url("request_new", funded_org), headers=headers).content.decode()
    assert 'name="amount"' in below and "already have 3 pending" not in below
    _ask(member_membership, 10)
    html = client.get(_url("request_new", funded_org), headers=headers).content.decode()
    html = html[html.index('id="request-heading"') :]  # the dialog body (the page around it has other forms)
    assert "You already have 3 pending requests in this organization" in html
    assert 'data-testid="request-limit"' in html
    assert "<form" not in html and 'name="amount"' not in html and "Send request" not in html
    # The server still refuses a POST (an old form, another tab), says the same, and saves nothing.
    before = ledger_snapshot()
    posted = client.post(_url("request_new", funded_org), {"amount": "10", "reason": "more"}, headers=headers)
    body = posted.content.decode()
    body = body[body.index('id="request-heading"') :]
    assert posted.status_code == 200
    assert "You already have 3 pending requests" in body and 'name="amount"' not in body
    assert CreditRequest.objects.filter(membership=member_membership).count() == 3
    assert ledger_snapshot() == before


# --- the approver's context --------------------------------------------------------------------


def test_pending_request_shows_balance_from_this_org_and_30_day_usage(client, funded_org, owner, member_membership):
    other = OrgFactory(name="Elsewhere", owner=UserFactory())
    fund(other, 5_000)
    elsewhere = MembershipFactory(org=other, user=member_membership.user)
    _give(other, elsewhere, 700)  # another org's credits: not counted
    _give(funded_org, member_membership, 1_500)
    member_charge_usage(org=funded_org, membership_id=member_membership.pk, amount=250)
    member_charge_usage(org=other, membership_id=elsewhere.pk, amount=100)  # spent in the other org
    req = _ask(member_membership, 400)

    start = CreditRequest.objects.filter(pk=req.pk)
    row = with_requester_context(start, funded_org).get()
    base = row.requester_balance - 1_250  # whatever the org's default allocation gave on joining
    assert base >= 0 and row.requester_used == 250
    later = with_requester_context(start, funded_org, now=timezone.now() + timedelta(days=31)).get()
    assert later.requester_used == 0 and later.requester_balance == row.requester_balance

    client.force_login(owner)
    html = client.get(_url("requests", funded_org)).content.decode()
    cells = re.search(r'data-testid="requester-balance"><span>([^<]*)<br><span class="muted small">([^<]*)<', html)
    assert cells.groups() == (f"{row.requester_balance:,}", dollars(row.requester_balance))
    used = re.search(r'data-testid="requester-used"><span>([^<]*)<br><span class="muted small">([^<]*)<', html)
    assert used.groups() == ("250", "$2.50")
    dialog = client.get(_url("request_approve", funded_org, req), headers={"HX-Request": "true"}).content.decode()
    assert f"{row.requester_balance:,} credits ({dollars(row.requester_balance)})" in dialog
    assert "250 credits ($2.50)" in dialog


def test_requester_without_credits_shows_zero(client, funded_org, owner):
    membership = MembershipFactory(org=funded_org)
    req = _ask(membership, 10)
    row = with_requester_context(CreditRequest.objects.filter(pk=req.pk), funded_org).get()
    assert row.requester_used == 0 and row.requester_balance >= 0


@pytest.mark.parametrize("url_name", ["requests", "requests_list"])
def test_context_costs_no_query_per_request(client, funded_org, owner, url_name):
    """3 or 20 pending requests from members who hold and spent credits: the same number of queries."""
    fund(funded_org, 100_000)

    def add(n):
        for _ in range(n):
            m = MembershipFactory(org=funded_org)
            _give(funded_org, m, 500)
            member_charge_usage(org=funded_org, membership_id=m.pk, amount=120)
            _ask(m, 300)

    add(3)
    client.force_login(owner)
    url = _url(url_name, funded_org)
    client.get(url)
    with CaptureQueriesContext(connection) as three:
        html = client.get(url).content.decode()
    assert html.count('data-testid="requester-used"><span>120<') == 3
    add(17)
    with CaptureQueriesContext(connection) as twenty:
        html = client.get(url).content.decode()
    assert html.count('data-testid="requester-used"><span>120<') == 20
    assert len(three) == len(twenty)


# --- decision messages ---------------------------------------------------------------------------


def test_full_approval_without_js_says_approved_with_dollars(client, funded_org, owner, member_membership):
    req = _ask(member_membership, 1200)
    client.force_login(owner)
    response = client.post(_url("request_approve", funded_org, req), {"amount": "1200"}, follow=True)
    assert f"Approved 1,200 credits ($12.00) for {member_membership.user.display_name}." in response.content.decode()


def test_rejection_messages_with_and_without_js(client, funded_org, owner, member_membership):
    name = member_membership.user.display_name
    note = f"Rejected request for 1,200 credits from {name} ($12.00)."
    client.force_login(owner)
    plain = client.post(_url("request_reject", funded_org, _ask(member_membership, 1200)), {"reason": ""}, follow=True)
    assert note in plain.content.decode()
    htmx = client.post(
        _url("request_reject", funded_org, _ask(member_membership, 1200)),
        {"reason": "No"},
        headers={"HX-Request": "true"},
    )
    triggers = json.loads(htmx["HX-Trigger"])
    assert triggers["toast"]["message"] == note and "close-dialog" in triggers
    assert "balances-changed" not in triggers  # nothing moved


def test_bad_approval_shows_no_toast_and_keeps_the_dialog(client, funded_org, owner, member_membership):
    req = _ask(member_membership, 500)
    client.force_login(owner)
    response = client.post(_url("request_approve", funded_org, req), {"amount": "501"}, headers={"HX-Request": "true"})
    assert "at most the 500 credits requested" in response.content.decode()
    assert "HX-Trigger" not in response


# --- tables and dialog pattern ------------------------------------------------------------------


def _cells_have_labels(html):
    tds = re.findall(r"<td[^>]*>", html)
    assert tds
    return all("data-label=" in td or "row-actions" in td for td in tds)


def test_request_tables_stack_on_phones(client, funded_org, owner, member_membership):
    a, b = _ask(member_membership, 500), _ask(member_membership, 200)
    _ask(member_membership, 50)
    credit_request_approve(org=funded_org, request_id=a.pk, actor=owner, amount=300)
    credit_request_reject(org=funded_org, request_id=b.pk, actor=owner, reason="No")
    client.force_login(owner)
    for url in (_url("requests", funded_org), _url("requests_history", funded_org)):
        html = client.get(url).content.decode()
        section = html[html.index('<table class="table stack requests-table">') :]
        assert _cells_have_labels(section[: section.index("</table>")])
    _in_org_workspace(client, member_membership)
    html = client.get(reverse("wallet")).content.decode()
    panel = html[html.index('id="credit-requests-panel"') :]
    assert '<table class="table stack requests-table">' in panel
    assert _cells_have_labels(panel[: panel.index("</table>")])


@pytest.mark.parametrize("action", ["approve", "reject"])
def test_decide_dialog_follows_the_dialog_pattern(client, funded_org, owner, member_membership, action):
    req = _ask(member_membership, 500)
    client.force_login(owner)
    dialog = client.get(_url(f"request_{action}", funded_org, req), headers={"HX-Request": "true"}).content.decode()
    head = dialog[dialog.index('<div class="dialog-head">') : dialog.index("</div>")]
    assert 'id="decide-heading"' in head and 'data-close-dialog aria-label="Close">×</button>' in head
    actions = dialog[dialog.index('<div class="dialog-actions">') :]
    cancel, confirm = actions.index(">Cancel</button>"), actions.index("Confirm ")
    assert cancel < confirm
    primary = (
        'class="btn primary">Confirm approval' if action == "approve" else 'class="btn danger-fill">Confirm rejection'
    )
    assert primary in actions
    # The same URL is a plain page without JS: no × (nothing to close), Cancel is a link back.
    page = client.get(_url(f"request_{action}", funded_org, req)).content.decode()
    assert "<html" in page and 'aria-label="Close"' not in page and ">Cancel</a>" in page
