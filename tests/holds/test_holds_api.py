"""Holds through the API: reserve, capture, void, expiry, idempotency, bad input (problem details, nothing moves)."""

import io
import json
import signal
from datetime import UTC, timedelta

import pytest
from django.core.cache import cache
from django.core.management import call_command
from django.utils import timezone

from apikeys.models import UsageCharge
from holds.models import Hold, HoldStatus
from holds.selectors import holds_problems
from holds.services import create_hold, expire_due_holds
from holds.tasks import expire_holds
from orgs.models import MembershipStatus
from reporting.usage import member_usage, usage_this_month
from reporting.usage_page import UsageRange, members_page, roll_up_days
from tests.api.helpers import Api, give, issue_key
from tests.factories import MembershipFactory, fund, ledger_snapshot
from wallets.models import Entry, Pocket, Transfer, TransferKind, Wallet
from wallets.selectors import ledger_problems

pytestmark = pytest.mark.django_db


@pytest.fixture
def setup(org, settings):
    settings.API_RATE_LIMIT_PER_MINUTE = 0
    cache.clear()
    fund(org, 1_000)
    fund(org, 100, "promo")
    member = MembershipFactory(org=org)
    give(org, member, 60)
    give(org, member, 40, "promo")
    api = Api(issue_key(org, "charge")[1])
    return org, member, api


def _member_balance(org, member):
    wallet = Wallet.objects.for_user(member.user)
    return {
        p.credit_type.slug: p.balance
        for p in Pocket.objects.filter(wallet=wallet, funding_org=org).select_related("credit_type")
    }


def _clean():
    assert ledger_problems() == []
    assert holds_problems() == []


def test_hold_reserves_in_usage_draw_order_and_shows_held(setup):
    org, member, api = setup
    r = api.post("/holds", {"member_id": member.pk, "amount": 70, "description": "qjob 1"}, key="h1")
    assert r.status_code == 201, r.content
    body = r.json()
    assert body["status"] == "open" and body["amount"] == 70 and body["captured"] == 0
    assert body["held"] == [{"credit_type": "promo", "amount": 40}, {"credit_type": "org-allocated", "amount": 30}]
    expires = Hold.objects.get(pk=body["id"]).expires_at - Hold.objects.get(pk=body["id"]).created_at
    assert expires == timedelta(hours=1)
    assert _member_balance(org, member) == {"promo": 0, "org-allocated": 30}
    assert Transfer.objects.get(pk=body["hold_transfer_id"]).kind == TransferKind.HOLD
    # Held credits are not spendable by a usage charge.
    r = api.post("/usage", {"member_id": member.pk, "amount": 31}, key="u1")
    assert r.status_code == 402 and r.json()["shortfall"] == 1
    assert api.get(f"/holds/{body['id']}").json() == body
    _clean()


def test_capture_charges_usage_releases_the_rest_and_records_a_usage_charge(setup):
    org, member, api = setup
    hold = api.post("/holds", {"member_id": member.pk, "amount": 70, "description": "qjob"}, key="h1").json()
    r = api.post(f"/holds/{hold['id']}/capture", {"amount": 50}, key="c1")
    assert r.status_code == 200, r.content
    body = r.json()
    assert body["status"] == "captured" and body["captured"] == 50 and body["closed_at"]
    # Promo is drawn first: 40 promo + 10 org-allocated used; 20 org-allocated back to the member.
    assert _member_balance(org, member) == {"promo": 0, "org-allocated": 50}
    charge = UsageCharge.objects.get(pk=body["usage_charge_id"])
    assert charge.amount == 50 and charge.transfer_id == body["capture_transfer_id"] and charge.description == "qjob"
    usage_entries = Entry.objects.filter(transfer_id=body["capture_transfer_id"], wallet__code="usage")
    assert sum(e.amount for e in usage_entries) == 50
    assert Transfer.objects.get(pk=body["capture_transfer_id"]).kind == TransferKind.HOLD_CAPTURE
    # Replays: same key, same answer; a second capture with a new key and the same amount replays too.
    again = api.post(f"/holds/{hold['id']}/capture", {"amount": 50}, key="c1")
    assert again.status_code == 200 and again.json() == body and again["Idempotent-Replayed"] == "true"
    other_key = api.post(f"/holds/{hold['id']}/capture", {"amount": 50}, key="c2")
    assert other_key.status_code == 200 and other_key.json()["capture_transfer_id"] == body["capture_transfer_id"]
    assert UsageCharge.objects.count() == 1
    assert Transfer.objects.filter(kind=TransferKind.HOLD_CAPTURE).count() == 1
    _clean()


