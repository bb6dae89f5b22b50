"""Read replica (core/replica.py): which alias each report reads, read-your-writes pinning, and the fallback to
the primary when the replica is down, lagging or killed mid-read.

The "replica" alias of the test settings mirrors the test database (its own connection, so the data of these
tests is committed: transactional tests), with replica reads off unless a test turns them on.
"""

import json
import logging
import os
import socket
import subprocess
import sys
import uuid
from contextlib import contextmanager
from pathlib import Path

import pytest
from django.db import connections
from django.test import RequestFactory
from django.urls import reverse

from core import replica
from reporting.export import export_csv
from reporting.filters import TransactionFilter
from reporting.queries import transactions_page
from tests.factories import MembershipFactory, UserFactory
from wallets.models import CreditType
from wallets.services import org_transfer_to_member

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.django_db(transaction=True, databases=["default", "replica"])


@pytest.fixture(autouse=True)
def _replica_reads(settings):
    """Replica reads on, a fresh health state before and after each test."""
    settings.REPLICA_READS = True
    settings.REPLICA_CHECK_SECONDS = 60  # one check per test unless a test says otherwise
    replica._health.reset()
    yield
    replica._health.reset()
    connections["replica"].close()


@pytest.fixture
def moved(funded_org, owner):
    """A transfer to a member, so the list has two rows (the purchase and the transfer)."""
    alice = MembershipFactory(org=funded_org, user=UserFactory(email="alice@example.com"))
    ct = CreditType.objects.get(slug="org-allocated")
    org_transfer_to_member(org=funded_org, membership_id=alice.pk, credit_type=ct, amount=300, actor=owner, memo="Q3")
    return alice


