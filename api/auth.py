"""Bearer authentication with org API keys, scope checks and a per-key rate limit."""

from __future__ import annotations

from datetime import timedelta

from django.conf import settings
from django.db import connection
from django.utils import timezone
from ninja.security import HttpBearer

from api.errors import ApiProblem
from apikeys.models import ApiKey, parse_token
from core.logcontext import bind_log_context
from core.ratelimit import database_count, hit

LAST_USED_RESOLUTION = timedelta(minutes=1)  # write last_used_at at most once a minute per key
RATE_WINDOW_SECONDS = 60
RATE_SCOPE = "api-key"  # counted per key: its public lookup is the identity


class ApiKeyAuth(HttpBearer):
    """`Authorization: Bearer crd_…`. The key is read from the database on every request, so a
    revoked key fails at once (no cache to go stale)."""

    def __call__(self, request):
        header = request.headers.get("Authorization", "")
        if not header:
            raise ApiProblem(
                401,
                "unauthenticated",
                "Send an API key: Authorization: Bearer <key>.",
                headers={"WWW-Authenticate": "Bearer"},
            )
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise ApiProblem(
                401,
                "unauthenticated",
                "Use the Bearer scheme: Authorization: Bearer <key>.",
                headers={"WWW-Authenticate": "Bearer"},
            )
        return self.authenticate(request, token.strip())

    def authenticate(self, request, token: str) -> ApiKey:
        parsed = parse_token(token)
        limit = settings.API_RATE_LIMIT_PER_MINUTE
        # With the counters in the database (the default cache), the statement that reads the key also counts the
        # request against the key's limit: one round trip for both (apikeys/models.py, ApiKeyManager.authenticate).
        count = (
            database_count(RATE_SCOPE, parsed[0], count=limit, seconds=RATE_WINDOW_SECONDS, using=connection.alias)
            if parsed is not None and limit > 0
            else None
        )
        key, used = ApiKey.objects.authenticate(*parsed, count) if parsed is not None else (None, None)
        if key is None:
            raise ApiProblem(
                401,
                "invalid_api_key",
                "This API key is not valid.",
                headers={"WWW-Authenticate": 'Bearer error="invalid_token"'},
            )
        if not key.is_active:
            raise ApiProblem(
                401,
                "api_key_revoked",
                "This API key was revoked. Ask an org admin for a new one.",
                headers={"WWW-Authenticate": 'Bearer error="invalid_token"'},
            )
        # From here on the request's log lines name the key (its public prefix) and its org (loaded with it).
        bind_log_context(user_id=f"key:{key.display_prefix}", org_id=key.org.slug)
        if count is not None and used is not None:
            _refuse_over_limit(count.verdict(used), limit)
        else:
            check_rate_limit(key)
        now = timezone.now()
        if key.last_used_at is None or now - key.last_used_at >= LAST_USED_RESOLUTION:
            ApiKey.objects.filter(pk=key.pk).update(last_used_at=now)
            key.last_used_at = now
        return key


def check_rate_limit(key: ApiKey) -> None:
    """A one-minute window per key (core.ratelimit, shared wherever the cache is shared), counted on its own."""
    limit = settings.API_RATE_LIMIT_PER_MINUTE
    if limit > 0:
        _refuse_over_limit(hit(RATE_SCOPE, key.lookup, count=limit, seconds=RATE_WINDOW_SECONDS), limit)


def _refuse_over_limit(retry_after: int | None, limit: int) -> None:
    if retry_after is not None:
        raise ApiProblem(
            429,
            "rate_limited",
            f"Too many requests for this API key: at most {limit} a minute. Retry in {retry_after} s.",
            headers={"Retry-After": str(retry_after)},
            limit=limit,
            retry_after=retry_after,
        )


def require_scope(key: ApiKey, scope: str) -> None:
    if not key.allows(scope):
        raise ApiProblem(
            403,
            "insufficient_scope",
            f"This API key has the “{key.get_scope_display()}” scope; this call needs “{scope}”.",
            required_scope=scope,
            key_scope=key.scope,
        )
