"""Fixed-window rate limits, one counter for every caller: per user for money-moving POSTs and credit
requests, per address and per client IP for the emails anonymous forms send, per key for the JSON API.

Counts live in Django's cache, so they are shared by every process that shares the cache (set CACHE_URL
to the database cache or Redis in production; the default in-memory cache counts per process).
"""

import functools
import hashlib
import time

from axes.helpers import get_client_ip_address
from django.conf import settings
from django.core.cache import cache
from django.shortcuts import render


def hit(scope: str, identity: str, *, count: int, seconds: int) -> int | None:
    """Count one event for `identity` in `scope`: None while within `count` per `seconds`, else the
    seconds until the window ends (for Retry-After)."""
    now = time.time()
    window = int(now // seconds)
    # Hashed: any string (an email address) makes a short key any cache backend accepts, and none is stored.
    digest = hashlib.sha256(identity.encode()).hexdigest()[:32]
    key = f"rl:{scope}:{digest}:{window}"
    cache.add(key, 0, timeout=seconds + 1)
    try:
        used = cache.incr(key)
    except ValueError:  # evicted between add and incr
        cache.set(key, 1, timeout=seconds + 1)
        used = 1
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
