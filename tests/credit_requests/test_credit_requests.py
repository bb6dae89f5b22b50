"""Credit requests: members ask, owners/admins approve (possibly for less) or reject; bad input changes nothing."""

import json
import uuid

import pytest
from django.core import mail
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from credit_requests.models import CreditRequest, CreditRequestStatus
from credit_requests.services import (
    CreditRequestError,
    RequestAlreadyDecided,
    TooManyPendingRequests,
    credit_request_approve,
    credit_request_cancel,
    credit_request_create,
    credit_request_reject,
)
from orgs.models import MembershipStatus
from tests.factories import MembershipFactory, fund, ledger_snapshot
from wallets.errors import InsufficientCredits, InvalidAmount, MemberNotActive
from wallets.models import CreditType, Transfer, TransferKind, Wallet
from wallets.selectors import ledger_problems, wallet_balance

pytestmark = pytest.mark.django_db


def _ask(membership, amount=500, reason="Run the VQE sweep"):
    return credit_request_create(org=membership.org, user=membership.user, amount=amount, reason=reason).request


def _member_total(membership):
    return wallet_balance(Wallet.objects.for_user(membership.user)).total


def _org_total(org):
    return wallet_balance(Wallet.objects.for_org(org)).total


# --- services --------------------------------------------------------------------------------


def test_approve_for_less_moves_granted_amount_in_one_linked_transfer(funded_org, owner, member_membership):
    req = _ask(member_membership, 500)
    credit_request_approve(org=funded_org, request_id=req.pk, actor=owner, amount=300)
    req.refresh_from_db()
    assert req.status == CreditRequestStatus.APPROVED
    assert req.granted_amount == 300
    assert req.decided_by == owner and req.decided_at is not None
    assert req.transfer.kind == TransferKind.REQUEST_APPROVAL
    assert req.transfer.idempotency_key == f"request:{req.pk}"
    assert req.transfer.amount == 300
    assert req.credit_type.slug == "org-allocated"
    assert _member_total(member_membership) == 300
    assert _org_total(funded_org) == 9_700
    assert ledger_problems() == []


def test_approve_without_amount_grants_what_was_asked(funded_org, owner, member_membership):
    req = _ask(member_membership, 250)
    credit_request_approve(org=funded_org, request_id=req.pk, actor=owner)
    assert _member_total(member_membership) == 250


def test_approve_can_pay_promo_when_the_admin_picks_it(funded_org, owner, member_membership):
    fund(funded_org, 400, "promo")
    req = _ask(member_membership, 400)
    promo = CreditType.objects.get(slug="promo")
    credit_request_approve(org=funded_org, request_id=req.pk, actor=owner, credit_type=promo)
    balance = wallet_balance(Wallet.objects.for_user(member_membership.user))
    assert {b.credit_type.slug: b.balance for b in balance.by_type} == {"org-allocated": 0, "promo": 400}


@pytest.mark.parametrize("amount", [501, 0, -5, "300", 2.5, True])
def test_approve_with_bad_amount_changes_nothing(funded_org, owner, member_membership, amount):
    req = _ask(member_membership, 500)
    before = ledger_snapshot()
    with pytest.raises((CreditRequestError, InvalidAmount)):
        credit_request_approve(org=funded_org, request_id=req.pk, actor=owner, amount=amount)
    assert ledger_snapshot() == before
    req.refresh_from_db()
    assert req.status == CreditRequestStatus.PENDING and req.transfer is None


def test_approve_with_too_few_credits_is_refused_and_stays_pending(org, owner, member_membership):
    fund(org, 100)
    req = _ask(member_membership, 500)
    before = ledger_snapshot()
    with pytest.raises(InsufficientCredits) as exc:
        credit_request_approve(org=org, request_id=req.pk, actor=owner)
    assert "400 missing" in exc.value.message
    assert ledger_snapshot() == before
    req.refresh_from_db()
    assert req.status == CreditRequestStatus.PENDING


