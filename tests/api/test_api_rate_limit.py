"""The per-key rate limit with the production cache: the statement that reads the key also counts the request
(apikeys/models.py, ApiKeyManager.authenticate), so the count must be exactly the one `core.ratelimit.hit` makes:
per key, only for a key that authenticates, exact under concurrency, and refusing with 429 and Retry-After."""

import threading
import time

import pytest
from django.db import connection
from django.utils import timezone

from apikeys.models import ApiKey
from config import settings as project_settings  # the module's own values, not this test run's overrides
from core import ratelimit
from tests.api.helpers import Api, give, issue_key
from tests.factories import MembershipFactory, ledger_snapshot

pytestmark = pytest.mark.django_db(transaction=True)  # no test transaction: the counts commit as in production

LIMIT = 3


@pytest.fixture(autouse=True)
def database_counters(settings):
    """The production default: counters in PostgreSQL (tests/conftest.py gives other tests locmem)."""
    settings.CACHES = project_settings.CACHES
    settings.API_RATE_LIMIT_PER_MINUTE = LIMIT
    with connection.cursor() as cursor:  # no model: the flush between tests leaves it as it is
        cursor.execute("DELETE FROM core_ratelimit_counter WHERE key LIKE 'rl:api-key:%%'")


@pytest.fixture(autouse=True)
def mid_window(monkeypatch):
    """The counters' clock stopped in the middle of a one-minute window, so no test's counts straddle two."""
    now = time.time() // 60 * 60 + 30
    monkeypatch.setattr(ratelimit.time, "time", lambda: now)


def _hits() -> dict[str, int]:
    with connection.cursor() as cursor:
        cursor.execute("SELECT key, hits FROM core_ratelimit_counter WHERE key LIKE 'rl:api-key:%%'")
        return dict(cursor.fetchall())


def test_the_lookup_counts_each_key_and_refuses_past_the_limit_with_nothing_charged(funded_org, owner):
    member = MembershipFactory(org=funded_org)
    give(funded_org, member, 10)
    api = Api(issue_key(funded_org, "charge", created_by=owner)[1])
    other = Api(issue_key(funded_org, "read", name="other")[1])
    assert [api.get("/me").status_code for _ in range(LIMIT)] == [200] * LIMIT
    assert sorted(_hits().values()) == [LIMIT]
    before = ledger_snapshot()
    refused = api.post("/usage", {"member_id": member.pk, "amount": 1}, key="over")
    assert refused.status_code == 429, refused.content
    body = refused.json()
    assert body["code"] == "rate_limited" and body["limit"] == LIMIT
    assert 1 <= int(refused["Retry-After"]) <= 61 and body["retry_after"] == int(refused["Retry-After"])
    assert ledger_snapshot() == before  # refused before the charge: nothing moved
    assert other.get("/me").status_code == 200  # the limit is per key
    assert sorted(_hits().values()) == [1, LIMIT + 1]


def test_a_wrong_secret_or_a_revoked_key_is_refused_and_not_counted(funded_org):
    key, token = issue_key(funded_org, "read")
    wrong = token[:-4] + ("aaaa" if not token.endswith("aaaa") else "bbbb")  # the key's lookup, another secret
    response = Api(wrong).get("/me")
    assert response.status_code == 401 and response.json()["code"] == "invalid_api_key"
    assert _hits() == {}
    ApiKey.objects.filter(pk=key.pk).update(revoked_at=timezone.now())
    response = Api(token).get("/me")
    assert response.status_code == 401 and response.json()["code"] == "api_key_revoked"
    assert _hits() == {}


def test_the_first_count_of_a_window_drops_counters_whose_windows_ended(funded_org):
    with connection.cursor() as cursor:
        cursor.execute("INSERT INTO core_ratelimit_counter (key, window_end, hits) VALUES ('rl:api-key:ended', 1, 5)")
    _key, token = issue_key(funded_org, "read")
    assert Api(token).get("/me").status_code == 200
    assert list(_hits().values()) == [1]  # the ended counter is gone, the new one counted once


def test_concurrent_requests_of_one_key_admit_exactly_the_limit(funded_org, settings):
    settings.API_RATE_LIMIT_PER_MINUTE = 10
    _key, token = issue_key(funded_org, "read")
    statuses: list[int] = []
    lock = threading.Lock()
    go = threading.Barrier(20)

    def call():
        try:
            go.wait()
            status = Api(token).get("/me").status_code
            with lock:
                statuses.append(status)
        finally:
            connection.close()

    threads = [threading.Thread(target=call) for _ in range(20)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(statuses) == [200] * 10 + [429] * 10
    assert list(_hits().values()) == [20]
