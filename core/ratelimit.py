"""Fixed-window rate limits (429 with a readable page): per user for money-moving POSTs and credit requests,
per address and per client IP for the emails anonymous forms send."""

import functools
import hashlib
import time

from django.conf import settings
from django.core.cache import cache
from django.shortcuts import render


def rate_limited(setting_name: str):
    """Allow `count` POSTs per `seconds` per signed-in user for the view; GETs are never limited."""

    def decorator(view):
        @functools.wraps(view)
        def wrapped(request, *args, **kwargs):
            if request.method == "POST" and request.user.is_authenticated:
                count, seconds = getattr(settings, setting_name)
                window = int(time.time() // seconds)
                key = f"rl:{setting_name}:{request.user.pk}:{window}"
                cache.add(key, 0, timeout=seconds + 1)
                try:
                    used = cache.incr(key)
                except ValueError:  # evicted between add and incr
                    cache.set(key, 1, timeout=seconds + 1)
                    used = 1
                if used > count:
                    retry_after = int(seconds - time.time() % seconds) + 1
                    response = render(request, "429.html", {"retry_after": retry_after}, status=429)
                    response["Retry-After"] = str(retry_after)
                    return response
            return view(request, *args, **kwargs)

        return wrapped

    return decorator


# ---- The same fixed windows, counted against any identity (an address, a client IP), for views that
# ---- cannot use the per-user decorator (anonymous forms such as sign-up and password reset).


def hit(setting_name: str, identity: str) -> int | None:
    """Count one event for `identity` against settings.<setting_name> = (count, seconds). Returns None while
    within the limit, else the seconds until the window ends (for Retry-After)."""
    count, seconds = getattr(settings, setting_name)
    now = time.time()
    window = int(now // seconds)
    # Hashed: any string (an email address) makes a short key any cache backend accepts, and none is stored.
    digest = hashlib.sha256(identity.encode()).hexdigest()[:32]
    key = f"rl:{setting_name}:{digest}:{window}"
    cache.add(key, 0, timeout=seconds + 1)
    try:
        used = cache.incr(key)
    except ValueError:  # evicted between add and incr
        cache.set(key, 1, timeout=seconds + 1)
        used = 1
    if used > count:
        return int(seconds - now % seconds) + 1
    return None


def too_many_requests(request, retry_after: int):
    """The readable 429 page with Retry-After (what the decorator answers)."""
    response = render(request, "429.html", {"retry_after": retry_after}, status=429)
    response["Retry-After"] = str(retry_after)
    return response


def client_ip(request) -> str:
    """The client's IP as the sign-in lockout (django-axes) sees it, so both agree behind a proxy
    (AXES_CLIENT_IP_CALLABLE); REMOTE_ADDR by default."""
    from axes.helpers import get_client_ip_address

    return get_client_ip_address(request) or "unknown"