def test_deciding_another_orgs_request_is_not_found(funded_org, other_org, member_membership):
    fund(other_org, 1_000)
    req = _ask(member_membership, 50)
    before = ledger_snapshot()
    with pytest.raises(CreditRequest.DoesNotExist):
        credit_request_approve(org=other_org, request_id=req.pk, actor=None)
    with pytest.raises(CreditRequest.DoesNotExist):
        credit_request_reject(org=other_org, request_id=req.pk, actor=None)
    assert ledger_snapshot() == before
    req.refresh_from_db()
    assert req.status == CreditRequestStatus.PENDING


@pytest.mark.parametrize("first", ["approve", "reject", "cancel"])
@pytest.mark.parametrize("second", ["approve", "reject"])
def test_deciding_a_decided_or_cancelled_request_changes_nothing(funded_org, owner, member_membership, first, second):
    req = _ask(member_membership, 100)
    if first == "approve":
        credit_request_approve(org=funded_org, request_id=req.pk, actor=owner)
    elif first == "reject":
        credit_request_reject(org=funded_org, request_id=req.pk, actor=owner, reason="No")
    else:
        credit_request_cancel(request_id=req.pk, user=member_membership.user)
    before = ledger_snapshot()
    state = CreditRequest.objects.filter(pk=req.pk).values().get()
    with pytest.raises(RequestAlreadyDecided):
        if second == "approve":
            credit_request_approve(org=funded_org, request_id=req.pk, actor=owner)
        else:
            credit_request_reject(org=funded_org, request_id=req.pk, actor=owner, reason="Again")
    assert ledger_snapshot() == before
    assert CreditRequest.objects.filter(pk=req.pk).values().get() == state


def test_approve_for_a_removed_member_is_refused_with_a_clear_message(funded_org, owner, member_membership):
    req = _ask(member_membership, 100)
    member_membership.status = MembershipStatus.REMOVED
    member_membership.save()
    before = ledger_snapshot()
    with pytest.raises(MemberNotActive) as exc:
        credit_request_approve(org=funded_org, request_id=req.pk, actor=owner)
    assert "no longer a member" in exc.value.message
    assert ledger_snapshot() == before
    req.refresh_from_db()
    assert req.status == CreditRequestStatus.PENDING
    # ...but it can still be rejected, which moves nothing.
    credit_request_reject(org=funded_org, request_id=req.pk, actor=owner, reason="Left the team")
    assert ledger_snapshot() == before


def test_reject_records_reason_and_moves_nothing(funded_org, owner, member_membership):
    req = _ask(member_membership, 100)
    before = ledger_snapshot()
    credit_request_reject(org=funded_org, request_id=req.pk, actor=owner, reason="  Budget exhausted  ")
    req.refresh_from_db()
    assert (req.status, req.decision_reason, req.decided_by) == ("rejected", "Budget exhausted", owner)
    assert ledger_snapshot() == before


def test_fourth_pending_request_is_refused(funded_org, member_membership):
    for _ in range(3):
        _ask(member_membership, 10)
    with pytest.raises(TooManyPendingRequests) as exc:
        _ask(member_membership, 10)
    assert "3 pending requests" in exc.value.message
    assert CreditRequest.objects.filter(membership=member_membership).count() == 3
    # Cancelling one makes room again.
    credit_request_cancel(request_id=CreditRequest.objects.first().pk, user=member_membership.user)
    _ask(member_membership, 10)


@pytest.mark.parametrize(
    ("amount", "reason"), [(0, "x"), (-1, "x"), ("10", "x"), (1.5, "x"), (10**16, "x"), (10, ""), (10, "y" * 501)]
)
def test_create_with_bad_input_is_refused(funded_org, member_membership, amount, reason):
    with pytest.raises((CreditRequestError, InvalidAmount)):
        _ask(member_membership, amount, reason)
    assert not CreditRequest.objects.exists()


def test_create_by_a_non_member_is_refused(funded_org, other_org, member_membership):
    with pytest.raises(MemberNotActive):
        credit_request_create(org=other_org, user=member_membership.user, amount=10, reason="x")


