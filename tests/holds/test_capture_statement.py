"""A capture in one statement (wallets.ledger.post_settle, docs/holds.md) writes the ledger the general path writes.

Two orgs alike, one hold alike in each; one is captured by the one statement, the other by the general path (two
`post_transfer` calls in the capture's transaction, `holds.services._capture_locked`). The transfers, their entries
(in id order, with their balances after) and every pocket's balance must match, leg for leg, whatever the org.
"""

import re

import pytest
from django.db import transaction
from django.utils import timezone

from holds.models import Hold, HoldStatus
from holds.selectors import holds_problems
from holds.services import _capture_locked, _settle_fingerprint, capture_hold, create_hold
from tests.expiry.helpers import give, member_with_promo_of_two_days
from tests.factories import MembershipFactory, OrgFactory, UserFactory, fund
from wallets.ledger import Leg, _create_pockets
from wallets.models import CreditType, Entry, ExternalCode, Pocket, Transfer, TransferKind, Wallet
from wallets.selectors import ledger_problems

pytestmark = pytest.mark.django_db


def _org_with_member(name):
    """An org whose member holds promo of two days (50 in 5 days, 200 in 10) and 100 org-allocated credits."""
    org = OrgFactory(name=name, owner=UserFactory())
    member = member_with_promo_of_two_days(org)
    # The org's Usage pockets exist, as on any org that has charged usage of both credit types before: the one
    # statement leaves a missing pocket to the general path (the test below).
    usage = Wallet.objects.external(ExternalCode.USAGE).pk
    _create_pockets([Leg(usage, ct.pk, 1, org.pk, True) for ct in CreditType.objects.all()], timezone.now())
    return org, member


def _shape(transfer_ids):
    """Each transfer (in id order) with its entries, named by role instead of ids: what the ledger says happened.
    Within a transfer each pocket has one entry, so their order there says nothing; the release's entries come
    before the capture's (their ids), which the balances after rely on."""
    member_wallets = set(Wallet.objects.filter(kind="user").values_list("pk", flat=True))
    rows = []
    for transfer in Transfer.objects.filter(pk__in=transfer_ids).order_by("pk"):
        entries = [
            (
                "member" if e.wallet_id in member_wallets else e.wallet.code or e.wallet.kind,
                e.credit_type.slug,
                e.pocket.expires_on.isoformat(),
                e.amount,
                e.balance_after,
            )
            for e in Entry.objects.filter(transfer=transfer)
            .select_related("wallet", "credit_type", "pocket")
            .order_by("pk")
        ]
        assert len({e[:3] for e in entries}) == len(entries)
        rows.append((transfer.kind, transfer.amount, re.sub(r"^Hold \d+ ", "Hold N ", transfer.memo), sorted(entries)))
    return rows


def _pockets(member):
    return sorted(
        (p.credit_type.slug, p.expires_on.isoformat(), p.balance)
        for p in Pocket.objects.filter(wallet__user=member.user).select_related("credit_type")
    )


@pytest.mark.parametrize("captured", [1, 49, 50, 51, 120, 200, 300])
def test_the_one_statement_capture_writes_what_the_general_path_writes(captured):
    fast_org, fast_member = _org_with_member("Fast")
    slow_org, slow_member = _org_with_member("Slow")
    fast = create_hold(org=fast_org, membership_id=fast_member.pk, amount=300, description="job 7").hold
    slow = create_hold(org=slow_org, membership_id=slow_member.pk, amount=300, description="job 7").hold

    result = capture_hold(org=fast_org, hold_id=fast.pk, amount=captured)
    with transaction.atomic():
        reference = _capture_locked(slow_org, slow.pk, captured, None)

    fast_row, slow_row = Hold.objects.get(pk=fast.pk), Hold.objects.get(pk=slow.pk)
    assert fast_row.status == slow_row.status == HoldStatus.CAPTURED
    assert fast_row.captured == slow_row.captured == captured
    # The result is the row as stored: the capture transfer, the closing time, the parts.
    assert result.hold.capture_transfer_id == fast_row.capture_transfer_id == result.transfer.pk
    # The one statement made it (one time for the release, the capture and the hold's closing), where the general
    # path's two transfers each have their own time.
    release = Transfer.objects.get(org=fast_org, idempotency_key=f"hold:{fast.pk}:capture-release")
    assert result.hold.closed_at == fast_row.closed_at == result.transfer.created_at == release.created_at
    assert result.hold.parts == fast_row.parts and result.hold.expires_at == fast_row.expires_at
    assert result.transfer.kind == reference.transfer.kind == TransferKind.HOLD_CAPTURE
    assert result.transfer.memo == reference.transfer.memo == "job 7"
    # Both paths fingerprint a capture by its request (the hold and the amount), not by its legs.
    assert result.transfer.fingerprint == _settle_fingerprint(TransferKind.HOLD_CAPTURE, fast_org.pk, fast.pk, captured)
    assert reference.transfer.fingerprint == _settle_fingerprint(
        TransferKind.HOLD_CAPTURE, slow_org.pk, slow.pk, captured
    )

    def written(org, hold):
        release = Transfer.objects.get(org=org, idempotency_key=f"hold:{hold.pk}:capture-release")
        capture = Transfer.objects.get(org=org, idempotency_key=f"hold:{hold.pk}:capture")
        assert release.pk < capture.pk
        released = Entry.objects.filter(transfer=release).values_list("pk", flat=True)
        charged = Entry.objects.filter(transfer=capture).values_list("pk", flat=True)
        assert max(released) < min(charged)  # a pocket's entries in id order: its balance after, released, charged
        return [release.pk, capture.pk]

    fast_shape = _shape(written(fast_org, fast))
    slow_shape = _shape(written(slow_org, slow))
    assert fast_shape == slow_shape
    assert _pockets(fast_member) == _pockets(slow_member)
    assert ledger_problems() == [] and holds_problems() == []


def test_a_capture_the_one_statement_cannot_make_takes_the_general_path_and_writes_nothing_twice(org):
    fund(org, 100)
    member = MembershipFactory(org=org)
    give(org, member, 60, "org-allocated")
    hold = create_hold(org=org, membership_id=member.pk, amount=40).hold
    # The org's first capture: its Usage pocket does not exist yet, so the statement writes nothing and the general
    # path creates the pocket and captures, once.
    result = capture_hold(org=org, hold_id=hold.pk, amount=25)
    assert result.transfer.kind == TransferKind.HOLD_CAPTURE and not result.replayed
    assert Transfer.objects.filter(org=org, kind=TransferKind.HOLD_CAPTURE).count() == 1
    assert Transfer.objects.filter(org=org, kind=TransferKind.HOLD_RELEASE).count() == 1
    # Again, the same amount: the statement sees a captured hold and writes nothing; the general path replays.
    again = capture_hold(org=org, hold_id=hold.pk, amount=25)
    assert again.replayed and again.transfer.pk == result.transfer.pk
    assert Transfer.objects.filter(org=org, kind=TransferKind.HOLD_CAPTURE).count() == 1
    assert ledger_problems() == [] and holds_problems() == []
