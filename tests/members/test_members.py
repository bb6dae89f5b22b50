"""Members, seats, Member defaults and invitations: the domain verbs in members.services, and their bad input."""

from datetime import timedelta

import pytest
from django.core import mail
from django.utils import timezone

from core.errors import DomainError
from members import services as svc
from orgs.models import Invitation, InvitationStatus, MemberDefaults, Membership, MembershipStatus, Role
from tests.factories import MembershipFactory, OrgFactory, UserFactory, fund, ledger_snapshot
from wallets.errors import MemberNotActive
from wallets.models import CreditType, Pocket, Transfer, TransferKind, Wallet
from wallets.selectors import ledger_problems, wallet_balance
from wallets.services import org_transfer_to_member

pytestmark = pytest.mark.django_db


def org_balance(org) -> int:
    return wallet_balance(Wallet.objects.for_org(org)).total


def user_balance(user) -> int:
    return wallet_balance(Wallet.objects.for_user(user)).total


def set_defaults(org, **values):
    defaults = MemberDefaults.for_org(org)
    for k, v in values.items():
        setattr(defaults, k, v)
    defaults.save()
    return defaults


def ct(slug="org-allocated"):
    return CreditType.objects.get(slug=slug)


# ---------------------------------------------------------------- removal and returns


def test_member_remove_returns_every_org_funded_pocket_in_one_return(funded_org, owner, member_membership):
    fund(funded_org, 500, "promo")
    user = member_membership.user
    org_transfer_to_member(org=funded_org, membership_id=member_membership.pk, credit_type=ct(), amount=300)
    org_transfer_to_member(org=funded_org, membership_id=member_membership.pk, credit_type=ct("promo"), amount=50)
    other = OrgFactory(name="Elsewhere")
    fund(other, 1_000)
    other_m = MembershipFactory(org=other, user=user)
    org_transfer_to_member(org=other, membership_id=other_m.pk, credit_type=ct(), amount=70)
    before = org_balance(funded_org)

    removal = svc.member_remove(org=funded_org, membership_id=member_membership.pk, actor=owner)

    assert removal.returned == 350
    assert removal.transfer.kind == TransferKind.RETURN
    assert Transfer.objects.filter(kind=TransferKind.RETURN).count() == 1
    assert org_balance(funded_org) == before + 350
    assert user_balance(user) == 70  # credits from the other org stay
    m = Membership.objects.get(pk=member_membership.pk)
    assert m.status == MembershipStatus.REMOVED and m.removed_at is not None
    assert not Pocket.objects.filter(wallet__user=user, funding_org=funded_org, balance__gt=0).exists()
    assert ledger_problems() == []


def test_member_remove_with_nothing_to_return_posts_nothing(funded_org, owner, member_membership):
    before = ledger_snapshot()
    removal = svc.member_remove(org=funded_org, membership_id=member_membership.pk, actor=owner)
    assert removal.transfer is None and removal.returned == 0
    assert ledger_snapshot() == before


def test_member_remove_owner_is_refused_and_nothing_changes(funded_org, owner):
    owner_m = Membership.objects.get(org=funded_org, user=owner)
    before = ledger_snapshot()
    with pytest.raises(DomainError, match="owner cannot be removed"):
        svc.member_remove(org=funded_org, membership_id=owner_m.pk, actor=owner)
    assert ledger_snapshot() == before
    assert Membership.objects.get(pk=owner_m.pk).status == MembershipStatus.ACTIVE


def test_member_remove_twice_returns_once(funded_org, owner, member_membership):
    org_transfer_to_member(org=funded_org, membership_id=member_membership.pk, credit_type=ct(), amount=40)
    svc.member_remove(org=funded_org, membership_id=member_membership.pk, actor=owner)
    before = ledger_snapshot()
    with pytest.raises(MemberNotActive):
        svc.member_remove(org=funded_org, membership_id=member_membership.pk, actor=owner)
    assert ledger_snapshot() == before