def test_create_replayed_with_the_same_form_key_returns_the_first(funded_org, member_membership):
    key = uuid.uuid4()
    a = credit_request_create(org=funded_org, user=member_membership.user, amount=10, reason="x", client_key=key)
    b = credit_request_create(org=funded_org, user=member_membership.user, amount=10, reason="x", client_key=key)
    assert a.request.pk == b.request.pk and b.replayed and not a.replayed
    assert CreditRequest.objects.count() == 1


def test_only_the_author_may_cancel(funded_org, member_membership, admin_membership):
    req = _ask(member_membership)
    with pytest.raises(CreditRequest.DoesNotExist):
        credit_request_cancel(request_id=req.pk, user=admin_membership.user)
    req.refresh_from_db()
    assert req.status == CreditRequestStatus.PENDING


# --- notifications ---------------------------------------------------------------------------


def test_admins_are_emailed_when_a_request_arrives(
    funded_org, owner, admin_membership, member_membership, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        _ask(member_membership, 500, "Run the VQE sweep")
    assert sorted(m.to[0] for m in mail.outbox) == sorted([owner.email, admin_membership.user.email])
    assert "500 credits" in mail.outbox[0].subject
    assert "Run the VQE sweep" in mail.outbox[0].body
    assert "/billing/requests/" in mail.outbox[0].body


def test_member_is_emailed_on_approval_and_rejection(
    funded_org, owner, member_membership, django_capture_on_commit_callbacks
):
    a, b = _ask(member_membership, 500), _ask(member_membership, 200)
    mail.outbox.clear()
    with django_capture_on_commit_callbacks(execute=True):
        credit_request_approve(org=funded_org, request_id=a.pk, actor=owner, amount=300)
    with django_capture_on_commit_callbacks(execute=True):
        credit_request_reject(org=funded_org, request_id=b.pk, actor=owner, reason="Budget exhausted")
    assert [m.to for m in mail.outbox] == [[member_membership.user.email]] * 2
    assert "Approved: 300 credits" in mail.outbox[0].subject
    assert "you asked for 500" in mail.outbox[0].body
    assert "Budget exhausted" in mail.outbox[1].body


def test_no_email_when_the_decision_fails(org, owner, member_membership, django_capture_on_commit_callbacks):
    req = _ask(member_membership, 500)
    mail.outbox.clear()
    with django_capture_on_commit_callbacks(execute=True) as callbacks, pytest.raises(InsufficientCredits):
        credit_request_approve(org=org, request_id=req.pk, actor=owner)
    assert callbacks == [] and mail.outbox == []


def test_a_mail_failure_never_undoes_the_approval(
    funded_org, owner, member_membership, settings, django_capture_on_commit_callbacks
):
    req = _ask(member_membership, 500)
    settings.MAILERS = {
        "default": {
            "BACKEND": "django.core.mail.backends.smtp.EmailBackend",
            "OPTIONS": {"host": "127.0.0.1", "port": 1, "timeout": 1},
        }
    }
    with django_capture_on_commit_callbacks(execute=True):
        credit_request_approve(org=funded_org, request_id=req.pk, actor=owner)
    req.refresh_from_db()
    assert req.status == CreditRequestStatus.APPROVED
    assert _member_total(member_membership) == 500


# --- views: admin side -----------------------------------------------------------------------


def _url(name, org, req=None):
    args = [org.slug] if req is None else [org.slug, req.pk]
    return reverse(f"billing:{name}", args=args)


def test_tab_lists_pending_oldest_first_with_badge(client, funded_org, owner):
    members = [MembershipFactory(org=funded_org) for _ in range(3)]
    for i, m in enumerate(members):
        _ask(m, 100 + i, f"reason {i}")
    client.force_login(owner)
    html = client.get(_url("requests", funded_org)).content.decode()
    assert html.index("reason 0") < html.index("reason 1") < html.index("reason 2")
    assert 'data-testid="pending-requests-badge" aria-label="3 pending">3<' in html
    assert html.count(">Approve</a>") == 3 and html.count(">Reject</a>") == 3
    # The badge shows on the Credits tab too.
    assert 'aria-label="3 pending"' in client.get(_url("page", funded_org)).content.decode()


def test_tab_is_paginated(client, funded_org, owner):
    for m in [MembershipFactory(org=funded_org) for _ in range(10)]:
        for _ in range(3):
            _ask(m, 10)
    client.force_login(owner)
    page1 = client.get(_url("requests", funded_org)).content.decode()
    assert page1.count(">Approve</a>") == 25
    assert "Page 1 of 2 · 30 pending" in page1
    page2 = client.get(_url("requests", funded_org) + "?page=2").content.decode()
    assert page2.count(">Approve</a>") == 5
    assert client.get(_url("requests", funded_org) + "?page=abc").status_code == 200
    assert client.get(_url("requests", funded_org) + "?page=999").status_code == 200


def test_approve_confirm_step_then_post_without_js(client, funded_org, owner, member_membership):
    req = _ask(member_membership, 500)
    client.force_login(owner)
    page = client.get(_url("request_approve", funded_org, req)).content.decode()
    assert 'name="amount"' in page and 'value="500"' in page and 'max="500"' in page
    assert "<html" in page
    response = client.post(_url("request_approve", funded_org, req), {"amount": "300", "credit_type": "org-allocated"})
    assert response.status_code == 302 and response.url == _url("requests", funded_org)
    assert _member_total(member_membership) == 300
    follow = client.get(response.url).content.decode()
    # A partial approval says so, with dollars (issue 17): "Approved 300 of 500".
    assert f"Approved 300 of 500 credits ($3.00) for {member_membership.user.display_name}." in follow
    assert "No pending credit requests." in follow


def test_approve_with_htmx_returns_confirmation_and_triggers_events(client, funded_org, owner, member_membership):
    req = _ask(member_membership, 500)
    client.force_login(owner)
    dialog = client.get(_url("request_approve", funded_org, req), headers={"HX-Request": "true"}).content.decode()
    assert "<html" not in dialog and "Confirm approval" in dialog
    response = client.post(_url("request_approve", funded_org, req), {"amount": "300"}, headers={"HX-Request": "true"})
    assert response.status_code == 200
    note = f"Approved 300 of 500 credits ($3.00) for {member_membership.user.display_name}."
    assert note in response.content.decode()
    triggers = json.loads(response["HX-Trigger"])
    assert "balances-changed" in triggers and "credit-requests-changed" in triggers
    # The dialog closes and a toast states the outcome (issue 17).
    assert "close-dialog" in triggers and triggers["toast"] == {"message": note, "level": "success"}
    listing = client.get(_url("requests_list", funded_org), headers={"HX-Request": "true"}).content.decode()
    assert "No pending credit requests." in listing
    assert 'hx-swap-oob="outerHTML:.tabs"' in listing
    assert 'id="requests-subnav" class="subnav" aria-label="Credit requests" hx-swap-oob="true"' in listing


@pytest.mark.parametrize(
    ("amount", "error"),
    [
        ("501", "at most the 500 credits requested"),
        ("0", "greater than zero"),
        ("-3", "greater than zero"),
        ("abc", "whole number"),
        ("2.5", "whole number"),
        ("", "Enter an amount"),
    ],
)
def test_approve_view_bad_amount_shows_error_and_changes_nothing(
    client, funded_org, owner, member_membership, amount, error
):
    req = _ask(member_membership, 500)
    client.force_login(owner)
    before = ledger_snapshot()
    response = client.post(_url("request_approve", funded_org, req), {"amount": amount})
    assert response.status_code == 200
    assert error in response.content.decode()
    assert ledger_snapshot() == before
    req.refresh_from_db()
    assert req.status == CreditRequestStatus.PENDING


def test_approve_view_too_few_credits_shows_error(client, org, owner, member_membership):
    fund(org, 100)
    req = _ask(member_membership, 500)
    client.force_login(owner)
    before = ledger_snapshot()
    html = client.post(_url("request_approve", org, req), {"amount": "500"}).content.decode()
    assert "Not enough" in html and "400 missing" in html
    assert ledger_snapshot() == before
    assert CreditRequest.objects.get(pk=req.pk).status == CreditRequestStatus.PENDING


def test_approve_view_already_decided_shows_error(client, funded_org, owner, member_membership):
    req = _ask(member_membership, 500)
    credit_request_reject(org=funded_org, request_id=req.pk, actor=owner)
    client.force_login(owner)
    before = ledger_snapshot()
    html = client.post(_url("request_approve", funded_org, req), {"amount": "500"}).content.decode()
    assert "already rejected" in html
    assert ledger_snapshot() == before


def test_approve_view_removed_requester_shows_error(client, funded_org, owner, member_membership):
    req = _ask(member_membership, 500)
    member_membership.status = MembershipStatus.REMOVED
    member_membership.save()
    client.force_login(owner)
    before = ledger_snapshot()
    assert "No longer a member" in client.get(_url("requests", funded_org)).content.decode()
    html = client.post(_url("request_approve", funded_org, req), {"amount": "500"}).content.decode()
    assert "no longer a member of this organization" in html
    assert ledger_snapshot() == before


def test_reject_view_with_reason(client, funded_org, owner, member_membership):
    req = _ask(member_membership, 500)
    client.force_login(owner)
    assert "Reason (optional)" in client.get(_url("request_reject", funded_org, req)).content.decode()
    before = ledger_snapshot()
    response = client.post(_url("request_reject", funded_org, req), {"reason": "Budget exhausted"})
    assert response.status_code == 302
    assert ledger_snapshot() == before
    req.refresh_from_db()
    assert (req.status, req.decision_reason) == ("rejected", "Budget exhausted")


@pytest.mark.parametrize("role", ["manager", "member"])
@pytest.mark.parametrize("name", ["request_approve", "request_reject"])
def test_manager_and_member_cannot_decide(client, funded_org, member_membership, role, name):
    req = _ask(member_membership, 500)
    someone = MembershipFactory(org=funded_org, role=role)
    client.force_login(someone.user)
    before = ledger_snapshot()
    assert client.get(_url(name, funded_org, req)).status_code == 403
    assert client.post(_url(name, funded_org, req), {"amount": "500", "reason": "x"}).status_code == 403
    assert ledger_snapshot() == before
    assert CreditRequest.objects.get(pk=req.pk).status == CreditRequestStatus.PENDING


@pytest.mark.parametrize("name", ["request_approve", "request_reject"])
def test_deciding_another_orgs_request_via_url_is_404(client, funded_org, other_org, member_membership, name):
    req = _ask(member_membership, 500)
    fund(other_org, 1_000)
    other_admin = MembershipFactory(org=other_org, role="admin")
    client.force_login(other_admin.user)
    before = ledger_snapshot()
    # Through their own org's URL, and through the request's org URL.
    assert client.post(_url(name, other_org, req), {"amount": "500"}).status_code == 404
    assert client.post(_url(name, funded_org, req), {"amount": "500"}).status_code == 404
    assert ledger_snapshot() == before
    assert CreditRequest.objects.get(pk=req.pk).status == CreditRequestStatus.PENDING


def test_manager_sees_the_tab_read_only(client, funded_org, manager_membership, member_membership):
    _ask(member_membership, 500, "Need more shots")
    client.force_login(manager_membership.user)
    html = client.get(_url("requests", funded_org)).content.decode()
    assert "Need more shots" in html
    assert ">Approve</a>" not in html and ">Reject</a>" not in html
    assert "<dialog" not in html


def test_history_shows_who_decided_when_and_what(client, funded_org, owner, member_membership):
    a, b, c = _ask(member_membership, 500, "A"), _ask(member_membership, 200, "B"), _ask(member_membership, 50, "C")
    credit_request_approve(org=funded_org, request_id=a.pk, actor=owner, amount=300)
    credit_request_reject(org=funded_org, request_id=b.pk, actor=owner, reason="Budget exhausted")
    credit_request_cancel(request_id=c.pk, user=member_membership.user)
    client.force_login(owner)
    html = client.get(_url("requests_history", funded_org)).content.decode()
    assert "Approved" in html and ">300 <" in html.replace("300 <span", "300 <")
    assert "Rejected: Budget exhausted" in html
    assert "Cancelled" in html and "(withdrawn)" in html
    assert html.count(owner.display_name) >= 2
    assert "No pending credit requests." not in html


def test_tab_query_count_is_the_same_for_10_and_10000_pending(client, funded_org, owner):
    from credit_requests.models import CreditRequest as CR
    from tests.factories import bulk_members

    members = bulk_members(funded_org, 100)

    def add(n):
        CR.objects.bulk_create(
            [
                CR(org=funded_org, membership=m, requester_id=m.user_id, amount=10, reason="bulk")
                for m in (members[i % len(members)] for i in range(n))
            ]
        )

    add(10)
    client.force_login(owner)
    url = _url("requests", funded_org)
    client.get(url)
    with CaptureQueriesContext(connection) as small:
        assert client.get(url).status_code == 200
    add(9_990)
    with CaptureQueriesContext(connection) as large:
        html = client.get(url).content.decode()
    assert "10,000 pending" in html
    # 12, plus the Balance card's low-balance alert rules and the Auto top-up section's settings row (the
    # owner sees both; each one query whatever the number of requests)
    assert len(small) == len(large) <= 14
    with CaptureQueriesContext(connection) as last_page:
        assert client.get(url + "?page=400").status_code == 200
    assert len(last_page) == len(large)


# --- views: member side ----------------------------------------------------------------------


def _in_org_workspace(client, membership):
    client.force_login(membership.user)
    client.post(reverse("workspace_switch"), {"workspace": membership.org.slug})


def test_member_wallet_shows_request_button_and_status_panel(client, funded_org, owner, member_membership):
    a, b, c = (_ask(member_membership, n, f"r{n}") for n in (500, 200, 50))
    credit_request_approve(org=funded_org, request_id=a.pk, actor=owner, amount=300)
    credit_request_reject(org=funded_org, request_id=b.pk, actor=owner, reason="Budget exhausted")
    credit_request_cancel(request_id=c.pk, user=member_membership.user)
    _ask(member_membership, 70)
    _in_org_workspace(client, member_membership)
    html = client.get(reverse("wallet")).content.decode()
    assert ">Request credits</a>" in html
    assert "Approved 300" in html and "of 500" in html
    assert "Reason: Budget exhausted" in html
    assert "Cancelled" in html
    assert html.count("Cancel request</button>") == 1  # only the pending one


def test_personal_workspace_has_no_request_button(client, member_membership):
    client.force_login(member_membership.user)
    html = client.get(reverse("wallet")).content.decode()
    assert "Request credits" not in html and "My credit requests" not in html


def test_member_request_form_labels_and_submit_without_js(client, funded_org, member_membership):
    _in_org_workspace(client, member_membership)
    form = client.get(_url("request_new", funded_org)).content.decode()
    assert ">Amount</label>" in form and ">Reason</label>" in form
    key = str(uuid.uuid4())
    response = client.post(_url("request_new", funded_org), {"amount": "500", "reason": "VQE", "client_key": key})
    assert response.status_code == 302 and response.url == reverse("wallet")
    client.post(_url("request_new", funded_org), {"amount": "500", "reason": "VQE", "client_key": key})  # double submit
    assert CreditRequest.objects.filter(membership=member_membership).count() == 1
    assert "Pending" in client.get(reverse("wallet")).content.decode()


@pytest.mark.parametrize(
    ("data", "error"),
    [
        ({"amount": "0", "reason": "x"}, "greater than zero"),
        ({"amount": "-5", "reason": "x"}, "greater than zero"),
        ({"amount": "ten", "reason": "x"}, "whole number"),
        ({"amount": "10", "reason": ""}, "what the credits are for"),
    ],
)
def test_member_request_form_bad_input(client, funded_org, member_membership, data, error):
    _in_org_workspace(client, member_membership)
    before = ledger_snapshot()
    html = client.post(_url("request_new", funded_org), data).content.decode()
    assert error in html
    assert not CreditRequest.objects.exists()
    assert ledger_snapshot() == before


def test_member_fourth_request_shows_clear_error(client, funded_org, member_membership):
    for _ in range(3):
        _ask(member_membership, 10)
    _in_org_workspace(client, member_membership)
    html = client.post(
        _url("request_new", funded_org), {"amount": "10", "reason": "more"}, headers={"HX-Request": "true"}
    ).content.decode()
    assert "already have 3 pending requests" in html
    assert CreditRequest.objects.count() == 3


def test_member_cancels_own_pending_request_with_htmx(client, funded_org, member_membership):
    req = _ask(member_membership, 10)
    _in_org_workspace(client, member_membership)
    html = client.post(_url("request_cancel", funded_org, req), headers={"HX-Request": "true"}).content.decode()
    assert 'id="credit-requests-panel"' in html and "Cancelled" in html
    assert CreditRequest.objects.get(pk=req.pk).status == CreditRequestStatus.CANCELLED


def test_someone_else_cannot_cancel_a_request(client, funded_org, member_membership):
    req = _ask(member_membership, 10)
    other = MembershipFactory(org=funded_org)
    _in_org_workspace(client, other)
    assert client.post(_url("request_cancel", funded_org, req)).status_code == 404
    assert CreditRequest.objects.get(pk=req.pk).status == CreditRequestStatus.PENDING


def test_request_in_an_org_you_do_not_belong_to_is_404(client, funded_org, other_org, member_membership):
    client.force_login(member_membership.user)
    assert client.post(_url("request_new", other_org), {"amount": "10", "reason": "x"}).status_code == 404
    assert not CreditRequest.objects.exists()


def test_transfer_rows_are_never_touched_by_a_decision(funded_org, owner, member_membership):
    req = _ask(member_membership, 100)
    credit_request_approve(org=funded_org, request_id=req.pk, actor=owner)
    assert Transfer.objects.filter(kind=TransferKind.REQUEST_APPROVAL).count() == 1


def test_confirm_step_of_a_decided_request_offers_nothing_to_confirm(client, funded_org, owner, member_membership):
    req = _ask(member_membership, 500)
    credit_request_reject(org=funded_org, request_id=req.pk, actor=owner)
    client.force_login(owner)
    html = client.get(_url("request_approve", funded_org, req)).content.decode()
    assert "already rejected by" in html
    assert "Confirm approval" not in html


def test_cancel_through_another_orgs_url_is_404(client, funded_org, other_org, member_membership):
    req = _ask(member_membership, 10)
    MembershipFactory(org=other_org, user=member_membership.user)
    client.force_login(member_membership.user)
    assert client.post(_url("request_cancel", other_org, req)).status_code == 404
    assert CreditRequest.objects.get(pk=req.pk).status == CreditRequestStatus.PENDING


def test_wallet_page_query_count_does_not_grow_with_requests(client, funded_org, owner, member_membership):
    """The status panel is one query, however many requests the member has made."""
    _in_org_workspace(client, member_membership)
    _ask(member_membership, 10)
    client.get(reverse("wallet"))
    with CaptureQueriesContext(connection) as few:
        client.get(reverse("wallet"))
    for _ in range(10):
        req = _ask(member_membership, 10)
        credit_request_approve(org=funded_org, request_id=req.pk, actor=owner)
    with CaptureQueriesContext(connection) as many:
        html = client.get(reverse("wallet")).content.decode()
    assert html.count("Approved 10") == 10  # the panel shows the latest 10
    assert len(few) == len(many)


def test_django_admin_lists_requests_read_only(client, funded_org, member_membership):
    from orgs.models import User

    _ask(member_membership, 10)
    staff = User.objects.create_superuser("staff@example.com", "pw-staff-123456")
    client.force_login(staff)
    response = client.get(reverse("admin:credit_requests_creditrequest_changelist"))
    assert response.status_code == 200 and member_membership.user.email in response.content.decode()
    assert client.get(reverse("admin:credit_requests_creditrequest_add")).status_code == 403


# --- who may ask: members and managers; owners and admins transfer to themselves ------------


@pytest.mark.parametrize("role", ["owner", "admin"])
def test_owner_or_admin_cannot_request_credits_and_nothing_is_created(funded_org, owner, role):
    from credit_requests.services import OwnersAndAdminsDoNotRequest

    user = owner if role == "owner" else MembershipFactory(org=funded_org, role="admin").user
    before = ledger_snapshot()
    with pytest.raises(OwnersAndAdminsDoNotRequest) as exc:
        credit_request_create(org=funded_org, user=user, amount=500, reason="for me")
    who = "the owner" if role == "owner" else "an admin"
    assert exc.value.message == f"As {who} you can transfer credits to yourself from Billing."
    assert not CreditRequest.objects.exists()
    assert ledger_snapshot() == before


def test_manager_can_request_credits(funded_org, manager_membership):
    assert _ask(manager_membership, 40).status == CreditRequestStatus.PENDING


def test_nobody_approves_their_own_request(funded_org, member_membership):
    """Defense in depth: a member asks, is promoted to admin, and tries to approve it."""
    req = _ask(member_membership, 500)
    member_membership.role = "admin"
    member_membership.save(update_fields=["role"])
    before = ledger_snapshot()
    with pytest.raises(CreditRequestError, match="can't approve your own credit request"):
        credit_request_approve(org=funded_org, request_id=req.pk, actor=member_membership.user)
    req.refresh_from_db()
    assert req.status == CreditRequestStatus.PENDING and req.transfer_id is None
    assert ledger_snapshot() == before


def test_own_request_approve_view_says_so_and_moves_nothing(client, funded_org, member_membership):
    req = _ask(member_membership, 500)
    member_membership.role = "admin"
    member_membership.save(update_fields=["role"])
    client.force_login(member_membership.user)
    before = ledger_snapshot()
    html = client.post(_url("request_approve", funded_org, req), {"amount": "500"}).content.decode()
    assert "approve your own credit request" in html
    req.refresh_from_db()
    assert req.is_pending
    assert ledger_snapshot() == before


@pytest.mark.parametrize("role", ["owner", "admin"])
def test_request_new_page_refuses_owner_and_admin_and_creates_nothing(client, funded_org, owner, role):
    membership = (
        owner.memberships.get(org=funded_org) if role == "owner" else MembershipFactory(org=funded_org, role=role)
    )
    _in_org_workspace(client, membership)
    who = "the owner" if role == "owner" else "an admin"
    message = f"As {who} you can transfer credits to yourself from Billing."
    page = client.get(_url("request_new", funded_org)).content.decode()
    assert message in page and 'name="amount"' not in page
    dialog = client.get(_url("request_new", funded_org), headers={"HX-Request": "true"}).content.decode()
    assert message in dialog and "Send request" not in dialog
    before = ledger_snapshot()
    for headers in ({}, {"HX-Request": "true"}):
        response = client.post(_url("request_new", funded_org), {"amount": "500", "reason": "for me"}, headers=headers)
        assert response.status_code == 200 and message in response.content.decode()
    assert not CreditRequest.objects.exists()
    assert ledger_snapshot() == before


@pytest.mark.parametrize(("role", "shown"), [("member", True), ("manager", True), ("admin", False), ("owner", False)])
def test_request_credits_button_only_for_members_and_managers(client, funded_org, owner, role, shown):
    membership = (
        owner.memberships.get(org=funded_org) if role == "owner" else MembershipFactory(org=funded_org, role=role)
    )
    _in_org_workspace(client, membership)
    html = client.get(reverse("wallet")).content.decode()
    assert (">Request credits</a>" in html) is shown
    assert ("My credit requests" in html) is shown


def test_admin_pages_of_models_that_moved_app_redirect_from_their_old_address(admin_client, funded_org):
    """Staff bookmarks of /admin/billing/<model>/ (before the feature apps) land on the same page."""
    response = admin_client.get("/admin/billing/creditrequest/?status__exact=pending")
    assert response.status_code == 301
    assert response.url == "/admin/credit_requests/creditrequest/?status__exact=pending"
    assert admin_client.get(response.url).status_code == 200
    assert admin_client.get("/admin/billing/apikey/").url == "/admin/apikeys/apikey/"
    assert admin_client.get("/admin/billing/outstandingbalance/").url == "/admin/wallets/outstandingbalance/"
    assert admin_client.get("/admin/billing/purchase/").status_code == 200  # purchases kept the label
