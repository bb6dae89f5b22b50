"""Fixed-window rate limits, one counter for every caller: per user for money-moving POSTs and credit
requests, per address and per client IP for the emails anonymous forms send, per key for the JSON API.

Counts must be shared by every process, or N processes admit N times each limit. With the default cache (the
database cache) they live in PostgreSQL, in the UNLOGGED table `core_ratelimit_counter` (core's migration 0002):
one row per identity, counted by one upsert (sql/ratelimit_hit.sql) whose row lock makes it exact across
processes and is held only for that statement, in autocommit (call `hit` outside a transaction, as the views
do, or the lock lasts until that transaction ends). A caller may make the count inside a statement of its own
(`database_count`, then `Count.verdict`): the API counts a key in the statement that looks the key up. With
CACHE_URL=redis://… they live in Redis (add, then incr: atomic there). A per-process cache (locmem, dummy) with
DEBUG off is warned about at start-up (core/apps.py).
"""

from __future__ import annotations

import functools
import hashlib
import time
from dataclasses import dataclass

from axes.helpers import get_client_ip_address
from django.conf import settings
from django.core.cache import caches
from django.core.cache.backends.base import BaseCache
from django.core.cache.backends.db import DatabaseCache
from django.db import connections, router
from django.shortcuts import render

from core.sql import load_sql

# The counter's upsert as the CTE `hit`, counting one event per row of a CTE `counted` the statement defines first.
HIT_CTE = load_sql(__file__, "ratelimit_hit.sql")
_HIT_SQL = f"WITH counted AS (SELECT 1), {HIT_CTE}SELECT hits FROM hit"
_PURGE_SQL = "DELETE FROM core_ratelimit_counter WHERE window_end < %s"


def _count(cache: BaseCache, key: str, timeout: int) -> int:
    """Add one to the counter `key` (made at 0 if missing) and return it; atomic on caches whose add and
    incr are (locmem, Redis)."""
    cache.add(key, 0, timeout=timeout)
    try:
        return cache.incr(key)
    except ValueError:  # evicted between add and incr
        cache.set(key, 1, timeout=timeout)
        return 1


def _count_in_database(counted: Count) -> int:
    """Add one to the counter in its current window and return it: one statement."""
    with connections[_database(counted.cache)].cursor() as cursor:
        cursor.execute(_HIT_SQL, counted.params)
        (used,) = cursor.fetchone()
    return used


def _database(cache: DatabaseCache) -> str:
    return router.db_for_write(cache.cache_model_class)


def _purge(cache: DatabaseCache, now: float) -> None:
    with connections[_database(cache)].cursor() as cursor:
        cursor.execute(_PURGE_SQL, [int(now)])


def _retry_after(used: int, count: int, seconds: int, now: float) -> int | None:
    if used > count:
        return max(1, int(seconds - now % seconds) + 1)
    return None


def _window(scope: str, identity: str, seconds: int) -> tuple[str, float, int]:
    """The counter's name (hashed: any string, an email address, makes a short key any cache backend accepts, and
    none is stored), the time now, and the current window's number."""
    now = time.time()
    return f"rl:{scope}:{hashlib.sha256(identity.encode()).hexdigest()[:32]}", now, int(now // seconds)


@dataclass(frozen=True)
class Count:
    """One count of an identity that the caller's own statement makes: the statement defines a CTE `counted`
    (one row: count; none: count nothing), then `HIT_CTE` with `params`, and reads `hit`'s `hits`. Pass what it
    read to `verdict`."""

    cache: DatabaseCache
    key: str
    window_end: int
    now: float
    count: int
    seconds: int

    @property
    def params(self) -> dict[str, str | int]:
        return {"rl_key": self.key, "rl_window_end": self.window_end}

    def verdict(self, used: int) -> int | None:
        """What `hit` answers for a count that reached `used`: None within the limit, else the seconds to wait.
        The first count of a window also drops the counters whose windows have ended."""
        if used == 1:
            _purge(self.cache, self.now)
        return _retry_after(used, self.count, self.seconds, self.now)


def _database_count(scope: str, identity: str, *, count: int, seconds: int) -> Count | None:
    cache = caches["default"]
    if not isinstance(cache, DatabaseCache):
        return None
    key, now, window = _window(scope, identity, seconds)
    return Count(cache, key, (window + 1) * seconds, now, count, seconds)


def database_count(scope: str, identity: str, *, count: int, seconds: int, using: str) -> Count | None:
    """The count `hit(scope, identity, ...)` would make, for a statement of the caller's on database `using` to
    make; None when the counters are not in that database (then call `hit`)."""
    counted = _database_count(scope, identity, count=count, seconds=seconds)
    if counted is None or _database(counted.cache) != using:
        return None
    return counted


def hit(scope: str, identity: str, *, count: int, seconds: int) -> int | None:
    """Count one event for `identity` in `scope`: None while within `count` per `seconds`, else the
    seconds until the window ends (for Retry-After)."""
    counted = _database_count(scope, identity, count=count, seconds=seconds)
    if counted is not None:
        return counted.verdict(_count_in_database(counted))
    key, now, window = _window(scope, identity, seconds)
    return _retry_after(_count(caches["default"], f"{key}:{window}", seconds + 1), count, seconds, now)


def hit_setting(setting_name: str, identity: str) -> int | None:
    """`hit` with the limits of settings.<setting_name> = (count, seconds)."""
    count, seconds = getattr(settings, setting_name)
    return hit(setting_name, identity, count=count, seconds=seconds)


def too_many_requests(request, retry_after: int):
    """The readable 429 page with Retry-After."""
    response = render(request, "429.html", {"retry_after": retry_after}, status=429)
    response["Retry-After"] = str(retry_after)
    return response


def rate_limited(setting_name: str):
    """Allow settings.<setting_name> = (count, seconds) POSTs per signed-in user for the view; GETs are
    never limited."""

    def decorator(view):
        @functools.wraps(view)
        def wrapped(request, *args, **kwargs):
            if request.method == "POST" and request.user.is_authenticated:
                retry_after = hit_setting(setting_name, f"user:{request.user.pk}")
                if retry_after is not None:
                    return too_many_requests(request, retry_after)
            return view(request, *args, **kwargs)

        return wrapped

    return decorator


def client_ip(request) -> str:
    """The client's IP as the sign-in lockout (django-axes) sees it, so both agree behind a proxy
    (AXES_CLIENT_IP_CALLABLE); REMOTE_ADDR by default."""
    return get_client_ip_address(request) or "unknown"