def test_member_remove_of_another_orgs_member_is_refused(funded_org, other_org, owner):
    foreign = MembershipFactory(org=other_org)
    before = ledger_snapshot()
    with pytest.raises(MemberNotActive):
        svc.member_remove(org=funded_org, membership_id=foreign.pk, actor=owner)
    assert ledger_snapshot() == before


def test_readded_member_removed_again_returns_again(funded_org, owner, member_membership):
    org_transfer_to_member(org=funded_org, membership_id=member_membership.pk, credit_type=ct(), amount=10)
    svc.member_remove(org=funded_org, membership_id=member_membership.pk, actor=owner)
    again = MembershipFactory(org=funded_org, user=member_membership.user)
    org_transfer_to_member(org=funded_org, membership_id=again.pk, credit_type=ct(), amount=20)
    removal = svc.member_remove(org=funded_org, membership_id=again.pk, actor=owner)
    assert removal.returned == 20 and not removal.replayed
    assert org_balance(funded_org) == 10_000


# ---------------------------------------------------------------- roles


def test_change_role_and_owner_is_refused(org, owner, member_membership):
    svc.membership_change_role(org=org, membership_id=member_membership.pk, role=Role.ADMIN, actor=owner)
    assert Membership.objects.get(pk=member_membership.pk).role == Role.ADMIN
    owner_m = Membership.objects.get(org=org, user=owner)
    with pytest.raises(DomainError, match="owner's role"):
        svc.membership_change_role(org=org, membership_id=owner_m.pk, role=Role.MEMBER, actor=owner)
    with pytest.raises(DomainError, match="Pick a role"):
        svc.membership_change_role(org=org, membership_id=member_membership.pk, role=Role.OWNER, actor=owner)
    assert Membership.objects.get(pk=owner_m.pk).role == Role.OWNER


# ---------------------------------------------------------------- seats


def test_seat_assign_moves_seat_credits_and_revoke_keeps_them(funded_org, owner, member_membership):
    funded_org.seats = 1
    funded_org.save()
    set_defaults(funded_org, seat_assignment_credits=200)
    svc.seat_assign(org=funded_org, membership_id=member_membership.pk, actor=owner)
    m = Membership.objects.get(pk=member_membership.pk)
    assert m.has_seat and m.seat_assigned_at and m.seat_assignments == 1
    assert user_balance(m.user) == 200 and org_balance(funded_org) == 9_800
    t = Transfer.objects.get(kind=TransferKind.SEAT_CREDITS)
    assert t.idempotency_key == f"seat:{m.pk}:1"
    svc.seat_revoke(org=funded_org, membership_id=m.pk, actor=owner)
    assert not Membership.objects.get(pk=m.pk).has_seat
    assert user_balance(m.user) == 200
    svc.seat_assign(org=funded_org, membership_id=m.pk, actor=owner)  # a second assignment pays again
    assert user_balance(m.user) == 400


def test_seat_assign_beyond_the_orgs_seats_is_refused(funded_org, owner, member_membership, admin_membership):
    funded_org.seats = 1
    funded_org.save()
    set_defaults(funded_org, seat_assignment_credits=10)
    svc.seat_assign(org=funded_org, membership_id=member_membership.pk, actor=owner)
    before = ledger_snapshot()
    with pytest.raises(svc.NoFreeSeat, match="No free seat"):
        svc.seat_assign(org=funded_org, membership_id=admin_membership.pk, actor=owner)
    assert ledger_snapshot() == before
    assert not Membership.objects.get(pk=admin_membership.pk).has_seat


def test_seat_assign_with_too_little_in_org_wallet_is_refused(org, owner, member_membership):
    fund(org, 50)
    org.seats = 5
    org.save()
    set_defaults(org, seat_assignment_credits=200)
    before = ledger_snapshot()
    with pytest.raises(svc.SeatCreditsShort, match="holds 50"):
        svc.seat_assign(org=org, membership_id=member_membership.pk, actor=owner)
    assert ledger_snapshot() == before
    assert not Membership.objects.get(pk=member_membership.pk).has_seat


