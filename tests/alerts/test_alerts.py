"""Low-balance alerts (issue 18): one email per crossing to every owner/admin (org rules) or to the member
(personal rules), hysteresis, the Balance card banner, bad input, access, and the query budget."""

import pytest
from django.core import mail
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django_tasks_db.models import DBTaskResult

from alerts import receivers
from alerts.evaluation import evaluate
from alerts.models import MAX_THRESHOLD, AlertRule, AlertState
from alerts.services import save_member_rule, save_org_rules
from alerts.tasks import sweep_alerts
from core import periodic
from tests.factories import MembershipFactory, OrgFactory, UserFactory, fund, ledger_snapshot
from wallets.models import BalanceWatch, CreditType, Wallet
from wallets.services import member_charge_usage, org_transfer_to_member
from wallets.signals import transfer_posted
from wallets.watches import _on_transfer_posted

pytestmark = pytest.mark.postgres


@pytest.fixture
def ct(db):
    return CreditType.objects.get(slug="org-allocated")


@pytest.fixture
def team(org):
    """Owner + one admin (told), one manager and one member (not told)."""
    return {
        "admin": MembershipFactory(org=org, role="admin", user=UserFactory(email="admin@example.com")),
        "manager": MembershipFactory(org=org, role="manager", user=UserFactory(email="manager@example.com")),
        "member": MembershipFactory(org=org, role="member", user=UserFactory(email="member@example.com")),
    }


def _give(org, membership, ct, amount):
    return org_transfer_to_member(org=org, membership_id=membership.pk, credit_type=ct, amount=amount)


def _recipients():
    return sorted(to for m in mail.outbox for to in m.to)


@pytest.mark.django_db(transaction=True)
def test_crossing_below_emails_each_owner_and_admin_once_then_again_only_after_going_back_above(org, owner, team, ct):
    fund(org, 1_000)
    save_org_rules(org=org, thresholds={None: 500}, actor=owner)
    assert mail.outbox == []  # set below the balance: armed, nothing sent
    rule = AlertRule.objects.get(org=org)
    assert rule.state == AlertState.ARMED and rule.last_balance == 1_000

    _give(org, team["member"], ct, 600)  # 1,000 -> 400: below 500
    assert _recipients() == ["admin@example.com", "owner@example.com"]  # not the manager, not the member
    [message, _] = mail.outbox
    assert "below 500 credits" in message.subject
    assert "400 credits ($4.00)" in message.body and "500 credits ($5.00)" in message.body
    rule.refresh_from_db()
    assert rule.state == AlertState.FIRED and rule.fired_at and rule.last_balance == 400

    _give(org, team["member"], ct, 100)  # further below: no second email
    _give(org, team["member"], ct, 100)
    assert len(mail.outbox) == 2

    fund(org, 300)  # 200 -> 500: at the threshold again, re-armed, no email
    rule.refresh_from_db()
    assert rule.state == AlertState.ARMED and len(mail.outbox) == 2

    _give(org, team["member"], ct, 1)  # 500 -> 499: below again, a second email to each
    assert len(mail.outbox) == 4
    assert _recipients() == ["admin@example.com"] * 2 + ["owner@example.com"] * 2


@pytest.mark.django_db(transaction=True)
def test_a_credit_type_rule_watches_only_that_type(org, owner, team, ct):
    fund(org, 1_000)
    fund(org, 1_000, credit_type="promo")
    promo = CreditType.objects.get(slug="promo")
    save_org_rules(org=org, thresholds={None: None, ct: 800, promo: None}, actor=owner)
    _give(org, team["member"], promo, 900)  # Promo falls; Org-allocated does not
    assert mail.outbox == []
    _give(org, team["member"], ct, 300)
    assert len(mail.outbox) == 2 and "Org-allocated balance" in mail.outbox[0].body


@pytest.mark.django_db(transaction=True)
def test_a_rolled_back_movement_sends_nothing(org, owner, team, ct):
    fund(org, 1_000)
    save_org_rules(org=org, thresholds={None: 500}, actor=owner)
    with pytest.raises(RuntimeError), transaction.atomic():
        _give(org, team["member"], ct, 900)
        raise RuntimeError("the caller's transaction fails after the movement")
    assert mail.outbox == []
    assert AlertRule.objects.get(org=org).state == AlertState.ARMED


