"""Soak test: two gunicorn app servers over one PostgreSQL, 16 clients, chaos midway, then proof that
every acknowledged operation was applied exactly once and the books balance.

- Starts two gunicorn instances on 127.0.0.1 (SOAK_PORT and SOAK_PORT+1, 2 workers each, gthread) on a
  database of their own (credits_soak), seeded by this script.
- 16 client threads (SOAK_CLIENTS) for SOAK_SECONDS (60): single transfers, bulk transfers to selected
  members, credit requests with approve/reject races between two admins, signed Stripe webhooks for
  paid checkout sessions (20% sent twice), and replays of already-acknowledged POSTs.
- Midway it kill -9s one gunicorn worker and terminates PostgreSQL backends; clients retry failed
  requests with the same idempotency key.
- At the end: verify_ledger, every acknowledged operation exactly once, nothing unacknowledged applied
  twice, no partial bulk transfer; operations/s, p50/p99 latency and errors by kind.
Only loopback addresses; bounded in time; stops everything it started.
"""

import contextlib
import http.cookiejar
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections import Counter, defaultdict
from pathlib import Path

from _common import ROOT, percentile, reset_ledger, setup

SECONDS = float(os.environ.get("SOAK_SECONDS", 60))
CLIENTS = int(os.environ.get("SOAK_CLIENTS", 16))
PORT = int(os.environ.get("SOAK_PORT", 8650))
HOST = "127.0.0.1"


class Http:
    """A signed-in browser-like session: cookies, CSRF token, no redirects followed."""

    class _NoRedirect(urllib.request.HTTPRedirectHandler):
        def redirect_request(self, *args, **kwargs):
            return None

    def __init__(self, base: str):
        self.base = base
        self.jar = http.cookiejar.CookieJar()
        self.opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(self.jar), self._NoRedirect())

    def csrf(self) -> str:
        return next((c.value for c in self.jar if c.name == "csrftoken"), "")

    def request(
        self, method: str, path: str, data: dict | list | None = None, headers: dict | None = None, timeout: float = 15
    ):
        headers = dict(headers or {})
        raw = headers.pop("__raw_body__", None)
        if raw is not None:
            body = raw.encode()
        else:
            body = urllib.parse.urlencode(data or {}, doseq=True).encode() if method == "POST" else None
        req = urllib.request.Request(self.base + path, data=body, method=method)
        if method == "POST" and raw is None:
            req.add_header("Content-Type", "application/x-www-form-urlencoded")
            req.add_header("X-CSRFToken", self.csrf())
            req.add_header("Referer", self.base + "/")
        for k, v in headers.items():
            req.add_header(k, v)
        try:
            with self.opener.open(req, timeout=timeout) as resp:
                self.last_headers = list(resp.headers.items())
                return resp.status, resp.read().decode("utf-8", "replace")
        except urllib.error.HTTPError as exc:
            self.last_headers = list(exc.headers.items())
            return exc.code, exc.read().decode("utf-8", "replace")

    def login(self, email: str, password: str = "soak-password-123"):
        self.request("GET", "/accounts/login/")
        status, _ = self.request("POST", "/accounts/login/", {"username": email, "password": password})
        assert status == 302, f"login failed for {email}: {status}"


SERVER_LOG = Path(tempfile.gettempdir()) / "credits-soak-servers.log"


def start_servers(env: dict) -> list[subprocess.Popen]:
    procs = []
    log = SERVER_LOG.open("w")  # both servers' stderr: the 500s' causes are read back at the end
    for port in (PORT, PORT + 1):
        procs.append(
            subprocess.Popen(
                [
                    str(ROOT / ".venv/bin/gunicorn"),
                    "config.wsgi",
                    "-b",
                    f"{HOST}:{port}",
                    "-w",
                    "2",
                    "-k",
                    "gthread",
                    "--threads",
                    "4",
                    "--timeout",
                    "30",
                    "--graceful-timeout",
                    "5",
                ],
                cwd=ROOT,
                env=env,
                stdout=subprocess.DEVNULL,
                stderr=log,
                start_new_session=True,
            )
        )
    deadline = time.time() + 30
    for port in (PORT, PORT + 1):
        while time.time() < deadline:
            try:
                urllib.request.urlopen(f"http://{HOST}:{port}/healthz", timeout=2).read()
                break
            except OSError:
                time.sleep(0.3)
        else:
            raise SystemExit(f"gunicorn on {port} did not come up")
    return procs