def test_seat_assign_twice_is_refused(funded_org, owner, member_membership):
    funded_org.seats = 3
    funded_org.save()
    svc.seat_assign(org=funded_org, membership_id=member_membership.pk, actor=owner)
    with pytest.raises(DomainError, match="already has a seat"):
        svc.seat_assign(org=funded_org, membership_id=member_membership.pk, actor=owner)


def test_removing_a_seated_member_frees_the_seat(funded_org, owner, member_membership):
    funded_org.seats = 1
    funded_org.save()
    set_defaults(funded_org, seat_assignment_credits=100)
    svc.seat_assign(org=funded_org, membership_id=member_membership.pk, actor=owner)
    removal = svc.member_remove(org=funded_org, membership_id=member_membership.pk, actor=owner)
    assert removal.returned == 100
    assert svc.seats_used(funded_org) == 0
    assert org_balance(funded_org) == 10_000


# ---------------------------------------------------------------- member defaults


@pytest.mark.parametrize(
    "values",
    [
        {"seat_assignment_credits": -1},
        {"seat_assignment_credits": 100_001},
        {"default_credit_allocation": -5},
        {"default_credit_allocation": 10**9},
        {"default_role": "owner"},
    ],
)
def test_member_defaults_out_of_range_are_refused(org, owner, values):
    before = ledger_snapshot()
    with pytest.raises(DomainError):
        svc.member_defaults_update(org=org, actor=owner, **values)
    assert not MemberDefaults.objects.filter(org=org).exists()
    assert ledger_snapshot() == before


def test_member_defaults_save(org, owner):
    svc.member_defaults_update(org=org, actor=owner, seat_assignment_credits=100_000, default_credit_allocation=0)
    assert MemberDefaults.objects.get(org=org).seat_assignment_credits == 100_000


# ---------------------------------------------------------------- invitations


def invite(org, owner, email="new@example.com", role=Role.MEMBER, credit_allocation=0):
    return svc.invitation_create(org=org, email=email, role=role, credit_allocation=credit_allocation, actor=owner)


