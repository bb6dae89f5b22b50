"""`manage.py seed_demo`: the README's demo org, logins and figures, and a second run that changes nothing."""

import re
from collections import Counter
from datetime import timedelta
from io import StringIO

import pytest
from django.core import mail
from django.core.management import call_command
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from alerts.models import AlertRule
from credit_requests.models import CreditRequest
from members.services import returnable_credits
from orgs.models import Invitation, MemberDefaults, Membership, Organization, User
from purchases.models import Purchase, PurchaseStatus
from reporting.chart import balance_chart
from schedules.models import Schedule, ScheduleRun
from tests.factories import ledger_snapshot
from wallets.models import Entry, Transfer, TransferKind, Wallet
from wallets.selectors import ledger_problems, wallet_balance

pytestmark = pytest.mark.django_db

# README "Demo logins": password `demo` for all of them.
ROLES = {
    "admin@example.com": "owner",
    "alice@example.com": "admin",
    "bob@example.com": "manager",
    "carol@example.com": "member",
    "dave@example.com": "member",
    "erin@example.com": "member",
}


def _seed() -> str:
    out = StringIO()
    call_command("seed_demo", stdout=out)
    return out.getvalue()


def _people():
    """Users and memberships, everything a re-run could duplicate or alter."""
    users = sorted(User.objects.values_list("email", "name", "is_staff", "is_superuser", "is_active", "password"))
    memberships = sorted(
        Membership.objects.values_list("org__name", "user__email", "role", "status", "has_seat", "joined_at")
    )
    orgs = sorted(Organization.objects.values_list("name", "slug", "seats"))
    return users, memberships, orgs


def _domain():
    """The rows the seeded history leaves besides the ledger: requests, invitations, member defaults, seats."""
    return (
        sorted(
            CreditRequest.objects.values_list(
                "pk", "requester__email", "amount", "status", "granted_amount", "decision_reason", "transfer_id"
            )
        ),
        sorted(Invitation.objects.values_list("pk", "email", "status", "credit_allocation", "accepted_at")),
        sorted(Purchase.objects.values_list("pk", "status", "amount_cents", "credits", "transfer_id")),
        sorted(
            MemberDefaults.objects.values_list(
                "org_id", "seat_assignment_credits", "default_credit_allocation", "updated_at"
            )
        ),
        sorted(Membership.objects.values_list("pk", "seat_assignments", "removals", "removed_at", "notice")),
        sorted(AlertRule.objects.values_list("pk", "org_id", "credit_type_id", "threshold", "state")),
        sorted(Schedule.objects.values_list("pk", "name", "amount", "next_period_start", "status")),
    )


def _by_type(wallet) -> dict[str, int]:
    return {b.credit_type.slug: b.balance for b in wallet_balance(wallet).by_type}


def test_seed_twice_leaves_exactly_the_same_ledger_and_people():
    _seed()
    ledger, people, domain = ledger_snapshot(), _people(), _domain()
    transfers = sorted(Transfer.objects.values_list("pk", "kind", "org_id", "amount", "idempotency_key", "created_at"))
    _seed()
    assert ledger_snapshot() == ledger
    assert _people() == people
    assert _domain() == domain
    assert (
        sorted(Transfer.objects.values_list("pk", "kind", "org_id", "amount", "idempotency_key", "created_at"))
        == transfers
    )
    assert ledger_problems() == []


def test_seed_creates_the_readme_logins_and_roles():
    output = _seed()
    org = Organization.objects.get(name="Quantum Lab")
    roles = dict(Membership.objects.filter(org=org, status="active").values_list("user__email", "role"))
    assert roles == ROLES
    for email in ROLES:
        user = User.objects.get(email=email)
        assert user.check_password("demo"), email
        assert email in output
        assert Wallet.objects.for_user(user).name == "Default wallet"
    owner = User.objects.get(email="admin@example.com")
    assert owner.is_staff and owner.is_superuser  # "Owner (and Django staff)"
    assert not User.objects.filter(email__in=list(ROLES)[1:], is_staff=True).exists()