def test_void_releases_all_and_is_idempotent(setup):
    org, member, api = setup
    before = _member_balance(org, member)
    hold = api.post("/holds", {"member_id": member.pk, "amount": 70}, key="h1").json()
    r = api.post(f"/holds/{hold['id']}/void", {}, key="v1")
    assert r.status_code == 200 and r.json()["status"] == "voided"
    assert _member_balance(org, member) == before
    assert (
        api.post(f"/holds/{hold['id']}/void", {}, key="v2").json()["release_transfer_id"]
        == r.json()["release_transfer_id"]
    )
    assert Transfer.objects.filter(kind=TransferKind.HOLD_RELEASE).count() == 1
    # A voided hold cannot be captured: 409 problem details, nothing moves.
    snap = ledger_snapshot()
    r = api.post(f"/holds/{hold['id']}/capture", {"amount": 1}, key="c1")
    assert r.status_code == 409 and r["Content-Type"] == "application/problem+json"
    assert r.json()["code"] == "hold_not_open"
    assert ledger_snapshot() == snap
    _clean()


def test_not_enough_credits_is_402_with_the_shortfall_and_nothing_moves(setup):
    _org, member, api = setup
    snap = ledger_snapshot()
    r = api.post("/holds", {"member_id": member.pk, "amount": 101}, key="h1")
    assert r.status_code == 402
    body = r.json()
    assert body["code"] == "insufficient_credits" and body["shortfall"] == 1 and body["available"] == 100
    assert ledger_snapshot() == snap and not Hold.objects.exists()
    _clean()


def test_idempotent_replay_and_different_body(setup):
    _org, member, api = setup
    first = api.post("/holds", {"member_id": member.pk, "amount": 10}, key="same")
    again = api.post("/holds", {"member_id": member.pk, "amount": 10}, key="same")
    assert again.status_code == 201 and again.content == first.content
    other = api.post("/holds", {"member_id": member.pk, "amount": 11}, key="same")
    assert other.status_code == 409 and other.json()["code"] == "idempotency_key_reused"
    assert Hold.objects.count() == 1 and Transfer.objects.filter(kind=TransferKind.HOLD).count() == 1
    _clean()


def test_service_replays_a_key_whose_api_record_is_gone(setup):
    """The ledger layer alone (the API's stored response purged): same key, same hold."""
    org, member, _api = setup
    a = create_hold(org=org, membership_id=member.pk, amount=5, idempotency_key="k")
    b = create_hold(org=org, membership_id=member.pk, amount=5, idempotency_key="k")
    assert b.replayed and a.hold.pk == b.hold.pk
    assert Transfer.objects.filter(kind=TransferKind.HOLD).count() == 1


@pytest.mark.parametrize(
    ("body", "code"),
    [
        ({"amount": 0}, "invalid_amount"),
        ({"amount": -5}, "invalid_amount"),
        ({"amount": 10**15 + 1}, "invalid_amount"),
        ({"amount": 1.5}, "invalid_amount"),
        ({"amount": "10"}, "invalid_amount"),
        ({"amount": 5, "expires_in": 0}, "validation_error"),
        ({"amount": 5, "expires_in": 7 * 24 * 3600 + 1}, "validation_error"),
        ({"amount": 5, "description": "two\nlines"}, "validation_error"),
        ({"amount": 5, "surprise": 1}, "validation_error"),
    ],
)
def test_bad_hold_input_is_a_422_problem_and_nothing_moves(setup, body, code):
    _org, member, api = setup
    snap = ledger_snapshot()
    r = api.post("/holds", {"member_id": member.pk, **body}, key="bad")
    assert r.status_code == 422 and r["Content-Type"] == "application/problem+json"
    assert r.json()["code"] == code
    assert ledger_snapshot() == snap and not Hold.objects.exists()
    _clean()


