"""Charges per second through the HTTP API vs the same charges made directly with the service, and vs the
cheapest authenticated API call on the same gunicorn in the same run.

    BENCH_DATABASE_URL=postgres://postgres@127.0.0.1:5432/credits_bench python bench/api_charge.py

All runs use 8 concurrent clients against one PostgreSQL database:
- direct: 8 threads call `wallets.services.member_charge_usage` (membership lock + the ledger primitive);
- HTTP: gunicorn (2 workers, 127.0.0.1 only, started and stopped here) serves POST /api/v1/usage with an
  org API key and a fresh Idempotency-Key per charge, so each request also authenticates, counts against the
  key's rate limit (set far above what the bench sends, so it counts and never refuses), stores its
  idempotent response and its UsageCharge;
- baseline: the same clients call GET /api/v1/me (BENCH_BASELINE_PATH) with the same key on the same gunicorn:
  the framework's floor on this machine (WSGI, middleware, key lookup, rate-limit count, JSON response).
The clients are threads of this process, on the same machine as the server, so what a client costs comes out of
what the server gets. They use the `requests` library, as every run whose figures the targets were set against
did; BENCH_CLIENT=http.client uses the standard library's client, about 1 ms less CPU per request on this 2-CPU
machine, which shows more of the server's own costs (and makes `GET /me`, the cheaper call, gain the most).
Each charge is 1 credit to one of 64 members (so clients contend the way a job runner's charges would).
Printed: rates, HTTP/direct, HTTP/baseline (target >= 0.5), p50/p95/p99, and one client alone (HTTP x1,
baseline x1): the latency without queueing. Target: p99 latency through the API < 50 ms.
Env: BENCH_API_CHARGES (default 2000 per run), BENCH_CLIENTS (8), BENCH_WORKERS (2), BENCH_MAX_SECONDS (60,
per run), BENCH_PORT (8990), BENCH_ROUNDS (1: baseline and HTTP alternate this many times, each figure is the
best round), DB_POOL (the server's, default on; see config/settings.py).
"""

import http.client
import json
import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

import requests
from _common import percentile, reset_ledger, setup

CHARGES = int(os.environ.get("BENCH_API_CHARGES", "2000"))
CLIENTS = int(os.environ.get("BENCH_CLIENTS", "8"))
WORKERS = int(os.environ.get("BENCH_WORKERS", "2"))
MAX_SECONDS = float(os.environ.get("BENCH_MAX_SECONDS", "60"))
PORT = int(os.environ.get("BENCH_PORT", "8990"))
THREADS = int(os.environ.get("BENCH_THREADS", "1"))  # >1: gthread workers (still BENCH_WORKERS processes)
SEQUENTIAL = int(os.environ.get("BENCH_SEQUENTIAL", "200"))  # one client alone: latency without queueing
ROUNDS = int(os.environ.get("BENCH_ROUNDS", "1"))
BASELINE_PATH = os.environ.get("BENCH_BASELINE_PATH", "/api/v1/me")
CLIENT = os.environ.get("BENCH_CLIENT", "requests")  # or "http.client"
MEMBERS = 64
ROOT = Path(__file__).resolve().parent.parent


def _prepare():
    from apikeys.models import ApiKey
    from orgs.services import org_create, user_create
    from tests.factories import bulk_members
    from wallets.models import CreditType
    from wallets.services import org_bulk_transfer, org_credit_from_stripe

    reset_ledger()
    owner = user_create(email="bench-owner@example.com", password=None)
    org = org_create(name="Bench API", owner=owner)
    per_member = (ROUNDS + 1) * CHARGES + SEQUENTIAL  # never runs out, even if every charge hit one member
    org_credit_from_stripe(org=org, amount=per_member * MEMBERS, memo="bench")
    members = bulk_members(org, MEMBERS)
    org_bulk_transfer(
        org=org,
        credit_type=CreditType.objects.get(slug="org-allocated"),
        amount_per_member=per_member,
        membership_ids=[m.pk for m in members],
    )
    _key, token = ApiKey.objects.issue(org=org, name="bench", scope="charge", created_by=owner)
    return org, [m.pk for m in members], token


