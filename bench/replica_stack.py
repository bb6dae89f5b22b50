"""A primary, a streaming replica and PgBouncer on this machine, for the soak and its CI test.

`stack()` is a context manager: it makes a temporary directory under /tmp, initdb's a primary
(PostgreSQL 15 from /usr/lib/postgresql/15/bin, or PG_BINDIR), clones a hot-standby replica from it
with pg_basebackup -R, and starts PgBouncer (Debian's 1.18, transaction pooling) in front of both:
database `credits` goes to the primary, `credits_replica` to the replica. Everything listens on
127.0.0.1 only, on ports base, base+1 and base+2 (STACK_PORT, default 25440; the first free three from there,
10 apart: see `_free_base`). Run as root, the
servers run as user postgres (initdb and PgBouncer refuse root). On exit, also after an error,
Ctrl-C or SIGTERM, everything is stopped and the directory removed.

PgBouncer 1.18 has no protocol-level prepared statements, so the app behind it runs with
LEDGER_PREPARED_STATEMENTS=false (`Stack.app_env`). It also rejects unknown startup parameters: it
ignores `options` (where the app sends lock_timeout), so the script sets lock_timeout on the database.

    python bench/replica_stack.py          # start it, check it, stop it (what `make bench` runs)
    python bench/replica_stack.py --hold   # start it, print the URLs, wait for Ctrl-C
"""

import contextlib
import os
import pwd
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

BINDIR = Path(os.environ.get("PG_BINDIR", "/usr/lib/postgresql/15/bin"))
PGBOUNCER = os.environ.get("PGBOUNCER", shutil.which("pgbouncer") or "/usr/sbin/pgbouncer")
HOST = "127.0.0.1"
DBNAME = "credits"
LOCK_TIMEOUT_MS = int(os.environ.get("LEDGER_LOCK_TIMEOUT_MS", 10_000))


@dataclass
class Stack:
    dir: Path
    primary_port: int
    replica_port: int
    bouncer_port: int
    _bouncer: subprocess.Popen | None = field(default=None, repr=False)
    replica_stopped: bool = False

    @property
    def primary_url(self) -> str:
        """The primary, directly (migrations, seeding, the soak's own checks)."""
        return f"postgres://postgres@{HOST}:{self.primary_port}/{DBNAME}"

    @property
    def replica_direct_url(self) -> str:
        """The replica, directly (its statistics)."""
        return f"postgres://postgres@{HOST}:{self.replica_port}/{DBNAME}"

    @property
    def app_url(self) -> str:
        """The primary through PgBouncer: the app's DATABASE_URL."""
        return f"postgres://postgres@{HOST}:{self.bouncer_port}/{DBNAME}"

    @property
    def app_replica_url(self) -> str:
        """The replica through PgBouncer: the app's DATABASE_REPLICA_URL."""
        return f"postgres://postgres@{HOST}:{self.bouncer_port}/{DBNAME}_replica"

    def app_env(self) -> dict[str, str]:
        return {
            "DATABASE_URL": self.app_url,
            "DATABASE_REPLICA_URL": self.app_replica_url,
            "LEDGER_PREPARED_STATEMENTS": "false",
        }

    def stop_replica(self) -> None:
        """Kill the replica the hard way (pg_ctl stop -m immediate), as a crash would."""
        _pg_ctl(self.dir / "replica", "stop", "-m", "immediate")
        self.replica_stopped = True

    def replica_commits(self) -> int:
        """xact_commit of the app's database on the replica (read-only transactions count there too)."""
        import psycopg

        url = self.replica_direct_url.replace("postgres://", "postgresql://", 1)
        with psycopg.connect(url, autocommit=True, application_name="stack-probe", connect_timeout=5) as conn:
            conn.execute("SELECT pg_stat_clear_snapshot()")
            return conn.execute("SELECT xact_commit FROM pg_stat_database WHERE datname = %s", [DBNAME]).fetchone()[0]

    def replica_lag_bytes(self) -> int:
        import psycopg

        url = self.primary_url.replace("postgres://", "postgresql://", 1)
        with psycopg.connect(url, autocommit=True, application_name="stack-probe") as conn:
            row = conn.execute(
                "SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), replay_lsn) FROM pg_stat_replication"
            ).fetchone()
            return -1 if row is None or row[0] is None else int(row[0])

    def bouncer_stats(self) -> dict[str, int]:
        """PgBouncer's SHOW STATS: transactions served per database."""
        import psycopg

        url = f"postgresql://postgres@{HOST}:{self.bouncer_port}/pgbouncer"
        with psycopg.connect(url, autocommit=True, prepare_threshold=None) as conn:
            cur = conn.cursor()
            cur.execute("SHOW STATS")
            cols = [c.name for c in cur.description]
            return {r[cols.index("database")]: int(r[cols.index("total_xact_count")]) for r in cur.fetchall()}