def test_bad_capture_input_is_refused_and_nothing_moves(setup, other_org):
    org, member, api = setup
    hold = api.post("/holds", {"member_id": member.pk, "amount": 20}, key="h1").json()
    snap = ledger_snapshot()
    too_much = api.post(f"/holds/{hold['id']}/capture", {"amount": 21}, key="c1")
    assert too_much.status_code == 422 and too_much.json()["code"] == "capture_exceeds_hold"
    zero = api.post(f"/holds/{hold['id']}/capture", {"amount": 0}, key="c2")
    assert zero.status_code == 422 and zero.json()["code"] == "invalid_amount"
    missing = api.post("/holds/999999999/capture", {"amount": 1}, key="c3")
    assert missing.status_code == 404 and missing.json()["code"] == "hold_not_found"
    # Another org's key: the hold is not theirs (404 on capture, void and read).
    foreign = Api(issue_key(other_org, "charge")[1])
    r = foreign.post(f"/holds/{hold['id']}/capture", {"amount": 1}, key="c4")
    assert r.status_code == 404 and r.json()["code"] == "hold_not_found"
    assert foreign.post(f"/holds/{hold['id']}/void", {}, key="v1").status_code == 404
    assert foreign.get(f"/holds/{hold['id']}").status_code == 404
    # A read key cannot hold or capture.
    reader = Api(issue_key(org, "read")[1])
    assert reader.post(f"/holds/{hold['id']}/capture", {"amount": 1}, key="c5").status_code == 403
    assert reader.post("/holds", {"member_id": member.pk, "amount": 1}, key="h9").status_code == 403
    assert ledger_snapshot() == snap
    assert Hold.objects.get(pk=hold["id"]).status == HoldStatus.OPEN
    _clean()


def test_hold_for_a_member_of_another_org_or_removed_is_404(setup, other_org):
    _org, _member, api = setup
    stranger = MembershipFactory(org=other_org)
    r = api.post("/holds", {"member_id": stranger.pk, "amount": 1}, key="h1")
    assert r.status_code == 404 and r.json()["code"] == "member_not_found"
    assert not Hold.objects.exists()


def test_capture_after_expiry_is_refused_and_the_task_releases_it(setup):
    org, member, api = setup
    before = _member_balance(org, member)
    hold = api.post("/holds", {"member_id": member.pk, "amount": 30, "expires_in": 60}, key="h1").json()
    Hold.objects.filter(pk=hold["id"]).update(expires_at=timezone.now() - timedelta(seconds=1))
    snap = ledger_snapshot()
    r = api.post(f"/holds/{hold['id']}/capture", {"amount": 10}, key="c1")
    assert r.status_code == 409 and r.json()["code"] == "hold_expired"
    r = api.post(f"/holds/{hold['id']}/void", {}, key="v1")
    assert r.status_code == 409 and r.json()["code"] == "hold_expired"
    assert ledger_snapshot() == snap
    assert expire_due_holds() == 1
    assert expire_due_holds() == 0  # once
    assert api.get(f"/holds/{hold['id']}").json()["status"] == "expired"
    assert _member_balance(org, member) == before
    r = api.post(f"/holds/{hold['id']}/capture", {"amount": 10}, key="c2")
    assert r.status_code == 409 and r.json()["code"] == "hold_expired"
    _clean()


