"""Per-user fixed-window rate limits for money-moving POSTs and credit requests (429 with a readable page)."""

import functools
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
