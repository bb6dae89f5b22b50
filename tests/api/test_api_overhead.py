"""What one API request costs beyond its own work: GET /me (the cheapest authenticated call), no session or
web middleware work on /api/, the per-key rate limit outside the charge's transaction, the connection pool,
and the statements of one usage charge with the production cache."""

import re

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import URLResolver, get_resolver

from apikeys.models import ApiKey
from config import settings as project_settings  # the module's own values, not this test run's overrides
from tests.api.helpers import Api, give, issue_key
from tests.factories import MembershipFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def member(funded_org):
    return MembershipFactory(org=funded_org)


@pytest.fixture
def charge_key(funded_org, owner):
    return issue_key(funded_org, "charge", name="jobs", created_by=owner)


@pytest.fixture
def database_counters(settings):
    """The production default: rate-limit counters in PostgreSQL (tests/conftest.py gives other tests locmem)."""
    settings.CACHES = project_settings.CACHES
    settings.API_RATE_LIMIT_PER_MINUTE = 1_000_000


def test_me_names_the_key_its_org_and_scope(funded_org, charge_key):
    key, token = charge_key
    response = Api(token).get("/me")
    assert response.status_code == 200, response.content
    assert response.json() == {
        "org": funded_org.slug,
        "org_name": funded_org.name,
        "key_name": "jobs",
        "key_prefix": key.display_prefix,
        "scope": "charge",
    }


def test_me_needs_a_valid_key(funded_org, charge_key):
    key, token = charge_key
    assert Api("crd_nope").get("/me").status_code == 401
    ApiKey.objects.filter(pk=key.pk).update(revoked_at=key.created_at)
    response = Api(token).get("/me")
    assert response.status_code == 401 and response.json()["code"] == "api_key_revoked"


@pytest.mark.django_db(transaction=True)
def test_me_costs_the_key_lookup_and_the_rate_limit_count_only(funded_org, charge_key, database_counters):
    _key, token = charge_key
    api = Api(token)
    api.get("/me")  # last_used_at is written once a minute
    with CaptureQueriesContext(connection) as ctx:
        assert api.get("/me").status_code == 200
    sql = [q["sql"] for q in ctx.captured_queries]
    assert len(sql) == 1, sql  # the key with its org, and the counter's upsert in the same statement
    assert "core_ratelimit_counter" in sql[0] and "billing_apikey" in sql[0], sql


def test_an_api_request_does_no_session_or_web_middleware_work(client, owner, charge_key):
    """A browser's session cookie sent to the API is not read: no django_session query, no cookie set, no
    request.session/user/messages/htmx; the security headers are still there, and pages keep their session."""
    _key, token = charge_key
    client.force_login(owner)  # the client now sends a session cookie, as a signed-in browser would
    with CaptureQueriesContext(connection) as ctx:
        response = client.get("/api/v1/me", HTTP_AUTHORIZATION=f"Bearer {token}")
    assert response.status_code == 200
    assert not any("django_session" in q["sql"] for q in ctx.captured_queries), ctx.captured_queries
    assert not response.cookies
    request = response.wsgi_request
    assert [name for name in ("session", "user", "_messages", "htmx") if hasattr(request, name)] == []
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["X-Frame-Options"] == "DENY"
    assert "Content-Security-Policy" in response.headers
    page = client.get("/")  # the same client on a page: its session and its user are there
    assert page.wsgi_request.user == owner and page.wsgi_request.session.session_key


