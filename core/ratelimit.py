"""Fixed-window rate limits, one counter for every caller: per user for money-moving POSTs and credit
requests, per address and per client IP for the emails anonymous forms send, per key for the JSON API.

Counts must be shared by every process, or N processes admit N times each limit. With the default cache (the
database cache) they live in PostgreSQL, in the UNLOGGED table `core_ratelimit_counter` (core's migration 0002):
one row per identity, counted by one upsert (sql/ratelimit_hit.sql) whose row lock makes it exact across
processes and is held only for that statement, in autocommit (call `hit` outside a transaction, as the views
and the API's auth do, or the lock lasts until that transaction ends). With CACHE_URL=redis://… they live in
Redis (add, then incr: atomic there). A per-process cache (locmem, dummy) with DEBUG off is warned about at
start-up (core/apps.py).
"""

import functools
import hashlib
import time

from axes.helpers import get_client_ip_address
from django.conf import settings
from django.core.cache import caches
from django.core.cache.backends.base import BaseCache
from django.core.cache.backends.db import DatabaseCache
from django.db import connections, router
from django.shortcuts import render

from core.sql import load_sql

_HIT_SQL = load_sql(__file__, "ratelimit_hit.sql")
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


def _count_in_database(cache: DatabaseCache, key: str, window_end: int, now: float) -> int:
    """Add one to the counter `key` in the current window (ending at `window_end`) and return it: one
    statement. The first count of a window also drops counters whose windows have ended."""
    alias = router.db_for_write(cache.cache_model_class)
    with connections[alias].cursor() as cursor:
        cursor.execute(_HIT_SQL, [key, window_end])
        (used,) = cursor.fetchone()
        if used == 1:
            cursor.execute(_PURGE_SQL, [int(now)])
    return used


def hit(scope: str, identity: str, *, count: int, seconds: int) -> int | None:
    """Count one event for `identity` in `scope`: None while within `count` per `seconds`, else the
    seconds until the window ends (for Retry-After)."""
    now = time.time()
    window = int(now // seconds)
    # Hashed: any string (an email address) makes a short key any cache backend accepts, and none is stored.
    digest = hashlib.sha256(identity.encode()).hexdigest()[:32]
    cache = caches["default"]
    if isinstance(cache, DatabaseCache):
        used = _count_in_database(cache, f"rl:{scope}:{digest}", (window + 1) * seconds, now)
    else:
        used = _count(cache, f"rl:{scope}:{digest}:{window}", seconds + 1)
    if used > count:
        return max(1, int(seconds - now % seconds) + 1)
    return None


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
