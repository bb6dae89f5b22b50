"""Expiry travels through holds (issue 19, docs/holds.md "Expiring credits"): a hold draws like usage (earliest
expiry first, then credit type draw order), each part remembers its pocket's day, and whatever goes back (void,
expiry of the hold, the unused rest of a capture, a removed member's rest) goes to the pocket with that day."""

import datetime
import json

import pytest
from django.core.cache import cache
from django.db import connection

from expiry.services import run_expiry
from holds.models import Hold, HoldStatus
from holds.selectors import holds_problems
from holds.services import capture_hold, create_hold, expire_due_holds, hold_parts, void_hold
from members.services import member_remove
from tests.api.helpers import Api, issue_key
from tests.concurrency import race
from tests.expiry.helpers import balances, days_pass, expired_total, give, grant, in_days, member_with_promo_of_two_days
from tests.factories import MembershipFactory, fund
from wallets.models import NEVER, CreditType, Entry, Transfer, TransferKind, Wallet
from wallets.selectors import ledger_problems
from wallets.services import org_credit_from_stripe, org_transfer_to_member

pytestmark = pytest.mark.django_db


def _clean():
    assert ledger_problems() == []
    assert holds_problems() == []


@pytest.fixture
def member(org):
    """A member holding promo credits of two days (50 expiring in 5 days, 200 in 10) and 100 that never expire."""
    return member_with_promo_of_two_days(org)


def _mine(org, member) -> dict:
    return balances(Wallet.objects.for_user(member.user))


def _org(org) -> dict:
    return balances(Wallet.objects.for_org(org))


def test_a_hold_takes_the_earliest_expiring_credits_and_each_part_keeps_its_day(org, member):
    before = _mine(org, member)
    assert before == {
        ("promo", org.pk, in_days(5)): 50,
        ("promo", org.pk, in_days(10)): 200,
        ("org-allocated", org.pk, NEVER): 100,
    }
    hold = create_hold(org=org, membership_id=member.pk, amount=120).hold
    promo = CreditType.objects.get(slug="promo").pk
    assert hold_parts(hold) == [(promo, "promo", 50, in_days(5)), (promo, "promo", 70, in_days(10))]
    assert Hold.objects.get(pk=hold.pk).parts == [
        [promo, "promo", 50, in_days(5).isoformat()],
        [promo, "promo", 70, in_days(10).isoformat()],
    ]
    assert _mine(org, member) == {("promo", org.pk, in_days(10)): 130, ("org-allocated", org.pk, NEVER): 100}
    _clean()
    # A void puts each part back into its own pocket, with its day.
    void_hold(org=org, hold_id=hold.pk)
    assert _mine(org, member) == before
    _clean()


def test_expiry_comes_before_the_credit_type_draw_order(org):
    """Org-allocated credits expiring in 3 days go before Promo credits expiring in 10 (Promo is drawn first
    otherwise)."""
    org_credit_from_stripe(org=org, amount=100, expires_on=in_days(3))
    grant(org, 100, 10)
    member = MembershipFactory(org=org)
    give(org, member, 100)
    give(org, member, 100, "org-allocated")
    hold = create_hold(org=org, membership_id=member.pk, amount=130).hold
    assert [(slug, held, day) for _ct, slug, held, day in hold_parts(hold)] == [
        ("org-allocated", 100, in_days(3)),
        ("promo", 30, in_days(10)),
    ]
    _clean()


def test_the_expiry_of_the_hold_gives_the_credits_back_with_their_days(org, member):
    before = _mine(org, member)
    hold = create_hold(org=org, membership_id=member.pk, amount=300, expires_in=1).hold
    Hold.objects.filter(pk=hold.pk).update(expires_at=hold.created_at - datetime.timedelta(seconds=1))
    assert expire_due_holds() == 1
    assert _mine(org, member) == before
    _clean()


def test_a_capture_charges_the_earliest_parts_and_the_rest_goes_back_to_its_pocket(org, member):
    hold = create_hold(org=org, membership_id=member.pk, amount=120).hold
    result = capture_hold(org=org, hold_id=hold.pk, amount=60)
    # 50 of the 5-day credits and 10 of the 10-day ones were used; the 60 not captured are back with their day.
    assert _mine(org, member) == {("promo", org.pk, in_days(10)): 190, ("org-allocated", org.pk, NEVER): 100}
    member_wallet = Wallet.objects.for_user(member.user)
    debits = sorted(
        (e.pocket.expires_on, e.amount)
        for e in Entry.objects.filter(transfer=result.transfer, wallet=member_wallet).select_related("pocket")
    )
    assert debits == [(in_days(5), -50), (in_days(10), -10)]
    release = Transfer.objects.get(kind=TransferKind.HOLD_RELEASE, idempotency_key=f"hold:{hold.pk}:capture-release")
    credits = sorted(
        (e.pocket.expires_on, e.amount)
        for e in Entry.objects.filter(transfer=release, wallet=member_wallet).select_related("pocket")
    )
    assert credits == [(in_days(5), 50), (in_days(10), 70)]
    _clean()


def test_a_removed_members_rest_goes_to_the_org_wallet_with_its_day(org, member, owner):
    hold = create_hold(org=org, membership_id=member.pk, amount=120).hold
    org_before = _org(org)
    member_remove(org=org, membership_id=member.pk, actor=owner)  # returns the 130 + 100 not held, with their days
    returned = {("promo", None, in_days(10)): 130, ("org-allocated", None, NEVER): 100}
    after_return = {k: org_before.get(k, 0) + returned.get(k, 0) for k in org_before.keys() | returned.keys()}
    assert _org(org) == after_return
    capture_hold(org=org, hold_id=hold.pk, amount=60)  # 50 of the 5-day and 10 of the 10-day credits used
    expected = dict(after_return)
    expected[("promo", None, in_days(10))] += 60
    assert _org(org) == expected
    assert _mine(org, member) == {}
    _clean()


