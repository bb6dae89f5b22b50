"""Emails 7 days before credits expire (expiry.services.announce_expiring): once per person, org and day."""

import pytest
from django.core import mail
from django.db import transaction

from expiry.models import ExpiryNotice
from expiry.services import announce_expiring
from expiry.tasks import announce_expiring_credits
from tests.expiry.helpers import give, grant, in_days
from tests.factories import MembershipFactory, UserFactory, fund

pytestmark = [pytest.mark.postgres, pytest.mark.django_db]


@pytest.fixture
def people(org):
    admin = MembershipFactory(org=org, role="admin", user=UserFactory(email="admin@example.com"))
    manager = MembershipFactory(org=org, role="manager", user=UserFactory(email="manager@example.com"))
    member = MembershipFactory(org=org, user=UserFactory(email="member@example.com"))
    return admin, manager, member


def _to():
    return sorted(m.to[0] for m in mail.outbox)


def test_owners_and_admins_hear_about_the_org_wallet_and_members_about_their_own(
    org, people, django_capture_on_commit_callbacks
):
    _admin, _manager, member = people
    grant(org, 1_250, days=7)
    give(org, member, 250)

    with django_capture_on_commit_callbacks(execute=True):
        announced = announce_expiring()

    assert announced.notices == 3
    assert _to() == ["admin@example.com", "member@example.com", "owner@example.com"]  # not the manager
    day = in_days(7)
    spelled = f"{day:%B} {day.day}, {day.year}"
    owner_mail = next(m for m in mail.outbox if m.to == ["owner@example.com"])
    assert owner_mail.subject == f"1,000 credits of Acme Quantum expire on {spelled}"
    assert f"1,000 credits ($10.00) in Acme Quantum's org wallet expire on {spelled}" in owner_mail.body
    assert f"/orgs/{org.slug}/billing/" in owner_mail.body
    member_mail = next(m for m in mail.outbox if m.to == ["member@example.com"])
    assert f"250 credits ($2.50) that Acme Quantum gave you expire on {spelled}" in member_mail.body
    assert "org wallet" not in member_mail.body
    notices = {(n.user.email, n.org_credits, n.own_credits, n.expires_on) for n in ExpiryNotice.objects.all()}
    assert notices == {
        ("owner@example.com", 1_000, 0, day),
        ("admin@example.com", 1_000, 0, day),
        ("member@example.com", 0, 250, day),
    }


def test_each_notice_is_sent_once(org, people, django_capture_on_commit_callbacks):
    grant(org, 100, days=3)
    with django_capture_on_commit_callbacks(execute=True):
        assert announce_expiring().notices == 2
    with django_capture_on_commit_callbacks(execute=True):
        assert announce_expiring().notices == 0
    assert _to() == ["admin@example.com", "owner@example.com"]


def test_only_credits_expiring_within_seven_days_and_not_today(org, people, django_capture_on_commit_callbacks):
    grant(org, 100, days=8)
    fund(org, 100)
    with django_capture_on_commit_callbacks(execute=True):
        assert announce_expiring().notices == 0
    assert mail.outbox == []

    # A day later the 8-day credits are 7 days away; announcing "as of" that day finds them.
    with django_capture_on_commit_callbacks(execute=True):
        assert announce_expiring(in_days(1)).notices == 2
    # On the expiry day itself there is nothing to announce (the expiry run takes them).
    assert announce_expiring(in_days(8)).notices == 0


def test_an_admin_who_also_holds_credits_gets_one_email_per_day(org, people, django_capture_on_commit_callbacks):
    admin, _manager, _member = people
    grant(org, 300, days=4)
    give(org, admin, 100)

    with django_capture_on_commit_callbacks(execute=True):
        announce_expiring()

    admin_mails = [m for m in mail.outbox if m.to == ["admin@example.com"]]
    assert len(admin_mails) == 1
    assert "300 credits of Acme Quantum" in admin_mails[0].subject
    assert "200 credits ($2.00) in Acme Quantum's org wallet" in admin_mails[0].body
    assert "100 credits ($1.00) that Acme Quantum gave you" in admin_mails[0].body


def test_two_expiry_days_are_two_emails(org, people, django_capture_on_commit_callbacks):
    grant(org, 100, days=2)
    grant(org, 100, days=6)
    with django_capture_on_commit_callbacks(execute=True):
        assert announce_expiring().notices == 4
    assert _to() == ["admin@example.com"] * 2 + ["owner@example.com"] * 2


def test_a_rolled_back_announcement_sends_nothing(org, people):
    grant(org, 100, days=2)
    with pytest.raises(RuntimeError), transaction.atomic():
        announce_expiring()
        raise RuntimeError("boom")
    assert mail.outbox == [] and ExpiryNotice.objects.count() == 0


def test_the_periodic_task_announces(org, people, django_capture_on_commit_callbacks):
    grant(org, 100, days=2)
    with django_capture_on_commit_callbacks(execute=True):
        result = announce_expiring_credits.enqueue().return_value
    assert result["notices"] == 2 and len(mail.outbox) == 2