@pytest.mark.django_db(transaction=True)  # no test transaction around it: its savepoints would be counted
def test_a_usage_charge_counts_its_rate_limit_outside_the_charge_transaction(
    funded_org, member, charge_key, database_counters
):
    """With the production cache (counters in PostgreSQL): as many statements as the pinned charge in test_api.py,
    the counter's upsert being made by the key's lookup, in autocommit before the charge's statement, so the
    counter's row lock is never held while the charge waits for its locks and its commit."""
    _key, token = charge_key
    api = Api(token)
    give(funded_org, member, 10)
    api.post("/usage", {"member_id": member.pk, "amount": 1}, key="warm")  # last_used_at is written once
    with CaptureQueriesContext(connection) as ctx:
        response = api.post("/usage", {"member_id": member.pk, "amount": 2}, key="c-1")
    assert response.status_code == 201, response.content
    sql = [q["sql"] for q in ctx.captured_queries]
    # key+org with the rate-limit count, the ledger's drawn statement (the charge, its usage charge row and the
    # key's record with its answer); each its own transaction
    assert len(sql) == 2, sql
    assert "core_ratelimit_counter" in sql[0] and "BEGIN" not in sql and "COMMIT" not in sql, sql
    assert "WITH m AS MATERIALIZED" in sql[1] and "INSERT INTO billing_idempotencyrecord" in sql[1], sql


@pytest.mark.django_db(transaction=True)
def test_pooled_connections_keep_the_ledger_prepared_and_django_unprepared(funded_org, member, charge_key):
    """Connections come from the pool (config/settings.py), keep the ledger's prepared statements from one
    request to the next, and the threshold that enables them never makes Django's own queries prepared."""
    if project_settings.DB_POOL:  # the default; DB_POOL=false runs this test on persistent connections
        assert connection.pool is not None and connection.settings_dict["CONN_MAX_AGE"] == 0
    else:
        assert connection.pool is None
    _key, token = charge_key
    api = Api(token)
    give(funded_org, member, 10)
    for i in range(3):  # each request borrows a connection and gives it back
        assert api.post("/usage", {"member_id": member.pk, "amount": 1}, key=f"p-{i}").status_code == 201
    for _ in range(10):  # far past psycopg's default threshold (5)
        list(ApiKey.objects.filter(name="jobs").values_list("pk", flat=True))
    with connection.cursor() as cursor:
        cursor.execute("SELECT statement FROM pg_prepared_statements")
        prepared = [row[0] for row in cursor.fetchall()]
    assert any("billing_idempotencyrecord" in s for s in prepared), prepared  # the claim, prepared once
    assert not any("apikeys_apikey" in s and "name" in s for s in prepared), prepared
    assert connection.connection.prepare_threshold == 2**31 - 1


@pytest.mark.django_db(transaction=True)
def test_charges_work_with_prepared_statements_off(funded_org, member, charge_key, settings):
    settings.LEDGER_PREPARED_STATEMENTS = False
    connection.close()
    connection.close_pool()  # fresh connections: none keeps a threshold set while the setting was on
    _key, token = charge_key
    api = Api(token)
    give(funded_org, member, 10)
    for i in range(3):
        assert api.post("/usage", {"member_id": member.pk, "amount": 1}, key=f"np-{i}").status_code == 201
    assert connection.connection.prepare_threshold is None
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM pg_prepared_statements")
        assert cursor.fetchone() == (0,)


def _paths_a_pattern_serves(patterns, prefix=""):
    """Every URL pattern under `patterns` as (its whole regex, its name), includes walked."""
    for pattern in patterns:
        whole = prefix + pattern.pattern.regex.pattern.lstrip("^")
        if isinstance(pattern, URLResolver):
            yield from _paths_a_pattern_serves(pattern.url_patterns, whole.rstrip("$").removesuffix("\\Z"))
        else:
            yield whole, pattern.name


def test_the_api_resolves_first_and_no_page_serves_an_api_path():
    """config/urls.py puts the API's patterns first (resolving past every page's cost 0.1 ms a request), which
    changes nothing only while no other pattern could serve a path under /api/."""
    first, second = get_resolver().url_patterns[:2]
    assert first.pattern.describe().startswith("'api/v1/'") and second.name == "api_unknown"
    others = list(_paths_a_pattern_serves(get_resolver().url_patterns[2:]))
    assert len(others) > 50  # the pages and the admin were walked, and their regexes match their paths:
    assert [name for regex, name in others if re.match(regex, "orgs/acme/settings/api-keys/")] == ["api_keys"]
    for path in ("api/v1/usage", "api/v1/me", "api/v2/x", "api/"):
        assert [name for regex, name in others if re.match(regex, path)] == [], path
