"""Settings > API keys: owner and admins create keys (shown once) and revoke them; others cannot."""

import pytest
from django.urls import reverse

from apikeys.models import ApiKey
from tests.api.helpers import Api, issue_key
from tests.factories import MembershipFactory

pytestmark = pytest.mark.django_db


def test_admin_creates_a_key_shown_once_and_stored_hashed(client, funded_org, admin_membership):
    client.force_login(admin_membership.user)
    url = reverse("billing:api_keys", args=[funded_org.slug])
    assert client.get(url).status_code == 200
    response = client.post(
        reverse("billing:api_key_create", args=[funded_org.slug]),
        {"name": "Job runner", "scope": "charge", "request_key": "f1"},
    )
    assert response.status_code == 201
    assert "no-store" in response["Cache-Control"] or "no-cache" in response["Cache-Control"]
    html = response.content.decode()
    key = ApiKey.objects.get(org=funded_org)
    token = html.split('id="new-token" class="token" type="text" readonly value="')[1].split('"')[0]
    assert token.startswith(key.display_prefix + "_")
    assert key.name == "Job runner" and key.scope == "charge" and key.created_by == admin_membership.user
    assert ApiKey.objects.find_by_token(token) == key
    assert Api(token).get("/balance").status_code == 200
    again = client.get(url).content.decode()
    assert token not in again  # shown once
    assert key.display_prefix in again and "Never" not in again  # it was just used


def test_resubmitting_the_create_form_makes_one_key_and_never_reshows_the_secret(client, funded_org, owner):
    client.force_login(owner)
    url = reverse("billing:api_key_create", args=[funded_org.slug])
    first = client.post(url, {"name": "CI", "scope": "read", "request_key": "same-form"})
    assert first.status_code == 201
    again = client.post(url, {"name": "CI", "scope": "read", "request_key": "same-form"}, follow=True)
    html = again.content.decode()
    assert "already created by this form" in html and 'id="new-token"' not in html
    assert ApiKey.objects.filter(org=funded_org).count() == 1


def test_blank_name_is_refused_and_creates_nothing(client, funded_org, owner):
    client.force_login(owner)
    response = client.post(
        reverse("billing:api_key_create", args=[funded_org.slug]), {"name": "  ", "scope": "read", "request_key": "f2"}
    )
    assert response.status_code == 422
    assert not ApiKey.objects.exists()
    response = client.post(
        reverse("billing:api_key_create", args=[funded_org.slug]), {"name": "x", "scope": "god", "request_key": "f3"}
    )
    assert response.status_code == 422
    assert not ApiKey.objects.exists()


def test_revoke_stops_the_key_and_shows_it_revoked(client, funded_org, owner):
    key, token = issue_key(funded_org, "read", name="CI")
    client.force_login(owner)
    response = client.post(reverse("billing:api_key_revoke", args=[funded_org.slug, key.pk]), follow=True)
    assert "Revoked “CI”" in response.content.decode()
    key.refresh_from_db()
    assert key.revoked_at is not None and key.revoked_by == owner
    assert Api(token).get("/balance").status_code == 401


def test_managers_members_and_outsiders_cannot_manage_keys(client, funded_org, manager_membership, other_org):
    key, _ = issue_key(funded_org, "read")
    member = MembershipFactory(org=funded_org)
    for user, status in [(manager_membership.user, 403), (member.user, 403), (other_org.memberships.get().user, 404)]:
        client.force_login(user)
        assert client.get(reverse("billing:api_keys", args=[funded_org.slug])).status_code == status
        assert (
            client.post(
                reverse("billing:api_key_create", args=[funded_org.slug]), {"name": "x", "scope": "read"}
            ).status_code
            == status
        )
        assert client.post(reverse("billing:api_key_revoke", args=[funded_org.slug, key.pk])).status_code == status
    key.refresh_from_db()
    assert key.revoked_at is None and ApiKey.objects.count() == 1


def test_an_admin_cannot_revoke_another_orgs_key(client, funded_org, owner, other_org):
    theirs, token = issue_key(other_org, "read")
    client.force_login(owner)
    client.post(reverse("billing:api_key_revoke", args=[funded_org.slug, theirs.pk]))
    theirs.refresh_from_db()
    assert theirs.revoked_at is None
    assert Api(token).get("/balance").status_code == 200


def test_sidebar_links_api_keys_for_owner_and_admins_only(client, funded_org, owner, manager_membership):
    client.force_login(owner)
    client.post(reverse("workspace_switch"), {"workspace": funded_org.slug})
    assert "API keys</a>" in client.get(reverse("billing:page", args=[funded_org.slug])).content.decode()
    client.force_login(manager_membership.user)
    client.post(reverse("workspace_switch"), {"workspace": funded_org.slug})
    assert "API keys</a>" not in client.get(reverse("billing:page", args=[funded_org.slug])).content.decode()


def test_api_keys_page_query_count_is_flat(client, funded_org, owner, django_assert_num_queries):
    for i in range(20):
        issue_key(funded_org, "read", name=f"k{i}", created_by=owner)
    client.force_login(owner)
    url = reverse("billing:api_keys", args=[funded_org.slug])
    client.get(url)
    with django_assert_num_queries(4):  # session, user, workspaces (sidebar + membership), keys with creators
        assert client.get(url).status_code == 200


def test_django_admin_lists_keys_without_the_secret(admin_client, funded_org):
    key, token = issue_key(funded_org, "charge", name="Runner")
    html = admin_client.get(reverse("admin:apikeys_apikey_changelist")).content.decode()
    assert "Runner" in html and key.display_prefix in html
    detail = admin_client.get(reverse("admin:apikeys_apikey_change", args=[key.pk])).content.decode()
    assert token.split("_", 2)[2] not in detail and key.secret_hash not in detail