def test_invitation_create_emails_a_signed_link(org, owner, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        inv = invite(org, owner, email="New@Example.com ")
    assert inv.email == "new@example.com" and inv.status == InvitationStatus.PENDING
    assert len(mail.outbox) == 1
    body = mail.outbox[0].body
    assert mail.outbox[0].to == ["new@example.com"] and "Acme Quantum" in mail.outbox[0].subject
    token = body.split("/invite/")[1].split("/")[0]
    assert svc.invitation_from_token(token) == inv


@pytest.mark.parametrize("email", ["not-an-email", "", "a@b", "x@@example.com"])
def test_invitation_with_malformed_email_is_refused(org, owner, email):
    with pytest.raises(DomainError, match="not a valid email"):
        invite(org, owner, email=email)
    assert not Invitation.objects.exists()


def test_inviting_an_existing_member_is_refused(org, owner, member_membership):
    with pytest.raises(DomainError, match="already a member"):
        invite(org, owner, email=member_membership.user.email.upper())
    assert not Invitation.objects.exists()


def test_inviting_twice_is_refused_until_cancelled(org, owner):
    first = invite(org, owner)
    with pytest.raises(DomainError, match="pending invitation"):
        invite(org, owner)
    svc.invitation_cancel(org=org, invitation_id=first.pk, actor=owner)
    assert invite(org, owner).pk != first.pk


@pytest.mark.parametrize("bad", [-1, 1_000_001, "12", 1.5, True])
def test_invitation_allocation_out_of_range_is_refused(org, owner, bad):
    with pytest.raises(DomainError):
        invite(org, owner, credit_allocation=bad)
    assert not Invitation.objects.exists()


def test_invitation_accept_moves_default_and_invite_allocation_once(funded_org, owner):
    set_defaults(funded_org, default_credit_allocation=100, seat_assignment_credits=200, auto_assign_seats=True)
    funded_org.seats = 2
    funded_org.save()
    inv = invite(funded_org, owner, credit_allocation=50)
    user = UserFactory(email="new@example.com")
    acceptance = svc.invitation_accept(invitation_id=inv.pk, user=user)
    assert acceptance.membership.role == Role.MEMBER and acceptance.membership.has_seat
    assert acceptance.notices == []
    assert user_balance(user) == 350 and org_balance(funded_org) == 9_650
    kinds = set(Transfer.objects.filter(org=funded_org).values_list("kind", flat=True))
    assert {TransferKind.SEAT_CREDITS, TransferKind.DEFAULT_ALLOCATION, TransferKind.INVITE_ALLOCATION} <= kinds
    before = ledger_snapshot()
    again = svc.invitation_accept(invitation_id=inv.pk, user=user)  # a second click
    assert again.replayed and ledger_snapshot() == before
    inv.refresh_from_db()
    assert inv.status == InvitationStatus.ACCEPTED and inv.accepted_by == user


def test_invitation_accept_when_org_wallet_is_short_joins_without_seat_and_warns(org, owner):
    fund(org, 150)
    set_defaults(org, default_credit_allocation=100, seat_assignment_credits=200, auto_assign_seats=True)
    org.seats = 5
    org.save()
    inv = invite(org, owner)
    user = UserFactory(email="new@example.com")
    acceptance = svc.invitation_accept(invitation_id=inv.pk, user=user)
    assert not acceptance.membership.has_seat
    assert user_balance(user) == 100 and org_balance(org) == 50
    m = Membership.objects.get(pk=acceptance.membership.pk)
    assert "without a seat" in m.notice


def test_invitation_accept_with_no_free_seat_joins_without_one(funded_org, owner):
    set_defaults(funded_org, auto_assign_seats=True, seat_assignment_credits=10)
    inv = invite(funded_org, owner)
    acceptance = svc.invitation_accept(invitation_id=inv.pk, user=UserFactory(email="new@example.com"))
    assert not acceptance.membership.has_seat and "no seat was free" in acceptance.membership.notice
    assert org_balance(funded_org) == 10_000


def test_accepting_cancelled_expired_used_or_foreign_invitation_changes_nothing(funded_org, owner):
    set_defaults(funded_org, default_credit_allocation=100)
    user = UserFactory(email="new@example.com")
    cancelled = invite(funded_org, owner, credit_allocation=5)
    svc.invitation_cancel(org=funded_org, invitation_id=cancelled.pk, actor=owner)
    expired = invite(funded_org, owner, email="late@example.com")
    Invitation.objects.filter(pk=expired.pk).update(expires_at=timezone.now() - timedelta(seconds=1))
    late_user = UserFactory(email="late@example.com")
    wrong = invite(funded_org, owner, email="someone@example.com")
    before = ledger_snapshot()
    with pytest.raises(svc.InvitationInvalid, match="cancelled"):
        svc.invitation_accept(invitation_id=cancelled.pk, user=user)
    with pytest.raises(svc.InvitationInvalid, match="expired"):
        svc.invitation_accept(invitation_id=expired.pk, user=late_user)
    with pytest.raises(svc.InvitationInvalid, match=r"is for someone@example\.com"):
        svc.invitation_accept(invitation_id=wrong.pk, user=user)
    assert ledger_snapshot() == before
    assert not Membership.objects.filter(user__in=[user, late_user]).exists()
    used = invite(funded_org, owner)
    svc.invitation_accept(invitation_id=used.pk, user=user)
    before = ledger_snapshot()
    impostor = UserFactory(email="impostor@example.com")
    with pytest.raises(svc.InvitationInvalid, match="already been used"):
        svc.invitation_accept(invitation_id=used.pk, user=impostor)
    assert ledger_snapshot() == before


def test_tampered_or_unknown_token_is_refused(org, owner):
    inv = invite(org, owner)
    token = svc.invitation_token(inv)
    for bad in [token[:-1] + ("A" if token[-1] != "A" else "B"), "garbage", f"{inv.pk + 1}.x:abc:def"]:
        with pytest.raises(svc.InvitationInvalid):
            svc.invitation_from_token(bad)
    inv.nonce = "other"
    forged = svc.invitation_token(inv)  # right signer, wrong nonce: the row does not match
    with pytest.raises(svc.InvitationInvalid):
        svc.invitation_from_token(forged)


def test_token_older_than_max_age_is_expired(org, owner, settings):
    inv = invite(org, owner)
    token = svc.invitation_token(inv)
    settings.INVITE_MAX_AGE_DAYS = -1
    with pytest.raises(svc.InvitationInvalid, match="expired"):
        svc.invitation_from_token(token)


# ---------------------------------------------------------------- bulk invite


def test_bulk_invite_lists_and_skips_bad_rows(org, owner, member_membership):
    data = (
        "email,role\n"
        "ada@example.com,member\n"
        "bob@example.com,Admin\n"
        "not-an-email,member\n"
        "ada@example.com,manager\n"
        f"{member_membership.user.email},member\n"
        "carl@example.com,owner\n"
        "dora@example.com\n"
        "\n"
        "eve@example.com,\n"
    ).encode()
    result = svc.invitation_bulk_create(org=org, data=data, actor=owner)
    assert sorted(i.email for i in result.invited) == ["ada@example.com", "bob@example.com", "eve@example.com"]
    reasons = {line: reason for line, _raw, reason in result.skipped}
    assert "not a valid email" in reasons[4]
    assert "Duplicate of line 2" in reasons[5]
    assert "already a member" in reasons[6]
    assert "not a role" in reasons[7]
    assert "two columns" in reasons[8]
    assert Invitation.objects.get(email="bob@example.com").role == Role.ADMIN
    assert Invitation.objects.get(email="eve@example.com").role == Role.MEMBER  # the default role


def test_bulk_invite_blank_role_without_auto_assign_is_skipped(org, owner):
    set_defaults(org, auto_assign_default_role=False)
    result = svc.invitation_bulk_create(org=org, data=b"eve@example.com,\n", actor=owner)
    assert not result.invited and "role is missing" in result.skipped[0][2]


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\xff\xfe", "not a CSV"),
        (b"a@example.com,member\x00\n", "not a CSV"),
        (b"", "no rows"),
        (b"email,role\n", "no rows"),
        ("".join(f"p{i}@example.com,member\n" for i in range(101)).encode(), "101 rows"),
    ],
)
def test_bulk_invite_rejects_whole_file(org, owner, data, message):
    with pytest.raises(DomainError, match=message):
        svc.invitation_bulk_create(org=org, data=data, actor=owner)
    assert not Invitation.objects.exists()