def _as_postgres() -> list[str]:
    return ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []


def _run(cmd: list, **kwargs) -> subprocess.CompletedProcess:
    proc = subprocess.run(_as_postgres() + [str(c) for c in cmd], capture_output=True, text=True, **kwargs)
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(map(str, cmd))} failed ({proc.returncode}):\n{proc.stdout}{proc.stderr}")
    return proc


def _pg_ctl(data: Path, *args: str) -> None:
    _run([BINDIR / "pg_ctl", "-D", data, *args])


def _start_pg(stack_dir: Path, name: str, port: int) -> None:
    data = stack_dir / name
    opts = f"-p {port} -k {stack_dir}"
    _run([BINDIR / "pg_ctl", "-D", data, "-l", stack_dir / f"{name}.log", "-o", opts, "-w", "-t", "60", "start"])


def _write(path: Path, text: str) -> None:
    path.write_text(text)
    if os.geteuid() == 0:
        pw = pwd.getpwnam("postgres")
        os.chown(path, pw.pw_uid, pw.pw_gid)


def _wait_replica_streaming(stack: Stack, timeout: float = 60) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        with contextlib.suppress(Exception):
            if stack.replica_lag_bytes() >= 0:
                return
        time.sleep(0.3)
    raise RuntimeError("the replica did not start streaming")


def _start_bouncer(stack: Stack, pool_size: int) -> subprocess.Popen:
    d = stack.dir
    _write(d / "userlist.txt", '"postgres" ""\n')
    _write(
        d / "pgbouncer.ini",
        f"""[databases]
{DBNAME} = host={HOST} port={stack.primary_port} dbname={DBNAME}
{DBNAME}_replica = host={HOST} port={stack.replica_port} dbname={DBNAME}

[pgbouncer]
listen_addr = {HOST}
listen_port = {stack.bouncer_port}
unix_socket_dir =
auth_type = trust
auth_file = {d}/userlist.txt
admin_users = postgres
pool_mode = transaction
default_pool_size = {pool_size}
max_client_conn = 1000
ignore_startup_parameters = extra_float_digits,options
server_login_retry = 1
server_connect_timeout = 3
query_wait_timeout = 3
logfile = {d}/pgbouncer.log
pidfile = {d}/pgbouncer.pid
""",
    )
    proc = subprocess.Popen(
        [*_as_postgres(), PGBOUNCER, str(d / "pgbouncer.ini")],
        stdout=subprocess.DEVNULL,
        stderr=(d / "pgbouncer.stderr").open("w"),
        start_new_session=True,
    )
    import psycopg

    deadline = time.time() + 20
    while time.time() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"pgbouncer exited: {(d / 'pgbouncer.stderr').read_text()}")
        try:
            psycopg.connect(stack.app_url.replace("postgres://", "postgresql://", 1), connect_timeout=2).close()
            return proc
        except psycopg.OperationalError:
            time.sleep(0.2)
    raise RuntimeError("pgbouncer did not come up")


def _stop_bouncer(proc: subprocess.Popen) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=5)


def _free_base(base: int, tries: int = 20) -> int:
    """The first of base, base+10, ... whose three ports can be bound on HOST now. The default sits below Linux's
    ephemeral range (32768-60999): a port in that range can be held by any client connection on the machine (or
    linger in TIME_WAIT after it), and the server then fails to start with "Address already in use". That happened
    with 55440, right after a soak whose clients had used it."""
    for candidate in range(base, base + 10 * tries, 10):
        with contextlib.ExitStack() as held:
            try:
                for port in range(candidate, candidate + 3):
                    sock = held.enter_context(socket.socket(socket.AF_INET, socket.SOCK_STREAM))
                    sock.bind((HOST, port))
            except OSError:
                continue
        return candidate
    raise SystemExit(f"no three free ports on {HOST} from {base} (every 10, {tries} tries)")