def _run_clients(work, charges=None, clients=None):
    """Run `work(i) -> ok` for `charges` items over `clients` threads; returns (elapsed, latencies, ok)."""
    charges = CHARGES if charges is None else charges
    clients = CLIENTS if clients is None else clients
    counter = iter(range(charges))
    lock = threading.Lock()
    latencies, oks = [], []
    deadline = time.monotonic() + MAX_SECONDS
    barrier = threading.Barrier(clients)

    def client():
        from django.db import connection

        barrier.wait()
        try:
            while time.monotonic() < deadline:
                with lock:
                    i = next(counter, None)
                if i is None:
                    return
                t0 = time.perf_counter()
                ok = work(i)
                dt = time.perf_counter() - t0
                with lock:
                    latencies.append(dt)
                    oks.append(ok)
        finally:
            connection.close()

    threads = [threading.Thread(target=client) for _ in range(clients)]
    start = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return time.perf_counter() - start, latencies, sum(oks)


def _direct(org, member_ids):
    from wallets.services import member_charge_usage

    def work(i):
        member_charge_usage(
            org=org,
            membership_id=member_ids[i % len(member_ids)],
            amount=1,
            description=f"bench job {i}",
            idempotency_key=f"direct-{i}",
        )
        return True

    return _run_clients(work)


def _start_gunicorn(db_url):
    env = {
        **os.environ,
        "DATABASE_URL": db_url,
        "DEBUG": "False",
        "LOG_LEVEL": "WARNING",
        "API_RATE_LIMIT_PER_MINUTE": "1000000000",  # counted on every request, never reached
        "CONN_MAX_AGE": "60",  # persistent connections when DB_POOL=false (the pool is the default)
    }
    cmd = [
        sys.executable, "-m", "gunicorn", "config.wsgi:application",
        "--bind", f"127.0.0.1:{PORT}", "--workers", str(WORKERS), "--log-level", "warning",
    ]  # fmt: skip
    if THREADS > 1:
        cmd += ["--worker-class", "gthread", "--threads", str(THREADS)]
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env, start_new_session=True)
    for _ in range(100):
        try:
            if requests.get(f"http://127.0.0.1:{PORT}/api/v1/openapi.json", timeout=1).status_code == 200:
                return proc
        except requests.RequestException:
            pass
        if proc.poll() is not None:
            raise SystemExit("gunicorn exited early")
        time.sleep(0.2)
    _stop(proc)
    raise SystemExit("gunicorn did not start")


def _stop(proc):
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)


def _sender():
    """A function sending one request and returning its status, for one client thread: with requests (the
    default) or http.client (BENCH_CLIENT=http.client, see the module's docstring)."""
    if CLIENT == "requests":
        session = requests.Session()

        def send(method, path, body, headers):
            return session.request(method, f"http://127.0.0.1:{PORT}{path}", data=body, headers=headers, timeout=30)

        return lambda *args: send(*args).status_code
    # One connection object per thread; it opens a new socket when gunicorn's sync worker has closed the last.
    conn = http.client.HTTPConnection("127.0.0.1", PORT, timeout=30)

    def send(method, path, body, headers):
        try:
            conn.request(method, path, body=body, headers=headers)
            response = conn.getresponse()
            response.read()
        except (http.client.HTTPException, OSError):
            conn.close()
            raise
        return response.status

    return send


def _http(member_ids, token, charges=None, clients=None, prefix="http"):
    local = threading.local()
    statuses: dict[int, int] = {}
    lock = threading.Lock()

    def work(i):
        send = getattr(local, "send", None) or _sender()
        local.send = send
        status = send(
            "POST",
            "/api/v1/usage",
            json.dumps({"member_id": member_ids[i % len(member_ids)], "amount": 1, "description": f"job {i}"}),
            {
                "Authorization": f"Bearer {token}",
                "Idempotency-Key": f"{prefix}-{uuid.uuid4()}",
                "Content-Type": "application/json",
            },
        )
        with lock:
            statuses[status] = statuses.get(status, 0) + 1
        return status == 201

    elapsed, latencies, ok = _run_clients(work, charges, clients)
    return elapsed, latencies, ok, statuses