def stop_servers(procs):
    for p in procs:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(p.pid, signal.SIGTERM)
    for p in procs:
        try:
            p.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(p.pid, signal.SIGKILL)


def server_errors() -> Counter:
    """Causes of the servers' 500s: the exception line that ends each 'Internal Server Error' traceback."""
    causes: Counter = Counter()
    lines = SERVER_LOG.read_text(errors="replace").splitlines() if SERVER_LOG.exists() else []
    for i, line in enumerate(lines):
        if "Internal Server Error" not in line:
            continue
        # A chained traceback names several exceptions ("During handling of the above…", "The above
        # exception was the direct cause…"); the one raised is the last before the traceback ends.
        last = None
        for follow in lines[i + 1 :]:
            if follow.startswith((" ", "Traceback", "The above", "During handling")) or not follow:
                continue
            if _EXCEPTION_LINE.match(follow):
                last = follow
                continue
            break  # the next log record
        if last is not None:
            causes[last.split(":", 1)[0].rsplit(".", 1)[-1] + ":" + last.split(":", 1)[-1][:70]] += 1
    return causes


_EXCEPTION_LINE = re.compile(r"^[A-Za-z_][\w.]*(Error|Exception|Shutdown|Exit|Interrupt|Warning)?(: |$)")


# A killed worker or a terminated backend may fail the requests in flight on it (the client retries them
# with the same idempotency key); any other cause of a 500 is a bug.
CHAOS_CAUSES = ("OperationalError", "InterfaceError", "AdminShutdown")  # AdminShutdown: pg_terminate_backend


def worker_pids(master_pid: int) -> list[int]:
    out = subprocess.run(["pgrep", "-P", str(master_pid)], capture_output=True, text=True).stdout
    return [int(x) for x in out.split()]


# --- the run ------------------------------------------------------------------------------------------
class Recorder:
    """Thread-safe log of operations, latencies and errors."""

    def __init__(self):
        self.lock = threading.Lock()
        self.ops: list[dict] = []
        self.latencies: list[float] = []
        self.errors: Counter = Counter()
        self.acked: Counter = Counter()

    def timed(self, http: Http, method: str, path: str, data=None, headers=None, retries: int = 8):
        """One logical request: retried with the same body (same idempotency key) on a dropped connection,
        a 5xx, or a 429; returns the final (status, body) or (0, '') if it never got through."""
        for attempt in range(retries):
            start = time.perf_counter()
            try:
                status, body = http.request(method, path, data, headers)
            except (urllib.error.URLError, ConnectionError, TimeoutError, OSError) as exc:
                self.error(f"connection: {type(exc).__name__}")
                time.sleep(0.05 * (attempt + 1))
                continue
            with self.lock:
                self.latencies.append(time.perf_counter() - start)
            if status >= 500 or status == 429:
                self.error(f"http {status}")
                time.sleep(0.05 * (attempt + 1))
                continue
            return status, body
        return 0, ""

    def error(self, kind: str):
        with self.lock:
            self.errors[kind] += 1

    def add(self, op: dict):
        with self.lock:
            self.ops.append(op)
            if op.get("acked"):
                self.acked[op["kind"]] += 1


def seed():
    from orgs.services import membership_add, org_create, user_create
    from wallets.services import org_credit_from_stripe

    password = "soak-password-123"
    owner = user_create(email="soak-owner@example.com", password=password)
    org = org_create(name="Soak Org", owner=owner)
    admins = [user_create(email=f"soak-admin{i}@example.com", password=password) for i in range(3)]
    for a in admins:
        membership_add(org=org, user=a, role="admin")
    members = []
    for i in range(30):
        u = user_create(email=f"soak-member{i}@example.com", password=password)
        members.append(membership_add(org=org, user=u, role="member"))
    org_credit_from_stripe(org=org, amount=10**9, memo="soak funding", idempotency_key="soak:funding")
    return org, owner, admins, members


