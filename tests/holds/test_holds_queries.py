"""Statements per hold, capture and void (docs/holds.md#bench): the hot path's round trips, pinned.

Each verb runs in its own transaction here (transaction=True), as the bench and a caller outside a transaction
run it, so BEGIN and COMMIT are in the count: every line below is one round trip to PostgreSQL.
"""

import re

import pytest
from django.core.cache import cache
from django.db import connection
from django.test.utils import CaptureQueriesContext

from apikeys.models import UsageCharge
from holds.models import Hold, HoldStatus
from holds.selectors import holds_problems
from holds.services import capture_hold, create_hold, void_hold
from tests.api.helpers import Api, give, issue_key
from tests.factories import MembershipFactory, fund
from wallets import ledger
from wallets.models import CreditType, Transfer, TransferKind, Wallet
from wallets.selectors import ledger_problems
from wallets.watches import balance_crossed, wallet_balance, watch_balance

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def setup(org, settings):
    settings.API_RATE_LIMIT_PER_MINUTE = 0
    cache.clear()
    fund(org, 1_000)
    fund(org, 100, "promo")
    member = MembershipFactory(org=org)
    give(org, member, 300)
    give(org, member, 80, "promo")
    return org, member


def _statements(ctx) -> list[str]:
    """Each captured statement as a short label: BEGIN, COMMIT, or the table / ledger statement it writes or reads."""
    labels = []
    for q in ctx.captured_queries:
        sql = re.sub(r"^/\* prepared \*/\s*", "", q["sql"].strip())
        if sql in ("BEGIN", "COMMIT"):
            labels.append(sql)
        elif sql.startswith("WITH legs AS"):
            labels.append("ledger")  # wallets/sql/post_transfer.sql: one ledger transfer
        elif sql.startswith("WITH m AS MATERIALIZED"):
            labels.append("drawn ledger")  # wallets/sql/post_usage.sql: lock, plan and write one transfer
        elif sql.startswith("WITH src AS MATERIALIZED"):
            labels.append("settle")  # wallets/sql/post_settle.sql: lock the hold, release and charge
        elif sql.startswith("SELECT h.id"):
            labels.append("lock_hold")
        else:
            labels.append(sql.split()[0] + " " + (re.search(r"holds_hold|\w+_\w+", sql) or [""])[0])
    return labels


def test_a_hold_is_1_statement_a_capture_1_a_void_5(setup):
    org, member = setup
    # The org's first hold and capture create its pockets in the Holds and Usage wallets (the ledger's one-off
    # retry: a key look-up, an INSERT of the pockets and the ledger statement again); count the steady state.
    first = create_hold(org=org, membership_id=member.pk, amount=90, idempotency_key="q-0")  # 80 promo + 10
    capture_hold(org=org, hold_id=first.hold.pk, amount=85)
    with CaptureQueriesContext(connection) as made:
        held = create_hold(org=org, membership_id=member.pk, amount=70, description="qjob", idempotency_key="q-1")
    # One ledger statement locks the membership and the pockets, plans the hold and writes the HOLD transfer and
    # the hold's row (wallets.ledger.post_usage with its `Then`), in autocommit its own transaction.
    assert _statements(made) == ["drawn ledger"]
    assert "INSERT INTO holds_hold" in made.captured_queries[0]["sql"]
    # What the statement wrote is what the service returned: 70 of the 210 org-allocated credits left (the promo
    # went to the first hold), from the never-expiring pocket.
    allocated = CreditType.objects.get(slug="org-allocated").pk
    stored = Hold.objects.get(pk=held.hold.pk)
    assert stored.parts == held.hold.parts == [[allocated, "org-allocated", 70, "9999-12-31"]]
    assert (stored.expires_at, stored.created_at) == (held.hold.expires_at, held.hold.created_at)

    with CaptureQueriesContext(connection) as captured:
        result = capture_hold(org=org, hold_id=held.hold.pk, amount=50)
    # One statement (wallets.ledger.post_settle): the hold and its membership locked, then the member's pockets;
    # HOLD_RELEASE and HOLD_CAPTURE written; the hold marked captured.
    assert _statements(captured) == ["settle"]
    assert "UPDATE holds_hold" in captured.captured_queries[0]["sql"]
    assert result.transfer.kind == TransferKind.HOLD_CAPTURE and not result.replayed
    assert Hold.objects.get(pk=held.hold.pk).status == HoldStatus.CAPTURED

    other = create_hold(org=org, membership_id=member.pk, amount=10, idempotency_key="q-2")
    with CaptureQueriesContext(connection) as voided:
        void_hold(org=org, hold_id=other.hold.pk)
    assert _statements(voided) == ["BEGIN", "lock_hold", "ledger", "UPDATE holds_hold", "COMMIT"]
    assert Transfer.objects.filter(kind=TransferKind.HOLD_RELEASE).count() == 3  # two captures' and the void's
    assert ledger_problems() == [] and holds_problems() == []