def test_seed_produces_the_readme_balances_through_the_ledger():
    _seed()
    org = Organization.objects.get(name="Quantum Lab")
    assert _by_type(Wallet.objects.for_org(org)) == {"org-allocated": 50_000, "promo": 5_000}
    # "A few past movements of each kind", so the Transactions page and the wallets show what the app does.
    kinds = Counter(Transfer.objects.filter(org=org).values_list("kind", flat=True))
    assert kinds == {
        TransferKind.PURCHASE: 3,
        TransferKind.PROMO_GRANT: 2,
        TransferKind.TRANSFER: 3,
        TransferKind.BULK_TRANSFER: 1,
        TransferKind.REQUEST_APPROVAL: 1,
        TransferKind.SEAT_CREDITS: 1,
        TransferKind.USAGE: 1,
        TransferKind.DEFAULT_ALLOCATION: 1,
        TransferKind.INVITE_ALLOCATION: 1,
        TransferKind.RETURN: 1,
    }
    given = {
        email: _by_type(Wallet.objects.for_user(User.objects.get(email=email)))
        for email in (
            "alice@example.com",
            "carol@example.com",
            "dave@example.com",
            "erin@example.com",
            "frank@example.com",
        )
    }
    assert given == {
        "alice@example.com": {"org-allocated": 1_500, "promo": 0},
        # 1,000 + 250 monthly + 250 approved + 200 seat - 700 usage: the browser tests' "Carol has 1,000".
        "carol@example.com": {"org-allocated": 1_000, "promo": 0},
        "dave@example.com": {"org-allocated": 250, "promo": 1_000},
        "erin@example.com": {"org-allocated": 250, "promo": 0},
        "frank@example.com": {"org-allocated": 0, "promo": 0},  # all of it returned
    }
    # Credits came in from the outside (Stripe, Promotions) and Carol's usage went out to Usage.
    external = Counter(
        Entry.objects.filter(transfer__org=org, wallet__kind="external").values_list("wallet__code", "amount")
    )
    assert external == {
        ("stripe", -40_000): 1,
        ("stripe", -12_500): 1,
        ("stripe", -1_200): 1,
        ("promotions", -4_500): 1,
        ("promotions", -1_500): 1,  # the conference promo, which expires in 20 days
        ("usage", 700): 1,
    }
    assert ledger_problems() == []


def test_seed_history_goes_through_the_services_once_each():
    _seed()
    org = Organization.objects.get(name="Quantum Lab")
    owner = User.objects.get(email="admin@example.com")

    bulk = Transfer.objects.get(org=org, kind=TransferKind.BULK_TRANSFER)
    assert (bulk.memo, bulk.amount, bulk.actor) == ("Monthly allocation", 750, owner)
    assert sorted(Entry.objects.filter(transfer=bulk, amount__gt=0).values_list("wallet__user__email", "amount")) == [
        ("carol@example.com", 250),
        ("dave@example.com", 250),
        ("erin@example.com", 250),
    ]

    requests = {r.requester.email: r for r in CreditRequest.objects.filter(org=org).select_related("requester")}
    assert set(requests) == {"carol@example.com", "dave@example.com", "erin@example.com"}
    carol, dave, erin = requests["carol@example.com"], requests["dave@example.com"], requests["erin@example.com"]
    assert (carol.status, carol.amount, carol.granted_amount) == ("approved", 400, 250)
    assert carol.transfer.kind == TransferKind.REQUEST_APPROVAL and carol.transfer.amount == 250
    assert carol.transfer.idempotency_key == f"request:{carol.pk}"
    assert (dave.status, dave.decision_reason, dave.transfer) == ("rejected", "Budget exhausted", None)
    assert erin.status == "pending"  # the Credit Requests tab's badge

    defaults = MemberDefaults.objects.get(org=org)
    assert (defaults.seat_assignment_credits, defaults.default_credit_allocation) == (200, 100)
    seated = Membership.objects.filter(org=org, has_seat=True)
    assert [m.user.email for m in seated] == ["carol@example.com"]
    seat = Transfer.objects.get(org=org, kind=TransferKind.SEAT_CREDITS)
    assert (seat.amount, seat.idempotency_key) == (200, f"seat:{seated.get().pk}:1")

    usage = Transfer.objects.get(org=org, kind=TransferKind.USAGE)
    assert (usage.amount, usage.memo) == (700, "Simulator runs")
    assert Entry.objects.get(transfer=usage, amount__lt=0).wallet.user.email == "carol@example.com"

    # Frank joined by invitation (default 100 + invite 400) and was removed: one Return of 500.
    frank = Membership.objects.select_related("user").get(org=org, user__email="frank@example.com")
    assert frank.status == "removed" and frank.removals == 1
    invitation = Invitation.objects.get(org=org, email="frank@example.com")
    assert (invitation.status, invitation.credit_allocation) == ("accepted", 400)
    assert Transfer.objects.get(org=org, kind=TransferKind.DEFAULT_ALLOCATION).amount == 100
    assert Transfer.objects.get(org=org, kind=TransferKind.INVITE_ALLOCATION).amount == 400
    back = Transfer.objects.get(org=org, kind=TransferKind.RETURN)
    assert (back.amount, back.idempotency_key) == (500, f"return:{frank.pk}:1")
    assert returnable_credits(org=org, user=frank.user) == 0
    assert ledger_problems() == []