def test_bulk_invite_accepts_exactly_100_rows_in_a_few_queries(
    org, owner, django_assert_max_num_queries, django_capture_on_commit_callbacks
):
    """Set-based: the same handful of queries for 100 rows as for 1, and one batch of emails."""
    svc.invitation_create(org=org, email="p7@example.com", role="member", actor=owner)
    data = "".join(f"p{i}@example.com,member\n" for i in range(100)).encode()
    mail.outbox.clear()
    with django_capture_on_commit_callbacks(execute=True), django_assert_max_num_queries(8):
        result = svc.invitation_bulk_create(org=org, data=data, actor=owner)
    assert len(result.invited) == 99
    assert result.skipped == [(8, "p7@example.com,member", "p7@example.com already has a pending invitation.")]
    assert Invitation.objects.filter(status=InvitationStatus.PENDING).count() == 100
    assert len(mail.outbox) == 99
    token = mail.outbox[0].body.split("/invite/")[1].split("/")[0]
    assert svc.invitation_from_token(token).email == mail.outbox[0].to[0]


def test_member_remove_returns_many_credit_types_in_one_transfer(funded_org, owner, member_membership):
    """Thirty credit types: the ledger locks one wallet's many pockets with a compact query, and all return."""
    from wallets.ledger import Leg, post_transfer
    from wallets.models import ExternalCode

    types = CreditType.objects.bulk_create([CreditType(slug=f"t{i}", name=f"Type {i}") for i in range(30)])
    types = list(CreditType.objects.filter(slug__in=[t.slug for t in types]))
    stripe, org_w = Wallet.objects.external(ExternalCode.STRIPE), Wallet.objects.for_org(funded_org)
    member_w = Wallet.objects.for_user(member_membership.user)
    post_transfer(
        kind=TransferKind.PURCHASE,
        org=funded_org,
        legs=[Leg(stripe.pk, t.pk, -40, funded_org.pk, True) for t in types]
        + [Leg(org_w.pk, t.pk, 40, None) for t in types],
    )
    post_transfer(
        kind=TransferKind.TRANSFER,
        org=funded_org,
        legs=[Leg(org_w.pk, t.pk, -(1 + i), None) for i, t in enumerate(types)]
        + [Leg(member_w.pk, t.pk, 1 + i, funded_org.pk) for i, t in enumerate(types)],
    )
    removal = svc.member_remove(org=funded_org, membership_id=member_membership.pk, actor=owner)
    assert removal.returned == sum(range(1, 31))
    assert removal.transfer.entries.count() == 60
    assert user_balance(member_membership.user) == 0
    assert org_balance(funded_org) == 10_000 + 30 * 40
    assert ledger_problems() == []