def run_client(n: int, rec: Recorder, ctx: dict, deadline: float):
    import random
    import uuid

    rnd = random.Random(n)
    org, members = ctx["org"], ctx["members"]
    base = f"http://{HOST}:{PORT + n % 2}"
    admin = Http(base)
    admin.login(ctx["admins"][n % len(ctx["admins"])].email)
    second_admin = Http(f"http://{HOST}:{PORT + (n + 1) % 2}")
    second_admin.login(ctx["admins"][(n + 1) % len(ctx["admins"])].email)
    member_ms = members[n % len(members)]
    member = Http(base)
    member.login(member_ms.user.email)
    slug = org.slug
    while time.time() < deadline:
        roll = rnd.random()
        if roll < 0.35:  # single transfer, sometimes replayed after it was acknowledged
            target = rnd.choice(members)
            key = str(uuid.uuid4())
            data = {
                "mode": "one",
                "recipient": target.pk,
                "credit_type": "org-allocated",
                "amount": rnd.randint(1, 20),
                "message": "soak",
                "idempotency_key": key,
            }
            status, _ = rec.timed(admin, "POST", f"/orgs/{slug}/billing/transfer/submit/", data)
            rec.add(
                {"kind": "transfer", "key": key, "acked": status == 302, "member": target.pk, "amount": data["amount"]}
            )
            if status == 302 and rnd.random() < 0.3:
                again, _ = rec.timed(second_admin, "POST", f"/orgs/{slug}/billing/transfer/submit/", data)
                rec.add({"kind": "replay", "key": key, "acked": again == 302})
        elif roll < 0.55:  # bulk transfer to five selected members
            chosen = rnd.sample(members, 5)
            key = str(uuid.uuid4())
            data = {
                "mode": "selected",
                "member": [m.pk for m in chosen],
                "credit_type": "org-allocated",
                "amount": rnd.randint(1, 5),
                "reason": "soak bulk",
                "idempotency_key": key,
            }
            status, _ = rec.timed(admin, "POST", f"/orgs/{slug}/billing/transfer/submit/", data)
            rec.add(
                {
                    "kind": "bulk",
                    "key": key,
                    "acked": status == 302,
                    "members": [m.pk for m in chosen],
                    "amount": data["amount"],
                }
            )
        elif roll < 0.8:  # a credit request, then two admins race: approve against reject
            client_key = str(uuid.uuid4())
            amount = rnd.randint(1, 50)
            status, _ = rec.timed(
                member,
                "POST",
                f"/orgs/{slug}/requests/new/",
                {"amount": amount, "reason": "soak", "client_key": client_key},
            )
            rec.add({"kind": "request", "key": client_key, "acked": status == 302})
            if status != 302:
                continue
            from credit_requests.models import CreditRequest

            request_id = CreditRequest.objects.filter(client_key=client_key).values_list("pk", flat=True).first()
            if request_id is None:
                rec.error("request acknowledged but not found")
                continue
            results = {}

            def decide(http, verb, data, results=results, request_id=request_id):
                results[verb] = rec.timed(http, "POST", f"/orgs/{slug}/billing/requests/{request_id}/{verb}/", data)[0]

            t1 = threading.Thread(
                target=decide, args=(admin, "approve", {"amount": amount, "credit_type": "org-allocated"})
            )
            t2 = threading.Thread(target=decide, args=(second_admin, "reject", {"reason": "soak race"}))
            t1.start(), t2.start(), t1.join(), t2.join()
            rec.add(
                {
                    "kind": "decision",
                    "request_id": request_id,
                    "acked": 302 in results.values(),
                    "approve_acked": results.get("approve") == 302,
                    "amount": amount,
                    "member": member_ms.pk,
                }
            )
        else:  # buy credits: checkout session via the stand-in, paid, then signed webhooks (20% sent twice)
            status, _ = rec.timed(admin, "POST", f"/orgs/{slug}/billing/buy/", {"amount": f"{rnd.randint(5, 50)}.00"})
            location = ""
            if status == 302:
                location = next((v for k, v in admin.last_headers if k.lower() == "location"), "")
            session_id = location.rstrip("/").rsplit("/", 1)[-1] if "/checkout/" in location else ""
            if not session_id:
                rec.add({"kind": "purchase", "acked": False})
                continue
            from devtools.stripe_standin import core

            _session, events = core.pay(session_id)
            delivered = True
            for event in events:
                payload = json.dumps(event)
                copies = 2 if rnd.random() < 0.2 else 1
                for c in range(copies):
                    target = Http(f"http://{HOST}:{PORT + (n + c) % 2}")
                    st, _ = rec.timed(
                        target,
                        "POST",
                        "/stripe/webhook/",
                        None,
                        {
                            "Content-Type": "application/json",
                            "Stripe-Signature": core.sign(payload),
                            "__raw_body__": payload,
                        },
                    )
                    delivered &= st == 200
            rec.add({"kind": "purchase", "acked": delivered, "session": session_id})


