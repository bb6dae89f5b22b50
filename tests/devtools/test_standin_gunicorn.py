"""The stand-in under gunicorn's sync workers: its answers to the app's own SDK calls never need a worker.

Two sync workers serve the app and the stand-in on a free loopback port, with the default stand-in settings
(STRIPE_API_BASE is this server's /stripe-standin). 40 buyers check out at once (Buy Credits -> the stand-in's
checkout -> Pay -> the success page) while 40 signed webhooks, duplicates included, arrive for 20 more
purchases. Each of those requests makes SDK calls to the stand-in; when they were HTTP requests back to the
same two workers, both workers sat waiting for a worker and gunicorn killed them (WORKER TIMEOUT). Every paid
purchase must be credited exactly once, without a worker timeout, in well under a minute.
"""

import concurrent.futures
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

import pytest
from django.db import connection
from django.test import Client

from purchases.models import Purchase, PurchaseStatus
from tests.factories import OrgFactory, UserFactory
from tests.purchases.stripe_fixtures import WEBHOOK, event_named, paid_purchase, signed
from wallets.models import Transfer, TransferKind, Wallet
from wallets.selectors import ledger_problems, wallet_balance

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.postgres]

ROOT = Path(__file__).resolve().parents[2]
BUYERS = 40
WEBHOOK_PURCHASES = 20
REQUEST_TIMEOUT = 30  # seconds, per request
WORKER_TIMEOUT = 10  # gunicorn's --timeout: a worker stuck this long is killed and logged


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _database_url() -> str:
    db = connection.settings_dict
    auth = db["USER"] + (f":{urllib.parse.quote(db['PASSWORD'])}" if db["PASSWORD"] else "")
    return f"postgres://{auth}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"


@pytest.fixture
def gunicorn(settings):
    """gunicorn, 2 sync workers, on the test database; stopped at the end (and by `timeout` if all else fails)."""
    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    env = {
        **os.environ,
        "DATABASE_URL": _database_url(),
        "DEBUG": "false",
        "STRIPE_STANDIN": "true",
        "STRIPE_STANDIN_API_BASE": f"{base}/stripe-standin",  # what `make serve`-style setups pass
        "CONN_MAX_AGE": "0",
        "LOG_LEVEL": "WARNING",
        "AXES_ENABLED": "false",
        "RATE_LIMIT_MONEY_COUNT": "1000000",
        "RATE_LIMIT_REQUESTS_COUNT": "1000000",
        "TASKS_BACKEND": "django.tasks.backends.immediate.ImmediateBackend",
    }
    for name in ("STRIPE_API_BASE", "STRIPE_SECRET_KEY", "STRIPE_STANDIN_WEBHOOK_URL", "STRIPE_STANDIN_AUTODELIVER"):
        env.pop(name, None)
    log = tempfile.NamedTemporaryFile(prefix="gunicorn-", suffix=".log", delete=False)  # noqa: SIM115
    gunicorn_bin = str(Path(sys.executable).with_name("gunicorn"))
    command = [gunicorn_bin, "config.wsgi", "-b", f"127.0.0.1:{port}", "-w", "2", "-k", "sync"]
    command += ["--timeout", str(WORKER_TIMEOUT), "--graceful-timeout", "2", "--error-logfile", "-"]
    command += ["--no-control-socket"]  # several gunicorns (other test runs) may run on this machine
    process = subprocess.Popen(  # noqa: S603 - our own server, fixed arguments
        [shutil.which("timeout") or "/usr/bin/timeout", "-s", "TERM", "120", *command],  # stops by itself, too
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                with urllib.request.urlopen(f"{base}/healthz", timeout=2) as response:  # noqa: S310
                    if response.status == 200:
                        break
            except OSError:
                pass
            assert process.poll() is None, Path(log.name).read_text()
            assert time.monotonic() < deadline, "gunicorn did not start:\n" + Path(log.name).read_text()
            time.sleep(0.2)
        # This process creates the webhook purchases' sessions through the SDK, at the server's stand-in.
        settings.STRIPE_API_BASE = f"{base}/stripe-standin"
        settings.STRIPE_STANDIN_AUTODELIVER = False
        yield base, Path(log.name)
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGTERM)  # the session this fixture started: timeout + gunicorn
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=5)
        log.close()


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None


def _buyer(base: str, org_slug: str, session_cookie: str) -> tuple:
    """One buyer: the Buy Credits form, Purchase ($5), Pay on the stand-in's checkout, the success page."""
    try:
        return _checkout(base, org_slug, session_cookie)
    except OSError as exc:  # a timed-out or dropped request
        return ("error", repr(exc))