@pytest.mark.django_db(transaction=True)  # the services' emails go out on commit: let the seed really commit
def test_former_member_is_not_a_login_and_nobody_is_emailed():
    output = _seed()
    frank = User.objects.get(email="frank@example.com")
    assert not frank.has_usable_password()
    assert "frank@example.com" not in output
    assert mail.outbox == []  # the seeded history is quiet: no request, decision or invitation emails


def test_balance_card_shows_the_readme_figures():
    """README: sign in as admin@example.com, Quantum Lab, Billing: 55,000 credits (50,000 Org-allocated, 5,000 Promo)."""
    _seed()
    org = Organization.objects.get(name="Quantum Lab")
    client = Client()
    client.force_login(User.objects.get(email="admin@example.com"))
    html = client.get(reverse("billing:page", args=[org.slug])).content.decode()
    card = re.search(r'<section id="balance-card".*?</section>', html, re.S).group(0)
    text = re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", card))
    assert re.search(r'data-testid="org-balance-total">55,000<', card)
    assert "Org-allocated 50,000" in text
    assert "Promo 5,000" in text
    # The conference promo's 1,500 credits expire 20 days after the seed ran (docs/expiry.md).
    day = timezone.localdate() + timedelta(days=20)
    assert f"1,500 credits ($15.00) expire on {day:%b} {day.day}, {day.year}" in text


def test_seeded_purchases_are_listed_as_paid_and_linked_to_their_transfers(client):
    """The Credits tab's Purchases list agrees with Transactions: each seeded purchase transfer has one Paid
    Purchase row (dollars at CREDITS_PER_USD), shown with its amount; the rows move no credits."""
    _seed()
    org = Organization.objects.get(name="Quantum Lab")
    purchases = Transfer.objects.filter(org=org, kind=TransferKind.PURCHASE)
    rows = Purchase.objects.filter(org=org)
    assert sorted(rows.values_list("transfer_id", "credits", "amount_cents", "status")) == sorted(
        (t.pk, t.amount, t.amount, PurchaseStatus.PAID) for t in purchases
    )
    assert sorted(rows.values_list("credits", flat=True)) == [1_200, 12_500, 40_000]
    client.force_login(User.objects.get(email="admin@example.com"))
    page = client.get(reverse("billing:purchases", args=[org.slug])).content.decode()
    assert "No purchases yet" not in page
    assert "$400.00" in page and "40,000" in page and "Paid" in page


def test_seeded_history_is_spread_over_the_past_90_days_oldest_first():
    """Issue 17: the Billing chart tells a story: purchases, transfers and usage on many days of the last 90,
    ids in time order, nothing in the future; the Credit Requests badge's request is recent."""
    _seed()
    org = Organization.objects.get(name="Quantum Lab")
    now = timezone.now()
    transfers = list(Transfer.objects.filter(org=org).order_by("id").values_list("kind", "created_at"))
    times = [t for _, t in transfers]
    assert times == sorted(times)
    assert all(now - timedelta(days=90) <= t < now for t in times)
    days = {timezone.localdate(t) for t in times}
    assert len(days) >= 10
    for kind in (TransferKind.PURCHASE, TransferKind.TRANSFER, TransferKind.USAGE):
        assert len({timezone.localdate(t) for k, t in transfers if k == kind}) == sum(k == kind for k, _ in transfers)
    assert set(Entry.objects.filter(transfer__org=org).values_list("created_at", flat=True)) <= set(times)
    erin = CreditRequest.objects.get(org=org, requester__email="erin@example.com")
    assert now - timedelta(days=3) < erin.created_at < now
    wallet = Wallet.objects.for_org(org)
    chart = balance_chart(wallet, wallet_balance(wallet).by_type, days=90)
    assert len(set(chart.totals)) >= 6  # the balance changes on many days of the range
    assert chart.totals[-1] == 55_000
    assert ledger_problems() == []


def test_seed_sets_up_an_alert_and_a_schedule_that_move_nothing_yet():
    """`make run` shows what keeps the pool full: a low-balance alert (armed: 55,000 is above 10,000, nobody is
    emailed) and the Monthly allocation as a schedule whose first run is the 1st of next month."""
    _seed()
    org = Organization.objects.get(name="Quantum Lab")
    rule = AlertRule.objects.get(org=org)
    assert (rule.credit_type_id, rule.threshold, rule.state) == (None, 10_000, "armed")
    schedule = Schedule.objects.get(org=org)
    today = timezone.localdate()
    assert (schedule.name, schedule.amount, schedule.day_of_month) == ("Monthly allocation", 100, 1)
    assert schedule.next_period_start == (today.replace(day=1) + timedelta(days=32)).replace(day=1)
    assert not ScheduleRun.objects.exists()
    assert not Transfer.objects.filter(kind=TransferKind.SCHEDULED_ALLOCATION).exists()
    assert mail.outbox == []
