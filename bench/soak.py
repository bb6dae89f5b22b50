"""Soak test: two gunicorn app servers over one PostgreSQL, 16 clients, chaos midway, then proof that
every acknowledged operation was applied exactly once and the books balance.

- Starts two gunicorn instances on 127.0.0.1 (SOAK_PORT and SOAK_PORT+1, 2 workers each, gthread) on a
  database of their own (credits_soak), seeded by this script.
- 16 client threads (SOAK_CLIENTS) for SOAK_SECONDS (60), counted from when all have signed in (sessions
  made like the test client's force_login, not by hashing a password 48 times): single transfers, bulk
  transfers to selected members, credit requests with approve/reject races between two admins, signed
  Stripe webhooks for paid checkout sessions (20% sent twice), and replays of already-acknowledged POSTs.
- Midway it kill -9s one gunicorn worker and terminates PostgreSQL backends; clients retry failed
  requests with the same idempotency key.
- At the end: verify_ledger, every acknowledged operation exactly once, nothing unacknowledged applied
  twice, no partial bulk transfer; operations/s, p50/p99 latency and errors by kind.
Only loopback addresses; bounded in time; stops everything it started.

`run()` is the soak itself, for other set-ups: bench/soak_replica.py runs it through PgBouncer and a
streaming replica, with report reads (SOAK_READS: the Transactions page, the balance chart, the CSV
export) and a replica killed midway instead of this chaos.
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

    def sign_in(self, user):
        """Signed in without the password: a session made like the test client's force_login (password
        hashing is slow by design, and every client signing in at once used to take most of a short soak)."""
        from django.conf import settings
        from django.test import Client

        self.request("GET", "/accounts/login/", timeout=60)  # the CSRF cookie
        client = Client()
        client.force_login(user)
        session = client.cookies[settings.SESSION_COOKIE_NAME].value
        host = urllib.parse.urlparse(self.base).hostname
        cookie = http.cookiejar.Cookie(
            version=0, name=settings.SESSION_COOKIE_NAME, value=session, port=None, port_specified=False,
            domain=host, domain_specified=False, domain_initial_dot=False, path="/", path_specified=True,
            secure=False, expires=None, discard=False, comment=None, comment_url=None, rest={},
        )  # fmt: skip
        self.jar.set_cookie(cookie)

    def same_session(self, keep: tuple[str, ...]) -> "Http":
        """A second client on the same signed-in session, with only the `keep` cookies (no new sign-in)."""
        other = Http(self.base)
        for cookie in self.jar:
            if cookie.name in keep:
                other.jar.set_cookie(cookie)
        return other


def server_log(port: int = PORT) -> Path:
    return Path(tempfile.gettempdir()) / f"credits-soak-servers-{port}.log"


def start_servers(env: dict, port0: int = PORT) -> list[subprocess.Popen]:
    procs = []
    log = server_log(port0).open("w")  # both servers' stderr: the 500s' causes are read back at the end
    for port in (port0, port0 + 1):
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
    for port in (port0, port0 + 1):
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


def server_errors(port0: int = PORT) -> Counter:
    """Causes of the servers' 500s: the exception line that ends each 'Internal Server Error' traceback."""
    causes: Counter = Counter()
    log = server_log(port0)
    lines = log.read_text(errors="replace").splitlines() if log.exists() else []
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
        self.pages: list[dict] = []  # report reads: page, status, when
        self.marks: dict[str, float] = {}  # chaos events: name -> time.time()

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
            location = next((v for k, v in http.last_headers if k.lower() == "location"), "")
            if status == 302 and "/accounts/login/" in location:
                self.error("signed out: redirected to the sign-in page")  # not an acknowledgement
                return 0, ""
            return status, body
        return 0, ""

    def read(self, http: Http, page: str, path: str):
        """A report page, fetched once (no retry): a 5xx or a dropped connection is a failed page."""
        start = time.perf_counter()
        try:
            status, body = http.request("GET", path, timeout=30)
        except (urllib.error.URLError, ConnectionError, TimeoutError, OSError) as exc:
            status, body = 0, ""
            self.error(f"read {page}: connection: {type(exc).__name__}")
        with self.lock:
            if status:
                self.latencies.append(time.perf_counter() - start)
            self.pages.append({"page": page, "status": status, "ok": status == 200 and bool(body), "t": time.time()})

    def error(self, kind: str):
        with self.lock:
            self.errors[kind] += 1

    def add(self, op: dict):
        with self.lock:
            self.ops.append(op)
            if op.get("acked"):
                self.acked[op["kind"]] += 1