def chaos(procs, url: str, at: float, rec: Recorder):
    """Midway: kill -9 one gunicorn worker, and terminate PostgreSQL backends of the app."""
    time.sleep(max(0.0, at - time.time()))
    pids = worker_pids(procs[0].pid)
    if pids:
        os.kill(pids[0], signal.SIGKILL)
        rec.error("chaos: killed worker")
    import psycopg

    dbname = urllib.parse.urlparse(url).path.lstrip("/")
    with psycopg.connect(url.replace("postgres://", "postgresql://", 1), autocommit=True) as conn:
        rows = conn.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s"
            " AND application_name = 'credits-app' LIMIT 4",
            [dbname],
        ).fetchall()
    rec.error(f"chaos: terminated {sum(1 for (ok,) in rows if ok)} backends")


def check(ctx: dict, rec: Recorder) -> list[str]:
    """Exactly once, from the database's own records, against what the clients were told."""
    from django.db import connection
    from django.db.models import Count, Sum

    from credit_requests.models import CreditRequest
    from purchases.models import Purchase
    from wallets.models import Entry, Pocket, Transfer, TransferKind

    connection.close()
    problems = []
    org = ctx["org"]
    expected_member: dict[int, int] = defaultdict(int)
    ms_by_pk = {m.pk: m for m in ctx["members"]}
    for op in rec.ops:
        if op["kind"] in ("transfer", "bulk"):
            n = Transfer.objects.filter(org=org, idempotency_key=f"ui-transfer:{op['key']}").count()
            if n > 1 or (op["acked"] and n != 1):
                problems.append(f"{op['kind']} {op['key']}: acknowledged={op['acked']} but applied {n} times")
            if n == 1:
                for pk in op.get("members", [op.get("member")]):
                    expected_member[pk] += op["amount"]
        elif op["kind"] == "decision":
            req = CreditRequest.objects.get(pk=op["request_id"])
            n = Transfer.objects.filter(org=org, idempotency_key=f"request:{req.pk}").count()
            if req.status not in ("approved", "rejected") and op["acked"]:
                problems.append(f"request {req.pk}: a decision was acknowledged but it is {req.status}")
            if n > 1 or (req.status == "approved") != (n == 1):
                problems.append(f"request {req.pk}: status {req.status} with {n} transfers")
            if n == 1:
                expected_member[op["member"]] += req.granted_amount
        elif op["kind"] == "purchase" and op.get("session"):
            p = Purchase.objects.filter(stripe_session_id=op["session"]).first()
            n = Transfer.objects.filter(org=org, idempotency_key=f"stripe:{op['session']}").count()
            if n > 1 or (op["acked"] and n != 1) or (p and p.status == "paid" and n != 1):
                problems.append(f"purchase {op['session']}: acknowledged={op['acked']} credited {n} times")
    for pk, amount in expected_member.items():
        ms = ms_by_pk[pk]
        have = Pocket.objects.filter(wallet__user=ms.user, funding_org=org).aggregate(s=Sum("balance"))["s"] or 0
        if have != amount:
            problems.append(f"member {ms.user.email}: wallet holds {have}, the clients' ledger says {amount}")
    for t in Transfer.objects.filter(org=org, kind=TransferKind.BULK_TRANSFER).annotate(n=Count("entries")):
        if t.n != 6:
            problems.append(f"bulk transfer {t.pk} has {t.n} entries, not 6 (partial?)")
    if Entry.objects.filter(transfer__org=org).aggregate(s=Sum("amount"))["s"] not in (0, None):
        problems.append("the org's entries do not sum to zero")
    return problems