@pytest.fixture
def closed_port():
    """A local TCP port nothing listens on: connecting is refused at once."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return port


@pytest.fixture
def replica_down(closed_port):
    """Point the replica alias at a closed port (a real refused connection), then put it back."""
    conn = connections["replica"]
    conn.close()
    saved = conn.settings_dict["PORT"]
    conn.settings_dict["PORT"] = str(closed_port)
    yield
    conn.close()
    conn.settings_dict["PORT"] = saved


def _transfer_queries(captured) -> list[str]:
    return [q["sql"] for q in captured.captured_queries if '"wallets_transfer"' in q["sql"]]


class _Recorder:
    """The statements sent on one alias, recorded without opening its connection (CaptureQueriesContext would
    connect first, which a down replica refuses)."""

    def __init__(self):
        self.captured_queries: list[dict] = []

    def __call__(self, execute, sql, params, many, context):
        self.captured_queries.append({"sql": sql})
        return execute(sql, params, many, context)


@contextmanager
def _capture(alias: str):
    recorder = _Recorder()
    with connections[alias].execute_wrapper(recorder):
        yield recorder


def _get(client, url):
    """GET `url`, capturing the queries on each alias."""
    with _capture("default") as primary, _capture("replica") as replica_q:
        response = client.get(url)
    return response, primary, replica_q


def _replica_logs(caplog) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == "credits.replica"]


# --- read_alias -------------------------------------------------------------------------------------------


def test_without_replica_reads_every_read_is_on_the_primary(settings):
    settings.REPLICA_READS = False
    assert replica.read_alias(RequestFactory().get("/")) == "default"


def test_a_healthy_replica_serves_safe_requests_and_never_writes(settings):
    factory = RequestFactory()
    assert replica.read_alias(factory.get("/")) == "replica"
    assert replica.read_alias(factory.post("/")) == "default"  # a write reads the primary
    assert replica.measure_lag() == 0.0  # the mirror is a primary: not in recovery, no lag


# --- pages ---------------------------------------------------------------------------------------------


def test_transactions_list_reads_the_replica_and_the_permission_check_the_primary(client, funded_org, owner, moved):
    client.force_login(owner)
    response, primary, replica_q = _get(client, reverse("billing:transactions", args=[funded_org.slug]))
    assert response.status_code == 200
    assert "Q3" in response.content.decode()
    assert _transfer_queries(replica_q) and not _transfer_queries(primary)
    assert any(replica.LAG_SQL in q["sql"] for q in replica_q.captured_queries)  # the health check, once
    assert any('"orgs_membership"' in q["sql"] for q in primary.captured_queries)  # who may look: the primary
    assert not any('"orgs_membership"' in q["sql"] for q in replica_q.captured_queries)
    # The list costs the same number of queries wherever it reads (the page's pin counts every alias).
    again, primary2, replica2 = _get(client, reverse("billing:transactions", args=[funded_org.slug]))
    assert again.status_code == 200 and not any(replica.LAG_SQL in q["sql"] for q in replica2.captured_queries)
    with _capture("default") as on_primary, pytest.MonkeyPatch.context() as mp:
        mp.setattr(replica, "replica_enabled", lambda: False)
        client.get(reverse("billing:transactions", args=[funded_org.slug]))
    assert len(primary2.captured_queries) + len(replica2.captured_queries) == len(on_primary.captured_queries)


def test_csv_export_streams_from_the_replica(client, funded_org, owner, moved):
    client.force_login(owner)
    url = reverse("billing:transactions_export", args=[funded_org.slug])
    with _capture("default") as primary, _capture("replica") as replica_q:
        response = client.get(url)
        body = b"".join(response.streaming_content).decode()
    assert response.status_code == 200
    assert body.splitlines()[0].startswith("id,date,kind") and "Q3" in body
    assert any("SET LOCAL jit" in q["sql"] for q in replica_q.captured_queries)
    assert any("credittype" in q["sql"] for q in replica_q.captured_queries)
    assert not any("jit" in q["sql"] or "credittype" in q["sql"] for q in primary.captured_queries)


def test_balance_chart_reads_the_replica_and_the_balance_the_primary(client, funded_org, owner):
    client.force_login(owner)
    for url in (
        reverse("billing:page", args=[funded_org.slug]),
        reverse("billing:balance_chart", args=[funded_org.slug]) + "?chart=90",
    ):
        response, primary, replica_q = _get(client, url)
        assert response.status_code == 200
        assert "Total 10,000 credits ($100.00)</title>" in response.content.decode()
        chart_sql = [q["sql"] for q in replica_q.captured_queries if "unnest" in q["sql"]]
        assert len(chart_sql) == 1, url
        assert not any("balance_after" in q["sql"] and "unnest" in q["sql"] for q in primary.captured_queries)
        assert any('"wallets_' in q["sql"] for q in primary.captured_queries)  # the balance card: the primary


# --- read-your-writes --------------------------------------------------------------------------------------


def test_after_a_transfer_the_user_reads_the_primary_until_the_pin_expires(client, funded_org, owner, settings):
    member = MembershipFactory(org=funded_org, user=UserFactory(email="bob@example.com"))
    client.force_login(owner)
    data = {
        "mode": "one",
        "recipient": str(member.pk),
        "credit_type": "org-allocated",
        "amount": "250",
        "message": "Pinned",
        "idempotency_key": str(uuid.uuid4()),
    }
    response = client.post(reverse("billing:transfer_submit", args=[funded_org.slug]), data)
    assert response.status_code in (200, 302)
    pin = response.cookies[replica.PIN_COOKIE]
    assert pin["httponly"] and pin["samesite"] == "Lax" and pin["max-age"] == settings.REPLICA_PIN_SECONDS
    url = reverse("billing:transactions", args=[funded_org.slug])
    response, primary, replica_q = _get(client, url)
    assert "Pinned" in response.content.decode()
    assert _transfer_queries(primary) and not replica_q.captured_queries  # not even a health check

    settings.REPLICA_PIN_SECONDS = 0  # the window has passed: the same cookie no longer pins
    signer_age = replica.is_pinned(RequestFactory(HTTP_COOKIE=f"{replica.PIN_COOKIE}={pin.value}").get("/"))
    response, primary, replica_q = _get(client, url)
    assert not signer_age
    assert _transfer_queries(replica_q) and not _transfer_queries(primary)


def test_a_forged_or_anonymous_pin_does_not_count(client, funded_org):
    request = RequestFactory(HTTP_COOKIE=f"{replica.PIN_COOKIE}=1").get("/")
    assert not replica.is_pinned(request)
    response = client.post(reverse("login"), {"username": "nobody@example.com", "password": "wrong"})
    assert replica.PIN_COOKIE not in response.cookies  # anonymous: nothing of theirs to read back


# --- fallback ---------------------------------------------------------------------------------------------


def test_a_down_replica_falls_back_to_the_primary_with_one_log_line(
    client, funded_org, owner, moved, replica_down, caplog
):
    client.force_login(owner)
    url = reverse("billing:transactions", args=[funded_org.slug])
    with caplog.at_level(logging.WARNING, logger="credits.replica"):
        for _ in range(3):
            response, primary, replica_q = _get(client, url)
            assert response.status_code == 200 and "Q3" in response.content.decode()
            assert _transfer_queries(primary) and not replica_q.captured_queries
        chart = client.get(reverse("billing:balance_chart", args=[funded_org.slug]))
        export = client.get(reverse("billing:transactions_export", args=[funded_org.slug]))
        assert chart.status_code == 200 and export.status_code == 200
        assert "Q3" in b"".join(export.streaming_content).decode()
    logs = _replica_logs(caplog)
    assert len(logs) == 1, logs
    assert logs[0].startswith("replica down, reports read from the primary: OperationalError")


def test_lag_past_the_limit_falls_back_and_recovery_is_logged_once(client, funded_org, owner, settings, caplog):
    settings.REPLICA_CHECK_SECONDS = 0  # re-check on every request
    settings.REPLICA_MAX_LAG_SECONDS = 5
    lag = {"now": 12.5}
    client.force_login(owner)
    url = reverse("billing:transactions", args=[funded_org.slug])
    with pytest.MonkeyPatch.context() as mp, caplog.at_level(logging.WARNING, logger="credits.replica"):
        mp.setattr(replica, "measure_lag", lambda: lag["now"])
        for _ in range(2):
            response, primary, replica_q = _get(client, url)
            assert response.status_code == 200 and _transfer_queries(primary) and not replica_q.captured_queries
        lag["now"] = 4.0  # within the limit again
        response, primary, replica_q = _get(client, url)
        assert _transfer_queries(replica_q) and not _transfer_queries(primary)
    assert _replica_logs(caplog) == [
        "replica lagging, reports read from the primary: 12.5 s behind, limit 5 s",
        "replica healthy again, reports read from it (4.0 s behind)",
    ]


def test_a_replica_behind_by_an_unknown_amount_counts_as_lagging(monkeypatch, caplog):
    """measure_lag answers infinity when the replica is behind and has replayed nothing since it started."""
    monkeypatch.setattr(replica, "measure_lag", lambda: float("inf"))
    with caplog.at_level(logging.WARNING, logger="credits.replica"):
        assert replica.read_alias(RequestFactory().get("/")) == "default"
    assert _replica_logs(caplog) == [
        "replica lagging, reports read from the primary: behind, nothing replayed since it started, limit 5 s"
    ]


def _kill_replica_backend() -> None:
    """Terminate the replica connection's server process from the primary: the next replica query fails."""
    with connections["replica"].cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        (pid,) = cursor.fetchone()
    with connections["default"].cursor() as cursor:
        cursor.execute("SELECT pg_terminate_backend(%s)", [pid])