@pytest.mark.django_db(transaction=True)
def test_a_threshold_set_above_the_balance_fires_once_at_once(org, owner, team):
    fund(org, 1_000)
    save_org_rules(org=org, thresholds={None: 2_000}, actor=owner)
    assert len(mail.outbox) == 2
    save_org_rules(org=org, thresholds={None: 2_000}, actor=owner)  # saved again unchanged: nothing new
    assert len(mail.outbox) == 2
    save_org_rules(org=org, thresholds={None: 3_000}, actor=owner)  # a new threshold re-arms: told once more
    assert len(mail.outbox) == 4


@pytest.mark.django_db(transaction=True)
def test_evaluation_is_idempotent_and_order_free(org, owner, team, ct):
    """Signals can arrive twice or late: evaluating again changes nothing; a stale "below" after the balance went
    back up re-arms instead of sending."""
    fund(org, 1_000)
    save_org_rules(org=org, thresholds={None: 500}, actor=owner)
    rule = AlertRule.objects.get(org=org)
    _give(org, team["member"], ct, 600)
    assert len(mail.outbox) == 2
    for _ in range(3):
        assert evaluate(rule.pk).emails == 0
    fund(org, 1_000)
    receivers.on_balance_crossed(None, purpose="alert", ref_id=rule.pk)  # a late "below" for the old movement
    assert len(mail.outbox) == 2
    assert AlertRule.objects.get(pk=rule.pk).state == AlertState.ARMED
    receivers.on_balance_crossed(None, purpose="auto_top_up", ref_id=rule.pk)  # another feature's watch: ignored
    assert evaluate(rule.pk + 10_000) is None  # a deleted rule: nothing to do


@pytest.mark.django_db(transaction=True)
def test_member_rule_emails_the_member_once(client, org, owner, team, ct):
    member = team["member"]
    fund(org, 1_000)
    _give(org, member, ct, 300)
    client.force_login(member.user)
    response = client.post(reverse("alerts:member"), {"threshold": "100"})
    assert response.status_code == 302
    assert mail.outbox == []
    page = client.get(reverse("wallet")).content.decode()
    assert 'data-testid="member-alert-armed"' in page and 'value="100"' in page

    member_charge_usage(org=org, membership_id=member.pk, amount=250)  # 300 -> 50
    assert _recipients() == ["member@example.com"]
    assert "your Default wallet" in mail.outbox[0].subject
    member_charge_usage(org=org, membership_id=member.pk, amount=10)
    assert len(mail.outbox) == 1
    page = client.get(reverse("wallet")).content.decode()
    assert "Your balance is below your alert threshold of 100 credits ($1.00)" in page

    assert client.post(reverse("alerts:member"), {"threshold": ""}).status_code == 302  # blank removes it
    assert not AlertRule.objects.filter(user=member.user).exists()
    assert not BalanceWatch.objects.filter(purpose="alert").exists()


def test_saving_keeps_one_watch_per_rule_and_blank_removes_both(org, owner, ct):
    save_org_rules(org=org, thresholds={None: 500, ct: 200}, actor=owner)
    rules = {r.credit_type_id: r for r in AlertRule.objects.filter(org=org)}
    watches = {(w.ref_id, w.credit_type_id, w.threshold) for w in BalanceWatch.objects.filter(purpose="alert")}
    assert watches == {(rules[None].pk, None, 500), (rules[ct.pk].pk, ct.pk, 200)}
    save_org_rules(org=org, thresholds={None: 700, ct: None}, actor=owner)
    assert list(BalanceWatch.objects.filter(purpose="alert").values_list("ref_id", "threshold")) == [
        (rules[None].pk, 700)
    ]
    assert list(AlertRule.objects.filter(org=org).values_list("threshold", flat=True)) == [700]
    save_member_rule(user=owner, threshold=5)
    assert BalanceWatch.objects.get(wallet=Wallet.objects.for_user(owner)).threshold == 5


# ---------------------------------------------------------------- pages


def test_settings_page_saves_and_shows_the_rules(client, org, owner, ct):
    fund(org, 1_000)
    client.force_login(owner)
    url = reverse("alerts:org_settings", args=[org.slug])
    assert client.get(url).status_code == 200
    response = client.post(url, {"total": "1,500", "type_org-allocated": "200", "type_promo": ""})
    assert response.status_code == 302
    assert sorted(AlertRule.objects.filter(org=org).values_list("threshold", flat=True)) == [200, 1_500]
    html = client.get(url).content.decode()
    assert 'value="1,500"' in html and 'value="200"' in html