@contextlib.contextmanager
def stack(base_port: int | None = None, pool_size: int = 20):
    """Primary, replica and PgBouncer, up for the duration of the block; see the module docstring."""
    base = _free_base(base_port or int(os.environ.get("STACK_PORT", 25440)))
    for tool in (BINDIR / "initdb", Path(PGBOUNCER)):
        if not tool.exists():
            raise SystemExit(f"{tool} is missing (make pgbouncer installs PgBouncer; PostgreSQL 15 is the machine's)")
    stack_dir = Path(tempfile.mkdtemp(prefix="credits-stack-", dir="/tmp"))
    if os.geteuid() == 0:
        pw = pwd.getpwnam("postgres")
        os.chown(stack_dir, pw.pw_uid, pw.pw_gid)
    s = Stack(stack_dir, base, base + 1, base + 2)
    started: list[str] = []
    # SIGTERM (a CI timeout, kill) unwinds like Ctrl-C, so the finally below still stops everything.
    previous = signal.getsignal(signal.SIGTERM)
    if threading_main():
        signal.signal(signal.SIGTERM, _raise_interrupt)
    try:
        # Throwaway clusters: no fsync of the initial files (-N, --no-sync); the servers themselves run with
        # PostgreSQL's defaults (fsync on), like the machine's own.
        _run([BINDIR / "initdb", "-N", "-D", stack_dir / "primary", "-U", "postgres", "-A", "trust", "-E", "UTF8"])
        with (stack_dir / "primary" / "postgresql.conf").open("a") as conf:
            conf.write(
                f"listen_addresses = '{HOST}'\nwal_level = replica\nmax_wal_senders = 4\nhot_standby = on\n"
                "max_connections = 200\nhot_standby_feedback = on\n"
            )
        with (stack_dir / "primary" / "pg_hba.conf").open("a") as hba:
            hba.write(f"host replication postgres {HOST}/32 trust\n")
        started.append("primary")  # before starting: an interrupt during pg_ctl start still stops it
        _start_pg(stack_dir, "primary", s.primary_port)
        _run([BINDIR / "psql", "-h", HOST, "-p", s.primary_port, "-U", "postgres", "-qc", f"CREATE DATABASE {DBNAME}"])
        _run(
            [
                BINDIR / "psql",
                "-h",
                HOST,
                "-p",
                s.primary_port,
                "-U",
                "postgres",
                "-qc",
                f"ALTER DATABASE {DBNAME} SET lock_timeout = {LOCK_TIMEOUT_MS}",
            ]
        )
        _run(
            [
                BINDIR / "pg_basebackup",
                *("-h", HOST, "-p", s.primary_port, "-U", "postgres"),
                *("-D", stack_dir / "replica", "-R", "-X", "stream", "-c", "fast", "--no-sync"),
            ]
        )
        started.append("replica")  # before starting: an interrupt during pg_ctl start still stops it
        _start_pg(stack_dir, "replica", s.replica_port)
        _wait_replica_streaming(s)
        s._bouncer = _start_bouncer(s, pool_size)
        yield s
    finally:
        if s._bouncer is not None:
            _stop_bouncer(s._bouncer)
        for name in reversed(started):  # throwaway data: no shutdown checkpoint
            if name == "replica" and s.replica_stopped:
                continue
            with contextlib.suppress(Exception):
                _pg_ctl(stack_dir / name, "stop", "-m", "immediate", "-t", "30")
        if threading_main():
            signal.signal(signal.SIGTERM, previous)
        if os.environ.get("STACK_KEEP_DIR"):
            print(f"stack: logs kept in {stack_dir}", file=sys.stderr)
        else:
            shutil.rmtree(stack_dir, ignore_errors=True)


def threading_main() -> bool:
    import threading

    return threading.current_thread() is threading.main_thread()


def _raise_interrupt(signum, frame):
    raise KeyboardInterrupt


def self_check(s: Stack) -> None:
    """What `make bench` runs: a write on the primary through PgBouncer reaches the replica, read through
    PgBouncer, and the replica's lock_timeout came with it."""
    import psycopg

    def conn(url):
        return psycopg.connect(url.replace("postgres://", "postgresql://", 1), autocommit=True)

    start = time.perf_counter()
    with conn(s.app_url) as primary, conn(s.app_replica_url) as replica:
        primary.execute("CREATE TABLE stack_check (n int)")
        primary.execute("INSERT INTO stack_check VALUES (42)")
        deadline = time.time() + 10
        while True:
            with contextlib.suppress(psycopg.errors.UndefinedTable):
                if replica.execute("SELECT n FROM stack_check").fetchone() == (42,):
                    break
            if time.time() > deadline:
                raise SystemExit("the replica did not replay a write within 10 s")
            time.sleep(0.05)
        lag_ms = (time.perf_counter() - start) * 1000
        in_recovery, lock_timeout = replica.execute(
            "SELECT pg_is_in_recovery(), current_setting('lock_timeout')"
        ).fetchone()
    assert in_recovery, "the replica entry does not reach the replica"
    print(
        f"stack: a write through PgBouncer was readable on the replica after {lag_ms:.0f} ms; "
        f"lock_timeout there {lock_timeout} (set on the database, PgBouncer drops the startup option)"
    )


if __name__ == "__main__":
    # `make bench` runs every script: without --hold this starts the stack, checks it and stops it.
    with stack() as s:
        print(f"primary  {s.primary_url}\nreplica  {s.replica_direct_url}\nbouncer  {s.app_url}  {s.app_replica_url}")
        print("app env: " + " ".join(f"{k}={v}" for k, v in s.app_env().items()))
        self_check(s)
        if "--hold" in sys.argv:
            print("running; Ctrl-C stops and removes it")
            with contextlib.suppress(KeyboardInterrupt):
                signal.pause()