def test_a_replica_killed_mid_request_is_read_again_on_the_primary(funded_org, moved, caplog):
    filt = TransactionFilter()
    assert replica.read_alias(RequestFactory().get("/")) == "replica"
    _kill_replica_backend()
    with caplog.at_level(logging.WARNING, logger="credits.replica"):
        page = replica.run_read("replica", lambda using: transactions_page(funded_org, filt, using=using))
    assert [r.memo for r in page.rows] == ["Q3", "test funding"]
    assert len(_replica_logs(caplog)) == 1 and "a read failed" in _replica_logs(caplog)[0]
    assert replica.read_alias(RequestFactory().get("/")) == "default"  # until the next check


def test_an_export_whose_replica_dies_before_the_first_byte_comes_from_the_primary(funded_org, moved, caplog):
    filt = TransactionFilter()
    expected = b"".join(export_csv(funded_org, filt))
    replica.replica_healthy()
    _kill_replica_backend()
    with caplog.at_level(logging.WARNING, logger="credits.replica"):
        body = b"".join(export_csv(funded_org, filt, using="replica"))
    assert body == expected and b"Q3" in body
    assert len(_replica_logs(caplog)) == 1


# --- settings -------------------------------------------------------------------------------------------

SHOW = (
    "import json, config.settings as s; d = s.DATABASES.get('replica');"
    " print(json.dumps(d and {k: d[k] for k in ('HOST', 'PORT', 'NAME', 'OPTIONS', 'TEST', 'CONN_HEALTH_CHECKS')}))"
)