def test_member_remove_rereads_balances_when_the_member_spent_meanwhile(
    funded_org, owner, member_membership, monkeypatch
):
    """Balances are read without a lock; if the member spends before the primitive locks the pockets, the
    overdraft is refused and the removal reads again, returning exactly what is left."""
    from wallets.ledger import leg, post_transfer
    from wallets.models import ExternalCode

    org_transfer_to_member(org=funded_org, membership_id=member_membership.pk, credit_type=ct(), amount=100)
    member_w = Wallet.objects.for_user(member_membership.user)
    usage = Wallet.objects.external(ExternalCode.USAGE)
    calls = []

    def spend_then_post(**kwargs):
        if not calls:
            post_transfer(
                kind=TransferKind.USAGE,
                org=funded_org,
                legs=[leg(member_w, ct(), -30, funded_org), leg(usage, ct(), 30, funded_org)],
            )
        calls.append(kwargs)
        return post_transfer(**kwargs)

    monkeypatch.setattr(svc, "post_transfer", spend_then_post)
    removal = svc.member_remove(org=funded_org, membership_id=member_membership.pk, actor=owner)
    assert len(calls) == 2  # the first attempt (100) was refused as an overdraft, the second returned 70
    assert removal.returned == 70
    assert user_balance(member_membership.user) == 0
    assert org_balance(funded_org) == 9_970
    assert ledger_problems() == []


# ---------------------------------------------------------------- credits move on accept, never before


def _people(org):
    """Roles, seats and notices of everyone in the org: what a change of Member defaults must not touch."""
    return sorted(Membership.objects.filter(org=org).values_list("pk", "role", "status", "has_seat", "notice"))


def test_invite_with_an_allocation_moves_nothing_until_accepted(funded_org, owner):
    set_defaults(funded_org, default_credit_allocation=100, seat_assignment_credits=200, auto_assign_seats=True)
    funded_org.seats = 5
    funded_org.save()
    before = ledger_snapshot()
    inv = invite(funded_org, owner, credit_allocation=500)
    assert ledger_snapshot() == before  # invited: nothing moved, whatever the allocation and defaults
    user = UserFactory(email="new@example.com")
    assert user_balance(user) == 0
    svc.invitation_accept(invitation_id=inv.pk, user=user)
    moved = dict(
        Transfer.objects.filter(org=funded_org).exclude(kind=TransferKind.PURCHASE).values_list("kind", "amount")
    )
    assert moved == {
        TransferKind.INVITE_ALLOCATION: 500,
        TransferKind.DEFAULT_ALLOCATION: 100,
        TransferKind.SEAT_CREDITS: 200,
    }
    assert user_balance(user) == 800 and org_balance(funded_org) == 9_200
    assert ledger_problems() == []