def test_a_removed_members_void_gives_the_org_wallet_every_part_with_its_day(org, member, owner):
    hold = create_hold(org=org, membership_id=member.pk, amount=120).hold
    member_remove(org=org, membership_id=member.pk, actor=owner)
    org_before = _org(org)
    void_hold(org=org, hold_id=hold.pk)
    expected = dict(org_before)
    expected[("promo", None, in_days(5))] = expected.get(("promo", None, in_days(5)), 0) + 50
    expected[("promo", None, in_days(10))] += 70
    assert _org(org) == expected
    _clean()


def test_a_hold_made_before_parts_had_days_goes_back_to_the_never_expiring_pocket(org):
    fund(org, 500)
    member = MembershipFactory(org=org)
    give(org, member, 100, "org-allocated")
    hold = create_hold(org=org, membership_id=member.pk, amount=40).hold
    ct = CreditType.objects.get(slug="org-allocated").pk
    # The shape of the parts written before issue 19: no day.
    Hold.objects.filter(pk=hold.pk).update(parts=[[ct, "org-allocated", 40]])
    void_hold(org=org, hold_id=hold.pk)
    assert _mine(org, member) == {("org-allocated", org.pk, NEVER): 100}
    _clean()


def _days_pass_for_holds(n: int) -> None:
    """tests.expiry.helpers.days_pass for the days the open holds remember too (the same state as had the
    hold been made n days ago)."""
    days_pass(n)
    for hold in Hold.objects.filter(status="open"):
        parts = [
            [*p[:3], (datetime.date.fromisoformat(p[3]) - datetime.timedelta(days=n)).isoformat()] for p in hold.parts
        ]
        with connection.cursor() as cur:
            cur.execute("UPDATE holds_hold SET parts = %s::jsonb WHERE id = %s", [json.dumps(parts), hold.pk])


def test_held_credits_do_not_expire_while_held_and_the_next_run_expires_them_once_released(org, member):
    hold = create_hold(org=org, membership_id=member.pk, amount=120).hold
    _days_pass_for_holds(6)  # the 5-day credits' day has passed while they were held
    yesterday = in_days(-1)
    run_expiry()
    assert expired_total(org) == 0  # nothing of the member's expired: the 50 sit in the Holds account
    assert holds_problems() == []
    void_hold(org=org, hold_id=hold.pk)
    assert _mine(org, member)[("promo", org.pk, yesterday)] == 50  # back with their day, already past
    run_expiry()
    assert expired_total(org) == 50
    assert ("promo", org.pk, yesterday) not in _mine(org, member)
    assert _mine(org, member)[("promo", org.pk, in_days(4))] == 200
    _clean()


def test_the_api_shows_what_is_held_per_credit_type(org, member, settings):
    settings.API_RATE_LIMIT_PER_MINUTE = 0
    cache.clear()
    api = Api(issue_key(org, "charge")[1])
    r = api.post("/holds", {"member_id": member.pk, "amount": 320}, key="h-days")
    assert r.status_code == 201, r.content
    assert r.json()["held"] == [{"credit_type": "promo", "amount": 250}, {"credit_type": "org-allocated", "amount": 70}]
    assert api.get(f"/holds/{r.json()['id']}").json()["held"] == r.json()["held"]
    _clean()


def test_a_member_given_credits_after_the_hold_gets_each_part_back_beside_them(org, member):
    hold = create_hold(org=org, membership_id=member.pk, amount=60).hold
    ct = CreditType.objects.get(slug="promo")
    org_transfer_to_member(org=org, membership_id=member.pk, credit_type=ct, amount=40)  # the 10-day credits
    void_hold(org=org, hold_id=hold.pk)
    assert _mine(org, member) == {
        ("promo", org.pk, in_days(5)): 50,
        ("promo", org.pk, in_days(10)): 240,
        ("org-allocated", org.pk, NEVER): 100,
    }
    _clean()


@pytest.mark.django_db(transaction=True)
def test_captures_and_voids_racing_on_a_hold_of_two_days_have_one_outcome_and_keep_the_days(org, member):
    before = _mine(org, member)
    hold = create_hold(org=org, membership_id=member.pk, amount=120).hold
    ct = CreditType.objects.get(slug="promo")

    def go(i):
        if i % 3 == 0:
            return capture_hold(org=org, hold_id=hold.pk, amount=60)
        if i % 3 == 1:
            return void_hold(org=org, hold_id=hold.pk)
        # Meanwhile the member is handed more of the 10-day credits (their pocket is one the release credits).
        return org_transfer_to_member(org=org, membership_id=member.pk, credit_type=ct, amount=1)

    results = race(12, go)
    status = Hold.objects.get(pk=hold.pk).status
    assert status in (HoldStatus.CAPTURED, HoldStatus.VOIDED)
    assert sum(1 for r in results if isinstance(r, Exception)) == 4  # the losing verb's four calls, refused
    assert Transfer.objects.filter(kind=TransferKind.HOLD_RELEASE).count() == 1
    expected = dict(before)
    expected[("promo", org.pk, in_days(10))] += 4
    if status == HoldStatus.CAPTURED:
        expected.pop(("promo", org.pk, in_days(5)))
        expected[("promo", org.pk, in_days(10))] -= 10
    assert _mine(org, member) == expected
    _clean()