def test_open_hold_of_a_removed_member_releases_to_the_org_wallet(setup, owner):
    """Removal returns what is neither spent nor held; the hold stays open (the job may still be running) and
    its capture charges usage, the rest going where the Return sent everything else: the org wallet."""
    from members.services import member_remove

    org, member, api = setup
    hold = api.post("/holds", {"member_id": member.pk, "amount": 70}, key="h1").json()
    org_wallet = Wallet.objects.for_org(org)
    org_before = sum(Pocket.objects.filter(wallet=org_wallet).values_list("balance", flat=True))
    member_remove(org=org, membership_id=member.pk, actor=owner)
    member.refresh_from_db()
    assert member.status == MembershipStatus.REMOVED
    org_after_return = sum(Pocket.objects.filter(wallet=org_wallet).values_list("balance", flat=True))
    assert org_after_return - org_before == 30  # 100 given, 70 held
    r = api.post(f"/holds/{hold['id']}/capture", {"amount": 50}, key="c1")
    assert r.status_code == 200, r.content
    assert sum(Pocket.objects.filter(wallet=org_wallet).values_list("balance", flat=True)) == org_after_return + 20
    assert sum(_member_balance(org, member).values()) == 0
    _clean()


DATABASE_QUEUE = {"default": {"BACKEND": "django_tasks_db.DatabaseBackend"}}


@pytest.fixture
def database_queue(settings):
    settings.TASKS = DATABASE_QUEUE
    saved = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGQUIT)}
    yield
    for sig, handler in saved.items():
        signal.signal(sig, handler)


@pytest.mark.django_db(transaction=True)
def test_the_real_worker_runs_the_expiry_task(setup, database_queue):
    org, member, api = setup
    hold = api.post("/holds", {"member_id": member.pk, "amount": 30}, key="h1").json()
    open_too = api.post("/holds", {"member_id": member.pk, "amount": 5}, key="h2").json()
    Hold.objects.filter(pk=hold["id"]).update(expires_at=timezone.now() - timedelta(seconds=1))
    expire_holds.enqueue()
    call_command("db_worker", batch=True, reload=False, startup_delay=False, interval=0, stdout=io.StringIO())
    assert Hold.objects.get(pk=hold["id"]).status == HoldStatus.EXPIRED
    assert Hold.objects.get(pk=open_too["id"]).status == HoldStatus.OPEN
    assert _member_balance(org, member) == {"promo": 35, "org-allocated": 60}  # only the 5 of the open hold are out
    _clean()


def test_expiry_is_registered_with_the_clock():
    from core import periodic

    assert any(p.task.name == expire_holds.name and p.every_seconds == 60 for p in periodic.registered())


def test_problem_bodies_are_json(setup):
    _org, _member, api = setup
    r = api.post("/holds", "not json", key="x")
    assert r.status_code in (400, 422)
    json.loads(r.content)


def test_captured_usage_is_the_members_usage_in_every_report(setup):
    """A capture is written like a usage charge (a member debit beside a Usage credit), so the member's "Used
    this month", their burn rate, the Usage page (live tail and rollup) and the org total all count it; the
    released rest and a voided hold count nowhere."""
    org, member, api = setup
    hold = api.post("/holds", {"member_id": member.pk, "amount": 70}, key="h1").json()
    assert api.post(f"/holds/{hold['id']}/capture", {"amount": 50}, key="c1").status_code == 200
    voided = api.post("/holds", {"member_id": member.pk, "amount": 10}, key="h2").json()
    assert api.post(f"/holds/{voided['id']}/void", {}, key="v2").status_code == 200
    capture = Transfer.objects.get(kind=TransferKind.HOLD_CAPTURE)
    member_legs = Entry.objects.filter(transfer=capture, wallet=Wallet.objects.for_user(member.user))
    assert sorted(e.amount for e in member_legs) == [-40, -10]  # the member's debits (Promo first) beside Usage

    assert usage_this_month(org.pk, [member.user_id]) == {member.user_id: 50}
    assert member_usage(member.user_id, org.pk, balance=50).burn.used == 50
    today = timezone.now().astimezone(UTC).date()
    rng = UsageRange("custom", today - timedelta(days=1), today)
    live = members_page(org.pk, rng)
    assert [(row.user_id, row.used) for row in live.rows] == [(member.user_id, 50)] and live.total == 50
    roll_up_days(today - timedelta(days=1), today + timedelta(days=1))
    rolled = members_page(org.pk, rng, watermark=today + timedelta(days=1))
    assert [(row.user_id, row.used) for row in rolled.rows] == [(member.user_id, 50)]
    _clean()