def _checkout(base: str, org_slug: str, session_cookie: str) -> tuple:
    opener = urllib.request.build_opener(_NoRedirect)
    cookies = {"sessionid": session_cookie}

    def call(url, data=None):
        body = urllib.parse.urlencode(data).encode() if data is not None else None
        request = urllib.request.Request(url, data=body)  # noqa: S310
        request.add_header("Cookie", "; ".join(f"{k}={v}" for k, v in cookies.items()))
        try:
            response = opener.open(request, timeout=REQUEST_TIMEOUT)
        except urllib.error.HTTPError as exc:
            response = exc
        with response:
            for header in response.headers.get_all("Set-Cookie") or []:
                name, _, value = header.split(";", 1)[0].partition("=")
                cookies[name.strip()] = value.strip()
            return response.status, response.headers, response.read().decode(errors="replace")

    status, _, html = call(f"{base}/orgs/{org_slug}/billing/buy/")
    if status != 200:
        return ("buy form", status, _.get("Location") if hasattr(_, "get") else "")
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', html).group(1)
    status, headers, _ = call(f"{base}/orgs/{org_slug}/billing/buy/", {"csrfmiddlewaretoken": token, "amount": "5"})
    if status != 302:
        return ("purchase", status)
    checkout = urllib.parse.urljoin(base, headers["Location"])
    status, headers, _ = call(checkout, {"action": "pay", "method": "card"})
    if status != 302:
        return ("pay", status)
    status, _, html = call(urllib.parse.urljoin(base, headers["Location"]))
    if status != 200:
        return ("success page", status)
    return ("ok",)


def _webhook(base: str, evt: dict) -> int:
    payload, header = signed(evt)
    request = urllib.request.Request(  # noqa: S310
        f"{base}{WEBHOOK}",
        data=payload.encode(),
        headers={"Content-Type": "application/json", "Stripe-Signature": header},
    )
    try:
        with urllib.request.urlopen(request, timeout=REQUEST_TIMEOUT) as response:  # noqa: S310
            return response.status
    except urllib.error.HTTPError as exc:
        return exc.code
    except OSError:
        return 0


def test_concurrent_checkouts_and_webhooks_credit_once_without_worker_timeouts(gunicorn):
    base, log = gunicorn
    started = time.monotonic()
    owner = UserFactory()
    org = OrgFactory(owner=owner)
    client = Client()
    client.force_login(owner)
    session_cookie = client.cookies["sessionid"].value
    hooked = [paid_purchase(org, owner, 500) for _ in range(WEBHOOK_PURCHASES)]
    events = [event_named(events, "checkout.session.completed") for _, events in hooked]
    events = events + events  # every webhook twice

    with concurrent.futures.ThreadPoolExecutor(max_workers=BUYERS + len(events)) as pool:
        buyers = [pool.submit(_buyer, base, org.slug, session_cookie) for _ in range(BUYERS)]
        hooks = [pool.submit(_webhook, base, evt) for evt in events]
        buyer_results = [f.result() for f in buyers]
        hook_results = [f.result() for f in hooks]

    # The stand-in's own deliveries (Pay's events) may still be in flight; the success pages already credited.
    purchases = Purchase.objects.filter(org=org)
    deadline = time.monotonic() + 15
    while purchases.filter(status=PurchaseStatus.PENDING).exists() and time.monotonic() < deadline:
        time.sleep(0.2)
    elapsed = time.monotonic() - started

    server_log = log.read_text()
    assert "WORKER TIMEOUT" not in server_log, server_log[-4000:]
    assert buyer_results == [("ok",)] * BUYERS, buyer_results
    assert hook_results == [200] * len(events), hook_results
    assert purchases.count() == BUYERS + WEBHOOK_PURCHASES
    assert not purchases.exclude(status=PurchaseStatus.PAID).exists()
    transfers = Transfer.objects.filter(org=org, kind=TransferKind.PURCHASE)
    assert transfers.count() == BUYERS + WEBHOOK_PURCHASES  # each purchase credited once
    assert sorted(transfers.values_list("idempotency_key", flat=True)) == sorted(
        f"stripe:{sid}" for sid in purchases.values_list("stripe_session_id", flat=True)
    )
    assert wallet_balance(Wallet.objects.for_org(org)).total == 500 * (BUYERS + WEBHOOK_PURCHASES)
    assert ledger_problems() == []
    assert elapsed < 60, f"took {elapsed:.1f}s"