def seed():
    from django.contrib.auth.hashers import make_password

    from orgs.models import User
    from orgs.services import membership_add, org_create, user_create
    from wallets.services import org_credit_from_stripe

    password = "soak-password-123"
    owner = user_create(email="soak-owner@example.com", password=None)
    org = org_create(name="Soak Org", owner=owner)
    admins = [user_create(email=f"soak-admin{i}@example.com", password=None) for i in range(3)]
    for a in admins:
        membership_add(org=org, user=a, role="admin")
    members = []
    for i in range(30):
        u = user_create(email=f"soak-member{i}@example.com", password=None)
        members.append(membership_add(org=org, user=u, role="member"))
    hashed = make_password(password)  # hashed once, not 34 times
    User.objects.filter(email__startswith="soak-").update(password=hashed)
    for user in [owner, *admins, *(m.user for m in members)]:
        user.password = hashed  # the session hash (sign_in) is derived from it
    org_credit_from_stripe(org=org, amount=10**9, memo="soak funding", idempotency_key="soak:funding")
    return org, owner, admins, members


# Report reads (SOAK_READS of the operations): page, weight, path after /orgs/<slug>/.
READ_PAGES = [
    ("transactions", 5, "transactions/"),
    ("chart", 3, "billing/balance-chart/"),
    ("csv", 2, "transactions/export.csv"),
]


def run_client(n: int, rec: Recorder, ctx: dict):
    import random
    import uuid

    rnd = random.Random(n)
    org, members = ctx["org"], ctx["members"]
    port0, reads = ctx.get("port", PORT), ctx.get("reads", 0.0)
    base = f"http://{HOST}:{port0 + n % 2}"
    admin = Http(base)
    admin.sign_in(ctx["admins"][n % len(ctx["admins"])])
    reader = None
    if reads:  # the admin's session in a tab that only reads: never pinned to the primary by a write
        from django.conf import settings

        reader = admin.same_session((settings.SESSION_COOKIE_NAME, settings.CSRF_COOKIE_NAME))
    second_admin = Http(f"http://{HOST}:{port0 + (n + 1) % 2}")
    second_admin.sign_in(ctx["admins"][(n + 1) % len(ctx["admins"])])
    member_ms = members[n % len(members)]
    member = Http(base)
    member.sign_in(member_ms.user)
    slug = org.slug
    ctx["start"].wait(timeout=300)  # every client signed in: the clock starts (see run)
    deadline = ctx["deadline"]
    while time.time() < deadline:
        if reader is not None and rnd.random() < reads:
            page, _weight, path = rnd.choices(READ_PAGES, weights=[w for _p, w, _ in READ_PAGES])[0]
            rec.read(reader, page, f"/orgs/{slug}/{path}")
            continue
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
                    target = Http(f"http://{HOST}:{port0 + (n + c) % 2}")
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


def run_client_logged(n: int, rec: Recorder, ctx: dict):
    """run_client; a client that crashes is reported, not lost in a thread's traceback."""
    try:
        run_client(n, rec, ctx)
    except Exception as exc:
        ctx["start"].abort()
        rec.error(f"client crashed: {type(exc).__name__}: {str(exc)[:80]}")
        with rec.lock:
            rec.marks[f"client {n} crashed"] = time.time()
        raise


def chaos(procs, url: str, at: float, rec: Recorder):
    """Midway: kill -9 one gunicorn worker, and terminate PostgreSQL backends of the app."""
    time.sleep(max(0.0, at - time.time()))
    rec.marks["chaos"] = time.time()
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