def test_billing_page_links_to_the_settings_and_shows_the_banner_while_fired(client, org, owner, ct):
    fund(org, 1_000)
    client.force_login(owner)
    billing = reverse("billing:page", args=[org.slug])
    html = client.get(billing).content.decode()
    assert reverse("alerts:org_settings", args=[org.slug]) in html and "Low-balance alerts</a>: off" in html
    rule = AlertRule.objects.create(org=org, wallet=Wallet.objects.for_org(org), threshold=2_500)
    html = client.get(billing).content.decode()
    assert "low-balance-banner" not in html and "total below 2,500" in html
    evaluate(rule.pk)
    html = client.get(billing).content.decode()
    assert "Balance is below your alert threshold of 2,500 credits ($25.00)" in html
    card = client.get(reverse("billing:balance_card", args=[org.slug])).content.decode()
    assert "low-balance-banner" in card  # the card re-fetched after a movement has it too


def test_managers_see_neither_the_banner_nor_the_thresholds(client, org, manager_membership):
    fund(org, 100)
    rule = AlertRule.objects.create(org=org, wallet=Wallet.objects.for_org(org), threshold=2_500)
    evaluate(rule.pk)
    client.force_login(manager_membership.user)
    html = client.get(reverse("billing:page", args=[org.slug])).content.decode()
    assert "low-balance-banner" not in html and "Low-balance alerts" not in html
    assert client.get(reverse("alerts:org_settings", args=[org.slug])).status_code == 403


@pytest.mark.parametrize(
    ("value", "error"),
    [
        ("abc", "Enter a whole number of credits"),
        ("12.5", "Credits are whole numbers"),
        ("-5", "Enter an amount greater than zero."),
        ("0", "Enter an amount greater than zero."),
        (str(MAX_THRESHOLD + 1), "That amount is too large"),
        ("1e6", "Enter a whole number of credits"),
    ],
)
def test_bad_input_is_a_field_error_and_saves_nothing(client, org, owner, value, error):
    fund(org, 1_000)
    client.force_login(owner)
    before = ledger_snapshot()
    url = reverse("alerts:org_settings", args=[org.slug])
    response = client.post(url, {"total": "500", "type_org-allocated": value})
    assert response.status_code == 400
    html = response.content.decode()
    assert 'id="alerts_type_org-allocated_error"' in html and error in html
    assert 'id="alerts_total_error"' not in html
    assert not AlertRule.objects.exists() and not BalanceWatch.objects.exists()  # not even the valid field
    response = client.post(reverse("alerts:member"), {"threshold": value})
    assert response.status_code == 400 and error in response.content.decode()
    assert not AlertRule.objects.exists()
    assert ledger_snapshot() == before


def test_access_matrix_for_the_settings(client, org, owner, admin_membership, manager_membership, member_membership):
    url = reverse("alerts:org_settings", args=[org.slug])
    other = OrgFactory(name="Elsewhere", owner=UserFactory(email="elsewhere@example.com"))
    other_url = reverse("alerts:org_settings", args=[other.slug])
    expected = {owner: 200, admin_membership.user: 200, manager_membership.user: 403, member_membership.user: 403}
    for user, status in expected.items():
        client.force_login(user)
        assert client.get(url).status_code == status
        assert client.post(url, {"total": "10"}).status_code == (302 if status == 200 else status)
        assert client.get(other_url).status_code == 404  # another org's rules do not exist for them
        assert client.post(other_url, {"total": "10"}).status_code == 404
    assert list(AlertRule.objects.values_list("org_id", flat=True)) == [org.pk]  # saved by owner and admin only
    client.logout()
    assert client.get(url).status_code == 302


# ---------------------------------------------------------------- query budget


@pytest.mark.django_db(transaction=True)
def test_the_alert_check_adds_at_most_one_query_to_a_movement(settings, org, owner, ct):
    """The whole request path of a transfer (its commit and on-commit work included, database task queue): with
    alert rules present it costs at most one query more than the same transfer with the balance-watch detection
    disconnected. A movement that crosses no threshold costs nothing more (the ledger statement itself reads
    the watches); one that crosses a rule's threshold costs one INSERT, the alert task, after the commit."""
    settings.TASKS = {"default": {"BACKEND": "django_tasks_db.DatabaseBackend"}}
    fund(org, 100_000)
    members = [MembershipFactory(org=org) for _ in range(4)]
    save_org_rules(org=org, thresholds={None: 98_990, ct: 50_000}, actor=owner)
    for m in members:
        save_member_rule(user=m.user, threshold=1_000_000)  # watched wallets on both sides of the transfer
    DBTaskResult.objects.all().delete()

    def cost(membership, amount):
        with CaptureQueriesContext(connection) as queries:
            _give(org, membership, ct, amount)
        return len(queries)

    for m in members:  # every member has their pocket (its creation would cost queries) and statements are warm
        cost(m, 1)  # 99,996 left
    DBTaskResult.objects.all().delete()
    transfer_posted.disconnect(dispatch_uid="wallets.watches")
    try:
        without = [cost(members[1], 1), cost(members[2], 1_000)]  # 99,995, then 98,995: above 98,990
    finally:
        transfer_posted.connect(_on_transfer_posted, dispatch_uid="wallets.watches")
    assert without[0] == without[1]
    assert not DBTaskResult.objects.exists()
    quiet = cost(members[1], 1)  # 98,994: above every threshold
    crossing = cost(members[3], 10)  # 98,984: below 98,990
    assert list(DBTaskResult.objects.values_list("task_path", flat=True)) == ["alerts.tasks.evaluate_alert"]
    assert quiet - without[0] == 0
    assert crossing - without[0] == 1  # the alert task's INSERT, after the commit: the whole added cost