def _baseline(token, calls=None, clients=None):
    local = threading.local()

    def work(i):
        send = getattr(local, "send", None) or _sender()
        local.send = send
        return send("GET", BASELINE_PATH, None, {"Authorization": f"Bearer {token}"}) == 200

    return _run_clients(work, calls, clients)


def _report(label, elapsed, latencies, ok):
    rate = ok / elapsed if elapsed else 0.0
    print(
        f"{label:<8} {ok:>6} charges in {elapsed:6.2f} s = {rate:8.1f} charges/s | latency ms "
        f"p50 {percentile(latencies, 50) * 1000:6.1f}  p95 {percentile(latencies, 95) * 1000:6.1f}  "
        f"p99 {percentile(latencies, 99) * 1000:6.1f}"
    )
    return rate


def main():
    db_url = setup()
    from wallets.models import Transfer, TransferKind
    from wallets.selectors import ledger_problems

    org, member_ids, token = _prepare()
    print(f"{CHARGES} charges of 1 credit per run, {CLIENTS} concurrent clients, {MEMBERS} members, PostgreSQL")
    print(f"(HTTP x1: {SEQUENTIAL} more charges from a single client: the latency without queueing)")

    d_elapsed, d_lat, d_ok = _direct(org, member_ids)
    direct_rate = _report("direct", d_elapsed, d_lat, d_ok)

    proc = _start_gunicorn(db_url)
    best: dict[str, tuple] = {}
    statuses: dict[int, int] = {}
    h_ok = 0

    def keep(label, run):
        if label not in best or run[2] / run[0] > best[label][2] / best[label][0]:
            best[label] = run

    try:
        for r in range(ROUNDS):
            keep("base", _baseline(token))
            elapsed, lat, ok, st = _http(member_ids, token, prefix=f"http{r}")
            h_ok += ok
            statuses = {k: statuses.get(k, 0) + v for k, v in st.items()}
            keep("HTTP", (elapsed, lat, ok))
        keep("base x1", _baseline(token, calls=SEQUENTIAL, clients=1))
        s_elapsed, s_lat, s_ok, _ = _http(member_ids, token, charges=SEQUENTIAL, clients=1, prefix="seq")
        keep("HTTP x1", (s_elapsed, s_lat, s_ok))
    finally:
        _stop(proc)
    base_rate = _report("baseline", *best["base"])
    http_rate = _report("HTTP", *best["HTTP"])
    _report("base x1", *best["base x1"])
    _report("HTTP x1", *best["HTTP x1"])
    h_ok += s_ok
    p99 = percentile(best["HTTP"][1], 99) * 1000
    x1 = percentile(best["HTTP x1"][1], 50) * 1000
    x1_base = percentile(best["base x1"][1], 50) * 1000
    print(f"baseline: GET {BASELINE_PATH}; rounds: {ROUNDS} (best of each)")
    print(
        f"single client p50: charge {x1:.1f} ms = baseline {x1_base:.1f} ms + {x1 - x1_base:.1f} ms for the "
        "charge's own work (body, the ledger statement with its usage row and stored answer, commit)"
    )

    usage = Transfer.objects.filter(org=org, kind=TransferKind.USAGE).count()
    problems = ledger_problems()
    print(f"HTTP statuses: {statuses}; usage transfers in the ledger: {usage} (expected {d_ok + h_ok})")
    print(f"ratio HTTP / direct: {http_rate / direct_rate:.2f}" if direct_rate else "ratio: n/a")
    print(
        f"ratio HTTP / baseline: {http_rate / base_rate:.2f} (target >= 0.50): "
        f"{'MET' if http_rate >= 0.5 * base_rate else 'MISSED'}"
    )
    kind = f"gthread x{THREADS}" if THREADS > 1 else "sync"
    print(
        f"gunicorn: {WORKERS} {kind} workers on 127.0.0.1:{PORT}; clients: {CLIENT}; "
        f"load average now {os.getloadavg()[0]:.1f}"
    )
    print(f"p99 through the API: {p99:.1f} ms (target < 50 ms): {'MET' if p99 < 50 else 'MISSED'}")
    print(f"ledger problems: {len(problems)}")
    if usage != d_ok + h_ok or problems:
        raise SystemExit("ledger mismatch")


if __name__ == "__main__":
    main()
