"""A key lives as long as its creator's membership: removing the creator revokes their keys in the same
transaction, so a departed person can neither use a key they saw nor be named as the actor of new transfers.
The removal confirm warns first, the flash names the keys, the API keys page says why each was revoked."""

import importlib
import re

import pytest
from django.apps import apps
from django.test import Client
from django.urls import reverse

from apikeys.models import ApiKey
from members import services as svc
from orgs.models import Membership, MembershipStatus
from tests.api.helpers import Api, give, issue_key
from tests.factories import MembershipFactory, UserFactory, ledger_snapshot
from wallets.models import Transfer

pytestmark = pytest.mark.django_db


@pytest.fixture
def creator(funded_org):
    return MembershipFactory(org=funded_org, role="admin", user=UserFactory(email="leaver@example.com"))


def _remove_from_page(org, owner, membership):
    page = Client()
    page.force_login(owner)
    return page, page.post(reverse("members:remove", args=[org.slug, membership.pk]), follow=True)


def test_removing_the_creator_revokes_their_keys_then_a_transfer_with_the_key_is_refused(
    funded_org, owner, creator, member_membership
):
    _, token = issue_key(funded_org, "transfer", name="Payroll sync", created_by=creator.user)
    api = Api(token)
    before_ok = api.post("/transfers", {"members": [member_membership.pk], "amount": 5}, key="before")
    assert before_ok.status_code == 201
    assert Transfer.objects.get(pk=before_ok.json()["transfer_id"]).actor == creator.user  # while a member

    page, removed = _remove_from_page(funded_org, owner, creator)
    flash = removed.content.decode()
    assert "leaver@example.com was removed" in flash
    assert "API keys they created, now revoked: “Payroll sync”" in flash and "401" in flash

    before = ledger_snapshot()
    refused = api.post("/transfers", {"members": [member_membership.pk], "amount": 5}, key="after")
    assert refused.status_code == 401 and refused.json()["code"] == "api_key_revoked"
    assert ledger_snapshot() == before
    assert not Transfer.objects.filter(actor=creator.user).exclude(pk=before_ok.json()["transfer_id"]).exists()

    key = ApiKey.objects.get(name="Payroll sync")
    assert key.revoked_at is not None and key.revoked_reason == ApiKey.REVOKED_CREATOR_REMOVED
    keys_page = page.get(reverse("billing:api_keys", args=[funded_org.slug])).content.decode()
    row = re.search(r'<tr data-testid="api-key-row">\s*<td[^>]*>Payroll sync</td>.*?</tr>', keys_page, re.S).group(0)
    assert "Revoked" in row and "leaver@example.com was removed from the org" in row
    assert 'data-testid="keys-lifetime"' in keys_page


def test_removing_the_creator_stops_usage_charges_with_their_key(funded_org, owner, creator, member_membership):
    give(funded_org, member_membership, 100)
    _, token = issue_key(funded_org, "charge", created_by=creator.user)
    api = Api(token)
    assert api.post("/usage", {"member_id": member_membership.pk, "amount": 1}, key="u1").status_code == 201
    svc.member_remove(org=funded_org, membership_id=creator.pk, actor=owner)
    before = ledger_snapshot()
    refused = api.post("/usage", {"member_id": member_membership.pk, "amount": 1}, key="u2")
    assert refused.status_code == 401 and refused.json()["code"] == "api_key_revoked"
    assert ledger_snapshot() == before


def test_other_peoples_keys_and_other_orgs_keep_working(funded_org, other_org, owner, creator, member_membership):
    _, owners_key = issue_key(funded_org, "read", created_by=owner)
    elsewhere = MembershipFactory(org=other_org, user=creator.user, role="admin")
    _, their_other_org_key = issue_key(other_org, "read", created_by=elsewhere.user)
    _, revoked = issue_key(funded_org, "read", created_by=creator.user)
    svc.member_remove(org=funded_org, membership_id=creator.pk, actor=owner)
    assert Api(owners_key).get("/balance").status_code == 200
    assert Api(their_other_org_key).get("/balance").status_code == 200  # still a member there
    assert Api(revoked).get("/balance").status_code == 401


def test_the_confirm_warns_which_keys_will_stop(funded_org, owner, creator):
    issue_key(funded_org, "transfer", name="Nightly top-up", created_by=creator.user)
    old, _ = issue_key(funded_org, "read", name="Old", created_by=creator.user)
    ApiKey.objects.filter(pk=old.pk).update(revoked_at=old.created_at)  # revoked by hand earlier: not listed
    page = Client()
    page.force_login(owner)
    confirm = page.get(reverse("members:remove", args=[funded_org.slug, creator.pk]), headers={"HX-Request": "true"})
    warning = re.search(r'data-testid="remove-revokes-keys">(.*?)</p>', confirm.content.decode(), re.S).group(1)
    assert "“Nightly top-up”" in warning and "Old" not in warning and "401" in warning
    assert ApiKey.objects.get(name="Nightly top-up").is_active  # the confirm changes nothing


def test_a_refused_removal_revokes_nothing(funded_org, owner):
    _, token = issue_key(funded_org, "read", created_by=owner)
    owner_membership = Membership.objects.get(org=funded_org, user=owner)
    with pytest.raises(svc.MemberError):
        svc.member_remove(org=funded_org, membership_id=owner_membership.pk, actor=owner)
    assert Api(token).get("/balance").status_code == 200


def test_removal_from_django_admin_revokes_too(funded_org, creator):
    staff = UserFactory(email="staff@example.com", is_staff=True)
    staff.is_superuser = True
    staff.save()
    _, token = issue_key(funded_org, "read", created_by=creator.user)
    admin = Client()
    admin.force_login(staff)
    admin.post(
        reverse("admin:orgs_membership_changelist"),
        {"action": "remove_members", "_selected_action": [creator.pk]},
    )
    assert Membership.objects.get(pk=creator.pk).status == MembershipStatus.REMOVED
    assert Api(token).get("/balance").status_code == 401


def test_the_migration_revokes_keys_of_people_removed_before_it(funded_org, owner, creator):
    """Keys whose creator was removed before this rule existed are revoked by the migration that adds it."""
    _, token = issue_key(funded_org, "read", created_by=creator.user)
    _, kept_token = issue_key(funded_org, "read", created_by=owner)
    Membership.objects.filter(pk=creator.pk).update(status=MembershipStatus.REMOVED)  # the old way: no signal
    assert Api(token).get("/balance").status_code == 200
    migration = importlib.import_module("apikeys.migrations.0002_apikey_revoked_reason")
    migration.revoke_keys_of_removed_creators(apps, None)
    assert Api(token).get("/balance").status_code == 401
    assert Api(kept_token).get("/balance").status_code == 200
