"""Fixed-window rate limits, one counter for every caller: per user for money-moving POSTs and credit
requests, per address and per client IP for the emails anonymous forms send, per key for the JSON API.

Counts live in Django's default cache, which every process must share, or N processes admit N times each
limit: by default the database cache (table `credits_cache`, made by core's migration), or Redis with
CACHE_URL=redis://…. A per-process cache (locmem, dummy) with DEBUG off is warned about at start-up
(core/apps.py). On the database cache one counter's read and write are made atomic by a PostgreSQL advisory
lock on that counter (Django's DatabaseCache.incr is a get then a set, which two processes can interleave).
"""

import functools
import hashlib
import time

from axes.helpers import get_client_ip_address
from django.conf import settings
from django.core.cache import caches
from django.core.cache.backends.base import BaseCache
from django.core.cache.backends.db import DatabaseCache
from django.db import connections, router, transaction
from django.shortcuts import render

# pg_advisory_xact_lock(class, id): the class keeps the rate limiter's locks apart from any other user's.
_LOCK_CLASS = 0x726C  # "rl"


def _count(cache: BaseCache, key: str, timeout: int) -> int:
    """Add one to the counter `key` (made at 0 if missing) and return it; atomic on caches whose add and
    incr are (locmem, Redis)."""
    cache.add(key, 0, timeout=timeout)
    try:
        return cache.incr(key)
    except ValueError:  # evicted between add and incr
        cache.set(key, 1, timeout=timeout)
        return 1


def _count_in_database(cache: DatabaseCache, key: str, timeout: int) -> int:
    """_count on the database cache, serialised per counter across processes by a transaction-scoped
    advisory lock: the read and the write of one counter never interleave with another process's."""
    alias = router.db_for_write(cache.cache_model_class)
    lock_id = int.from_bytes(hashlib.sha256(key.encode()).digest()[:4], "big", signed=True)
    with transaction.atomic(using=alias):
        with connections[alias].cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(%s::int4, %s::int4)", [_LOCK_CLASS, lock_id])
        used = (cache.get(key) or 0) + 1
        cache.set(key, used, timeout=timeout)
    return used


def hit(scope: str, identity: str, *, count: int, seconds: int) -> int | None:
    """Count one event for `identity` in `scope`: None while within `count` per `seconds`, else the
    seconds until the window ends (for Retry-After)."""
    now = time.time()
    window = int(now // seconds)
    # Hashed: any string (an email address) makes a short key any cache backend accepts, and none is stored.
    digest = hashlib.sha256(identity.encode()).hexdigest()[:32]
    key = f"rl:{scope}:{digest}:{window}"
    cache = caches["default"]
    if isinstance(cache, DatabaseCache):
        used = _count_in_database(cache, key, seconds + 1)
    else:
        used = _count(cache, key, seconds + 1)
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