def run(
    url: str,
    *,
    app_env: dict | None = None,
    chaos_fn=None,
    reads: float = 0.0,
    port: int = PORT,
    seconds: float = SECONDS,
    clients: int = CLIENTS,
    chaos_causes: tuple[str, ...] = CHAOS_CAUSES,
    pages_must_answer: bool = False,
) -> dict:
    """The soak against a database Django is already set up on (`url`, as the checks read it): seed, two
    gunicorns (their database settings from `app_env`, else `url`), `clients` clients for `seconds`,
    `chaos_fn(procs, rec)` in a thread of its own (default: `chaos` midway), then the checks. Returns the
    figures and the problems found; a 500 whose cause is not in `chaos_causes` is a problem, and so is a report
    page that did not answer when `pages_must_answer` (reads are not retried: this soak's chaos may fail one)."""
    reset_ledger()
    org, _owner, admins, members = seed()
    from django.db import connection

    connection.close()
    from django.conf import settings

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
        "STRIPE_API_BASE": f"http://{HOST}:{port}/stripe-standin",
        "STRIPE_STANDIN_AUTODELIVER": "false",
        "SECRET_KEY": settings.SECRET_KEY,  # this process's: sign_in makes the sessions here
        "PGAPPNAME": "credits-app",
        **(app_env or {}),
    }
    env.pop("STRIPE_SECRET_KEY", None)
    rec = Recorder()
    ctx = {"org": org, "admins": admins, "members": members, "port": port, "reads": reads}

    def clock():  # run by the last thread to reach the barrier, before any is released
        ctx["started"] = time.time()
        ctx["deadline"] = ctx["started"] + seconds

    # Signing in (password hashing) is slow and not what the soak measures: the clock starts once every
    # client has signed in, and the chaos thread waits for it too.
    ctx["start"] = threading.Barrier(clients + 1, action=clock)
    procs = start_servers(env, port)
    if chaos_fn is None:

        def chaos_fn(procs, rec):
            chaos(procs, url, ctx["started"] + seconds / 2, rec)

    def run_chaos():
        ctx["start"].wait(timeout=300)
        chaos_fn(procs, rec)

    try:
        threads = [threading.Thread(target=run_client_logged, args=(i, rec, ctx)) for i in range(clients)]
        chaos_thread = threading.Thread(target=run_chaos)
        for t in [*threads, chaos_thread]:
            t.start()
        for t in [*threads, chaos_thread]:
            t.join(timeout=seconds + 300)
    finally:
        stop_servers(procs)
    started = ctx.get("started", time.time())
    elapsed = time.time() - started
    from django.core.management import call_command

    problems = []
    try:
        call_command("verify_ledger", stdout=sys.stdout)
        ledger_verified = True
    except Exception as exc:  # report, do not hide
        ledger_verified = False
        problems.append(f"verify_ledger FAILED: {exc}")
    problems += check(ctx, rec)
    problems += [f"{k} ({v - started:.1f} s in)" for k, v in rec.marks.items() if k.startswith("client")]
    causes = server_errors(port)
    problems += [
        f"server 500 not caused by the chaos: {c} x{n}" for c, n in causes.items() if not c.startswith(chaos_causes)
    ]
    failed_pages = [p for p in rec.pages if not p["ok"]]
    if pages_must_answer:
        problems += [f"page {p['page']} failed: status {p['status']}" for p in failed_pages[:10]]
    total = len(rec.latencies)
    return {
        "clients": clients,
        "seconds": seconds,
        "elapsed": elapsed,
        "requests": total,
        "req_per_s": total / elapsed,
        "p50_ms": percentile(rec.latencies, 50) * 1000,
        "p99_ms": percentile(rec.latencies, 99) * 1000,
        "acked": dict(rec.acked),
        "operations": dict(Counter(o["kind"] for o in rec.ops)),
        "errors": dict(rec.errors),
        "server_500s": dict(causes),
        "pages": dict(Counter(p["page"] for p in rec.pages)),
        "pages_failed": len(failed_pages),
        "page_times": [(p["t"], p["ok"]) for p in rec.pages],
        "marks": dict(rec.marks),
        "ledger_verified": ledger_verified,
        "problems": problems,
    }


def report(result: dict, title: str) -> None:
    """Print the figures; exit 1 with the problems if there are any."""
    print(title)
    print(
        f"requests: {result['requests']:,} in {result['elapsed']:.1f}s = {result['req_per_s']:,.1f} req/s; "
        f"p50 {result['p50_ms']:.1f} ms, p99 {result['p99_ms']:.1f} ms"
    )
    print("acknowledged operations: " + ", ".join(f"{k} {v}" for k, v in sorted(result["acked"].items())))
    print("operations: " + ", ".join(f"{k} {v}" for k, v in sorted(result["operations"].items())))
    if result["pages"]:
        print(
            "report pages: "
            + ", ".join(f"{k} {v}" for k, v in sorted(result["pages"].items()))
            + f"; failed {result['pages_failed']}"
        )
    errors = result["errors"]
    print("errors and retries by kind: " + (", ".join(f"{k}: {v}" for k, v in sorted(errors.items())) or "none"))
    causes = Counter(result["server_500s"])
    print("server 500s by cause: " + (", ".join(f"{c} x{n}" for c, n in causes.most_common()) or "none"))
    if result["problems"]:
        print("PROBLEMS:\n  " + "\n  ".join(result["problems"]))
        raise SystemExit(1)
    print("exactly once: every acknowledged operation applied once, nothing applied twice, no partial bulk transfer")


def main():
    os.environ["PGAPPNAME"] = "soak-checker"  # the chaos step terminates only the app servers' backends
    url = setup("credits_soak")
    reads = float(os.environ.get("SOAK_READS", 0))
    result = run(url, reads=reads)
    report(
        result,
        f"soak: {CLIENTS} clients x {SECONDS:.0f}s against 2 gunicorn instances (2 workers each), one PostgreSQL"
        + (f", {reads:.0%} report reads" if reads else ""),
    )


if __name__ == "__main__":
    main()