def test_cancelled_invite_with_an_allocation_never_moves_credits(funded_org, owner):
    set_defaults(funded_org, default_credit_allocation=100)
    before = ledger_snapshot()
    inv = invite(funded_org, owner, credit_allocation=500)
    svc.invitation_cancel(org=funded_org, invitation_id=inv.pk, actor=owner)
    assert ledger_snapshot() == before
    with pytest.raises(svc.InvitationInvalid, match="cancelled"):
        svc.invitation_accept(invitation_id=inv.pk, user=UserFactory(email="new@example.com"))
    assert ledger_snapshot() == before
    assert not Membership.objects.filter(org=funded_org, user__email="new@example.com").exists()


def test_expired_invite_with_an_allocation_never_moves_credits(funded_org, owner):
    set_defaults(funded_org, default_credit_allocation=100)
    before = ledger_snapshot()
    inv = invite(funded_org, owner, credit_allocation=500)
    Invitation.objects.filter(pk=inv.pk).update(expires_at=timezone.now() - timedelta(seconds=1))
    user = UserFactory(email="new@example.com")
    with pytest.raises(svc.InvitationInvalid, match="expired"):
        svc.invitation_accept(invitation_id=inv.pk, user=user)
    assert ledger_snapshot() == before
    fresh = invite(funded_org, owner, credit_allocation=7)  # re-inviting marks the old one expired
    assert Invitation.objects.get(pk=inv.pk).status == InvitationStatus.EXPIRED
    assert ledger_snapshot() == before
    svc.invitation_accept(invitation_id=fresh.pk, user=user)  # the new link pays its own allocation, once
    assert user_balance(user) == 107
    assert not Transfer.objects.filter(idempotency_key=f"invite:{inv.pk}").exists()


def test_changing_member_defaults_leaves_existing_members_alone(funded_org, owner, admin_membership, member_membership):
    funded_org.seats = 10
    funded_org.save()
    seated = MembershipFactory(org=funded_org, role=Role.MANAGER)
    svc.seat_assign(org=funded_org, membership_id=seated.pk, actor=owner)
    people, before = _people(funded_org), ledger_snapshot()
    svc.member_defaults_update(
        org=funded_org,
        actor=owner,
        auto_assign_default_role=True,
        default_role=Role.ADMIN,
        auto_assign_seats=True,
        seat_assignment_credits=300,
        default_credit_allocation=150,
    )
    assert ledger_snapshot() == before
    assert _people(funded_org) == people


def test_new_member_defaults_apply_to_the_next_joiner(funded_org, owner, member_membership):
    funded_org.seats = 10
    funded_org.save()
    invited_before = invite(funded_org, owner, email="early@example.com")  # joins after the change
    svc.member_defaults_update(
        org=funded_org,
        actor=owner,
        auto_assign_default_role=True,
        default_role=Role.MANAGER,
        auto_assign_seats=True,
        seat_assignment_credits=300,
        default_credit_allocation=150,
    )
    people = _people(funded_org)
    for inv in (invited_before, invite(funded_org, owner, email="late@example.com")):
        user = UserFactory(email=inv.email)
        joined = svc.invitation_accept(invitation_id=inv.pk, user=user).membership
        assert joined.has_seat and joined.notice == ""
        assert user_balance(user) == 450
    assert org_balance(funded_org) == 10_000 - 2 * 450
    assert [p for p in _people(funded_org) if p[0] in {m[0] for m in people}] == people
    # A CSV row without a role gets the new default role.
    result = svc.invitation_bulk_create(org=funded_org, data=b"email,role\ncsv@example.com,\n", actor=owner)
    assert result.invited and Invitation.objects.get(email="csv@example.com").role == Role.MANAGER
