"""Request context for logs: a request id, the user and the org on every log line, and one access line
per request. The request id is taken from X-Request-ID when a proxy sets a sane one, else minted.

The user and the org are bound before the view runs, so lines logged inside it (the ledger's
`money_movement`, errors) carry them as well as the access line:

- `user_id`: the signed-in user's id; for the JSON API, `key:<the key's public prefix>` once the key is
  checked (billing/api_auth.py binds it); `-` for anonymous requests.
- `org_id`: the org the request acts on, by slug: the URL's `org_slug` (the org of the page requested,
  whether or not the user may see it), or the API key's org; `-` for pages outside an org. A slug, not
  the numeric id, because that is what the request carries: resolving it would cost a query.
"""

import contextvars
import logging
import re
import time
import uuid

from django.db import DatabaseError

_context: contextvars.ContextVar[dict | None] = contextvars.ContextVar("request_context", default=None)
access_log = logging.getLogger("credits.request")
_SAFE_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")
_SAFE_SLUG = re.compile(r"^[A-Za-z0-9_-]{1,140}$")  # an org slug as URLs carry it; nothing else reaches a log line


class RequestContextFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        ctx = _context.get() or {}
        record.request_id = ctx.get("request_id", "-")
        record.user_id = ctx.get("user_id", "-")
        record.org_id = ctx.get("org_id", "-")
        return True


def bind_log_context(*, user_id=None, org_id=None) -> None:
    """Name who acts and on which org for the rest of the current request's log lines (no-op outside one)."""
    ctx = _context.get()
    if ctx is None:
        return
    if user_id is not None:
        ctx["user_id"] = user_id
    if org_id is not None:
        ctx["org_id"] = org_id


def _bind_user(request) -> None:
    """request.user, if signed in. The access line always read it, so this adds no query to a request; a
    database that is down must not turn the request (e.g. /healthz's 503) into a logging crash."""
    user = getattr(request, "user", None)
    try:
        if user is not None and user.is_authenticated:
            bind_log_context(user_id=user.pk)
    except DatabaseError:
        pass


class RequestContextMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        incoming = request.headers.get("X-Request-ID", "")
        request_id = incoming if _SAFE_ID.match(incoming) else uuid.uuid4().hex
        request.request_id = request_id
        token = _context.set({"request_id": request_id})
        started = time.perf_counter()
        try:
            response = self.get_response(request)
            # Signing in happens inside the view; signing out keeps the user bound before it.
            _bind_user(request)
            response["X-Request-ID"] = request_id
            access_log.info(
                "%s %s %s %.1fms",
                request.method,
                request.path,
                response.status_code,
                (time.perf_counter() - started) * 1000,
            )
            return response
        finally:
            _context.reset(token)

    def process_view(self, request, view_func, view_args, view_kwargs):
        _bind_user(request)
        slug = view_kwargs.get("org_slug")
        if isinstance(slug, str) and _SAFE_SLUG.match(slug):
            bind_log_context(org_id=slug)
