"""Read replica: which database a page's reporting reads go to, and read-your-writes pinning.

With DATABASE_REPLICA_URL set, config/settings.py adds a "replica" database alias. Nothing routes to it on
its own (there is no DATABASE_ROUTERS entry): a read opts in by asking `read_alias(request)` and passing the
answer down as `using=`. Only reports do (the Transactions list, its CSV export, the balance chart); money
movements, balances shown in money dialogs and permission checks always read "default", the primary.

`read_alias` answers "default" when
- no replica is configured, or REPLICA_READS is off;
- the request is pinned: the same browser sent a POST/PUT/PATCH/DELETE as a signed-in user less than
  REPLICA_PIN_SECONDS ago (ReadYourWritesMiddleware sets a short signed cookie), or this request is one;
- the replica is unhealthy: unreachable, or more than REPLICA_MAX_LAG_SECONDS behind the primary.

Health is checked per process at most every REPLICA_CHECK_SECONDS, on the replica alias's own connection
(its connect_timeout keeps a dead host short). A change of state logs one warning on "credits.replica"; the
page never sees an exception. A replica that fails during a read (killed mid-request) is handled by
`run_read` and `stream_read`: the read is marked unhealthy, logged, and run again on the primary.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Callable, Iterator

import psycopg
from django.conf import settings
from django.db import DEFAULT_DB_ALIAS, DatabaseError, InterfaceError, OperationalError, connections
from django.http import HttpRequest, HttpResponse

REPLICA = "replica"
PIN_COOKIE = "credits_rw_pin"
_PIN_SALT = "core.replica.pin"
_UNSAFE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
# What a lost or failing replica raises: Django's wrappers, and psycopg's own from a raw cursor (COPY).
READ_ERRORS = (OperationalError, InterfaceError, psycopg.OperationalError, psycopg.InterfaceError)

# Seconds behind the primary. An idle replica that has replayed everything keeps an old replay timestamp,
# so the received and replayed positions are compared first: equal means caught up, whatever the clock. Behind
# with no transaction replayed yet since the replica started, the lag is unknown (NULL): counted as too much.
LAG_SQL = (
    "SELECT CASE WHEN NOT pg_is_in_recovery() OR pg_last_wal_receive_lsn() = pg_last_wal_replay_lsn() THEN 0"
    " ELSE extract(epoch FROM now() - pg_last_xact_replay_timestamp()) END"
)

logger = logging.getLogger("credits.replica")


def replica_enabled() -> bool:
    """A replica alias exists (DATABASE_REPLICA_URL) and replica reads are on (REPLICA_READS)."""
    return REPLICA in settings.DATABASES and getattr(settings, "REPLICA_READS", True)


# --- health --------------------------------------------------------------------------------------------


class _Health:
    """This process's view of the replica: its state ("ok", "lagging", "down", or "" before the first
    check) and when it was last checked. One thread re-checks; the others use the last answer meanwhile."""

    def __init__(self) -> None:
        self.state = ""
        self.checked_at = float("-inf")
        self.lock = threading.Lock()

    def reset(self) -> None:
        self.state = ""
        self.checked_at = float("-inf")


_health = _Health()


def measure_lag() -> float:
    """Seconds the replica is behind the primary (0 when caught up, infinity when behind by an unknown amount).
    Raises what the connection raises."""
    with connections[REPLICA].cursor() as cursor:
        cursor.execute(LAG_SQL)
        row = cursor.fetchone()
    return float(row[0]) if row and row[0] is not None else float("inf")


def _close_replica() -> None:
    """Drop the replica connection after an error, so the next use opens a fresh one."""
    with contextlib.suppress(DatabaseError):
        connections[REPLICA].close()


def _set_state(state: str, detail: str) -> None:
    """Record the state; log one line when it changed (not on every check)."""
    previous, _health.state = _health.state, state
    if state == previous:
        return
    if state == "ok":
        if previous:  # not the first check of the process: the replica is back
            logger.warning("replica healthy again, reports read from it (%s)", detail)
    else:
        logger.warning("replica %s, reports read from the primary: %s", state, detail)


def check_replica() -> str:
    """Measure the replica now and record its state: "ok", "lagging" or "down"."""
    limit = float(settings.REPLICA_MAX_LAG_SECONDS)
    try:
        lag = measure_lag()
    except (DatabaseError, psycopg.Error) as exc:
        _close_replica()
        _set_state("down", f"{type(exc).__name__}: {exc}".strip())
    else:
        if lag > limit:
            behind = f"{lag:.1f} s behind" if lag != float("inf") else "behind, nothing replayed since it started"
            _set_state("lagging", f"{behind}, limit {limit:g} s")
        else:
            _set_state("ok", f"{lag:.1f} s behind")
    _health.checked_at = time.monotonic()
    return _health.state


def replica_healthy() -> bool:
    """The cached health, re-checked when older than REPLICA_CHECK_SECONDS. Never raises."""
    now = time.monotonic()
    if now - _health.checked_at >= float(settings.REPLICA_CHECK_SECONDS) and _health.lock.acquire(blocking=False):
        try:
            if now - _health.checked_at >= float(settings.REPLICA_CHECK_SECONDS):
                check_replica()
        finally:
            _health.lock.release()
    return _health.state == "ok"


def mark_unhealthy(exc: BaseException) -> None:
    """A read on the replica failed mid-request: stop using it until the next check says otherwise."""
    _close_replica()
    _set_state("down", f"a read failed: {type(exc).__name__}: {exc}".strip())
    _health.checked_at = time.monotonic()


# --- which alias ------------------------------------------------------------------------------------


def is_pinned(request: HttpRequest) -> bool:
    """This request writes, or the same browser wrote less than REPLICA_PIN_SECONDS ago."""
    if request.method in _UNSAFE_METHODS:
        return True
    pin = request.get_signed_cookie(PIN_COOKIE, default=None, salt=_PIN_SALT, max_age=settings.REPLICA_PIN_SECONDS)
    return pin is not None


def read_alias(request: HttpRequest) -> str:
    """ "replica" when a report on this request may read the replica, else "default" (the primary)."""
    if not replica_enabled() or is_pinned(request) or not replica_healthy():
        return DEFAULT_DB_ALIAS
    return REPLICA


def run_read[T](alias: str, read: Callable[[str], T]) -> T:
    """`read(alias)`; if the replica fails during it, mark the replica unhealthy and `read("default")`."""
    if alias == DEFAULT_DB_ALIAS:
        return read(alias)
    try:
        return read(alias)
    except READ_ERRORS as exc:
        mark_unhealthy(exc)
        return read(DEFAULT_DB_ALIAS)


def stream_read[T](alias: str, make: Callable[[str], Iterator[T]]) -> Iterator[T]:
    """The items of `make(alias)`, for a streamed response. If the replica fails before the first item, the
    whole stream comes from `make("default")`. After the first item has been sent nothing can be taken back:
    a failure then ends the stream with the error (the download is cut short, never silently wrong)."""
    if alias == DEFAULT_DB_ALIAS:
        yield from make(alias)
        return
    items = make(alias)
    try:
        first = next(items)
    except StopIteration:
        return
    except READ_ERRORS as exc:
        mark_unhealthy(exc)
        yield from make(DEFAULT_DB_ALIAS)
        return
    yield first
    try:
        yield from items
    except READ_ERRORS as exc:
        mark_unhealthy(exc)
        raise


# --- read-your-writes ------------------------------------------------------------------------------------


class ReadYourWritesMiddleware:
    """After a POST/PUT/PATCH/DELETE by a signed-in user, pin that browser's reads to the primary for
    REPLICA_PIN_SECONDS with a signed, HttpOnly cookie (no session write). The API (no cookies) does not
    need it: its list endpoints read the primary. Goes after AuthenticationMiddleware."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        if request.method in _UNSAFE_METHODS and replica_enabled():
            user = getattr(request, "user", None)
            if user is not None and user.is_authenticated:
                response.set_signed_cookie(
                    PIN_COOKIE,
                    "1",
                    salt=_PIN_SALT,
                    max_age=settings.REPLICA_PIN_SECONDS,
                    httponly=True,
                    samesite="Lax",
                    secure=settings.SESSION_COOKIE_SECURE,
                )
        return response