def _settings_replica(**env) -> dict | None:
    base = {k: v for k, v in os.environ.items() if k not in {"PYTEST_VERSION", "PYTEST_CURRENT_TEST"}}
    base = {k: v for k, v in base.items() if not k.startswith(("DATABASE_REPLICA_URL", "REPLICA_"))}
    result = subprocess.run(  # noqa: S603 - this interpreter, fixed arguments
        [sys.executable, "-c", SHOW],
        cwd=ROOT,
        env=base | {"DEBUG": "false", "SECRET_KEY": "k" * 50, "LEDGER_LOCK_TIMEOUT_MS": "7000"} | env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def test_settings_add_the_replica_alias_only_with_a_replica_url():
    assert _settings_replica() is None
    alias = _settings_replica(DATABASE_REPLICA_URL="postgres://reader@10.0.0.7:6433/credits")
    assert (alias["HOST"], alias["PORT"], alias["NAME"]) == ("10.0.0.7", 6433, "credits")
    assert alias["OPTIONS"]["options"] == "-c lock_timeout=7000"  # the primary's
    assert alias["OPTIONS"]["connect_timeout"] == 2
    assert alias["TEST"] == {"MIRROR": "default"} and alias["CONN_HEALTH_CHECKS"] is True


def test_a_replica_url_on_a_closed_port_reads_the_primary_in_a_real_process(closed_port):
    """The whole path from the environment: settings, first check, one log line, "default"."""
    code = (
        "import django, logging; django.setup(); from django.test import RequestFactory; from core import replica;"
        " print(replica.read_alias(RequestFactory().get('/')), replica.read_alias(RequestFactory().get('/')))"
    )
    base = {k: v for k, v in os.environ.items() if k not in {"PYTEST_VERSION", "PYTEST_CURRENT_TEST"}}
    result = subprocess.run(  # noqa: S603 - this interpreter, fixed arguments
        [sys.executable, "-c", code],
        cwd=ROOT,
        env=base
        | {
            "DJANGO_SETTINGS_MODULE": "config.settings",
            "DEBUG": "false",
            "SECRET_KEY": "k" * 50,
            "DATABASE_REPLICA_URL": f"postgres://postgres@127.0.0.1:{closed_port}/credits",
        },
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["default", "default"]
    warnings = [line for line in result.stderr.splitlines() if "credits.replica" in line]
    assert len(warnings) == 1 and "replica down, reports read from the primary" in warnings[0], result.stderr