def test_an_api_capture_does_not_look_up_a_usage_charge_it_is_about_to_create(setup):
    org, member = setup
    api = Api(issue_key(org, "charge")[1])
    hold = api.post("/holds", {"member_id": member.pk, "amount": 70}, key="h1").json()
    with CaptureQueriesContext(connection) as first:
        r = api.post(f"/holds/{hold['id']}/capture", {"amount": 50}, key="c1")
    assert r.status_code == 200, r.content
    table = UsageCharge._meta.db_table
    touched = [q["sql"].split()[0] for q in first.captured_queries if f'"{table}"' in q["sql"]]
    assert touched == ["INSERT"]  # the new charge, and no SELECT for it first
    assert UsageCharge.objects.filter(pk=r.json()["usage_charge_id"], metadata={"hold_id": hold["id"]}).exists()
    # A second capture of the same amount under a new key replays the hold's outcome and finds the same charge.
    again = api.post(f"/holds/{hold['id']}/capture", {"amount": 50}, key="c2")
    assert again.status_code == 200 and again.json()["usage_charge_id"] == r.json()["usage_charge_id"]
    assert UsageCharge.objects.count() == 1
    assert ledger_problems() == [] and holds_problems() == []


def test_a_watched_member_wallet_hears_its_hold_and_its_capture(setup):
    """A balance watch on the member's wallet (a member's low-balance alert) hears the hold and the capture: the
    ledger's unwatched forms write nothing for a watched wallet and its watched forms do, once each. The hold, whose
    membership this process now knows is watched, is one statement; the capture two (it does not know the wallet
    before its first statement)."""
    org, member = setup
    first = create_hold(org=org, membership_id=member.pk, amount=90, idempotency_key="w-0")  # the org's pockets
    capture_hold(org=org, hold_id=first.hold.pk, amount=85)
    wallet = Wallet.objects.for_user(member.user)
    watch_balance(wallet=wallet, threshold=250, purpose="test", ref_id=5)  # 295 now; no feature listens to "test"
    heard = []

    def receiver(sender, **kwargs):
        heard.append((kwargs["direction"], kwargs["balance_before"], kwargs["balance_after"]))

    balance_crossed.connect(receiver, dispatch_uid="test-holds-watch")
    try:
        ledger._WATCHED_MEMBERSHIPS.discard(member.pk)
        with CaptureQueriesContext(connection) as made:
            held = create_hold(org=org, membership_id=member.pk, amount=70, idempotency_key="w-1")  # 295 -> 225
        assert _statements(made) == ["drawn ledger", "drawn ledger"]  # the unwatched form, then the watched one
        with CaptureQueriesContext(connection) as again:
            create_hold(org=org, membership_id=member.pk, amount=5, idempotency_key="w-2")  # 225 -> 220
        assert _statements(again) == ["drawn ledger"]
        with CaptureQueriesContext(connection) as captured:
            capture_hold(org=org, hold_id=held.hold.pk, amount=10)  # release 220 -> 290, charge 290 -> 280
        assert _statements(captured) == ["settle", "settle"]
        assert "wallets_balancewatch" not in captured.captured_queries[0]["sql"]
        assert "wallets_balancewatch" in captured.captured_queries[1]["sql"]
    finally:
        balance_crossed.disconnect(dispatch_uid="test-holds-watch")
    # Each transfer with its own before and after: the capture's release crosses 250 on the way up.
    assert heard == [("below", 295, 225), ("above", 220, 290)]
    assert wallet_balance(wallet.pk) == 280
    assert Transfer.objects.filter(kind=TransferKind.HOLD_CAPTURE).count() == 2
    assert ledger_problems() == [] and holds_problems() == []