def main():
    os.environ["PGAPPNAME"] = "soak-checker"  # the chaos step terminates only the app servers' backends
    url = setup("credits_soak")
    reset_ledger()
    org, _owner, admins, members = seed()
    from django.db import connection

    connection.close()
    env = {
        **os.environ,
        "DATABASE_URL": url,
        "DEBUG": "false",
        "ALLOWED_HOSTS": HOST,
        "LOG_LEVEL": "WARNING",
        "AXES_ENABLED": "false",
        "RATE_LIMIT_MONEY_COUNT": "1000000",
        "RATE_LIMIT_REQUESTS_COUNT": "1000000",
        "STRIPE_STANDIN": "true",
        "STRIPE_API_BASE": f"http://{HOST}:{PORT}/stripe-standin",
        "STRIPE_STANDIN_AUTODELIVER": "false",
        "SECRET_KEY": "soak-" + "k" * 50,
        "PGAPPNAME": "credits-app",
    }
    env.pop("STRIPE_SECRET_KEY", None)
    rec = Recorder()
    ctx = {"org": org, "admins": admins, "members": members}
    procs = start_servers(env)
    started = time.time()
    deadline = started + SECONDS
    try:
        threads = [threading.Thread(target=run_client, args=(i, rec, ctx, deadline)) for i in range(CLIENTS)]
        chaos_thread = threading.Thread(target=chaos, args=(procs, url, started + SECONDS / 2, rec))
        for t in [*threads, chaos_thread]:
            t.start()
        for t in [*threads, chaos_thread]:
            t.join(timeout=SECONDS + 120)
    finally:
        stop_servers(procs)
    elapsed = time.time() - started
    from django.core.management import call_command

    out = []
    try:
        call_command("verify_ledger", stdout=sys.stdout)
    except Exception as exc:  # report, do not hide
        out.append(f"verify_ledger FAILED: {exc}")
    out += check(ctx, rec)
    causes = server_errors()
    out += [
        f"server 500 not caused by the chaos: {c} x{n}" for c, n in causes.items() if not c.startswith(CHAOS_CAUSES)
    ]
    total = len(rec.latencies)
    print(f"soak: {CLIENTS} clients x {SECONDS:.0f}s against 2 gunicorn instances (2 workers each), one PostgreSQL")
    print(
        f"requests: {total:,} in {elapsed:.1f}s = {total / elapsed:,.1f} req/s; "
        f"p50 {percentile(rec.latencies, 50) * 1000:.1f} ms, p99 {percentile(rec.latencies, 99) * 1000:.1f} ms"
    )
    print("acknowledged operations: " + ", ".join(f"{k} {v}" for k, v in sorted(rec.acked.items())))
    print("operations: " + ", ".join(f"{k} {v}" for k, v in sorted(Counter(o["kind"] for o in rec.ops).items())))
    print("errors and retries by kind: " + (", ".join(f"{k}: {v}" for k, v in sorted(rec.errors.items())) or "none"))
    print("server 500s by cause: " + (", ".join(f"{c} x{n}" for c, n in causes.most_common()) or "none"))
    if out:
        print("PROBLEMS:\n  " + "\n  ".join(out))
        raise SystemExit(1)
    print("exactly once: every acknowledged operation applied once, nothing applied twice, no partial bulk transfer")


if __name__ == "__main__":
    main()