@pytest.mark.django_db(transaction=True)
def test_the_receiver_costs_one_insert_per_crossing(settings, org, owner):
    """On commit, a crossing costs the request one INSERT: the task row (database queue); emails come later."""
    settings.TASKS = {"default": {"BACKEND": "django_tasks_db.DatabaseBackend"}}
    with CaptureQueriesContext(connection) as queries:
        receivers.on_balance_crossed(None, purpose="alert", ref_id=1)
    assert len(queries) == 1 and queries[0]["sql"].upper().startswith("INSERT")


def _evaluate_all(org):
    """What the on-commit evaluation does (a test inside one transaction never commits)."""
    for rule_id in AlertRule.objects.filter(org=org).values_list("pk", flat=True):
        evaluate(rule_id)


def test_the_banner_costs_the_billing_page_one_query_whatever_the_rules(client, org, owner, ct):
    fund(org, 1_000)
    fund(org, 1_000, credit_type="promo")
    client.force_login(owner)
    url = reverse("billing:page", args=[org.slug])
    client.get(url)
    with CaptureQueriesContext(connection) as none:
        client.get(url)
    save_org_rules(org=org, thresholds={None: 5_000}, actor=owner)
    _evaluate_all(org)
    with CaptureQueriesContext(connection) as one:
        client.get(url)
    promo = CreditType.objects.get(slug="promo")
    save_org_rules(org=org, thresholds={None: 5_000, ct: 5_000, promo: 5_000}, actor=owner)
    _evaluate_all(org)
    with CaptureQueriesContext(connection) as three:
        html = client.get(url).content.decode()
    assert html.count('data-testid="low-balance-banner"') == 3
    assert len(none) == len(one) == len(three)
    assert sum("alerts_alertrule" in q["sql"] for q in three) == 1


def test_staff_see_rules_read_only_in_django_admin(client, org, owner):
    rule = AlertRule.objects.create(org=org, wallet=Wallet.objects.for_org(org), threshold=2_500)
    staff = UserFactory(email="alerts-staff@example.com", is_staff=True)
    staff.is_superuser = True
    staff.save()
    client.force_login(staff)
    listing = client.get(reverse("admin:alerts_alertrule_changelist"))
    assert listing.status_code == 200 and "2500" in listing.content.decode().replace(",", "")
    assert client.get(reverse("admin:alerts_alertrule_add")).status_code == 403  # saved only through the services
    assert client.post(reverse("admin:alerts_alertrule_delete", args=[rule.pk]), {"post": "yes"}).status_code == 403
    assert AlertRule.objects.filter(pk=rule.pk).exists()


@pytest.mark.django_db(transaction=True)
def test_the_sweep_catches_a_lost_signal_once_and_re_arms(org, owner, team, ct):
    """A crossing whose signal never became a task (the receiver disconnected stands in for a process that died
    between the movement's commit and the task's INSERT) is caught by the periodic sweep, once."""
    assert "alerts.tasks.sweep_alerts" in {p.name for p in periodic.registered()}
    fund(org, 1_000)
    save_org_rules(org=org, thresholds={None: 500}, actor=owner)
    receivers.disconnect()
    try:
        _give(org, team["member"], ct, 600)
    finally:
        receivers.connect()
    assert mail.outbox == []
    assert sweep_alerts.call() == {"evaluated": 1, "emails": 2}
    assert sweep_alerts.call() == {"evaluated": 0, "emails": 0}  # in step now: nothing to do, no second email
    assert len(mail.outbox) == 2
    receivers.disconnect()
    try:
        fund(org, 1_000)  # back above, signal lost too
    finally:
        receivers.connect()
    assert sweep_alerts.call() == {"evaluated": 1, "emails": 0}
    assert AlertRule.objects.get(org=org).state == AlertState.ARMED
