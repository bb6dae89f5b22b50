"""Request context for logs: a request id, the user and the org on every log line, and one access line
per request. The request id is taken from X-Request-ID when a proxy sets a sane one, else minted."""

import contextvars
import logging
import re
import time
import uuid

_context: contextvars.ContextVar[dict | None] = contextvars.ContextVar("request_context", default=None)
access_log = logging.getLogger("credits.request")
_SAFE_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")


class RequestContextFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        ctx = _context.get() or {}
        record.request_id = ctx.get("request_id", "-")
        record.user_id = ctx.get("user_id", "-")
        record.org_id = ctx.get("org_id", "-")
        return True


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
            user = getattr(request, "user", None)
            session = getattr(request, "session", None)
            _context.set(
                {
                    "request_id": request_id,
                    "user_id": user.pk if user is not None and user.is_authenticated else "-",
                    "org_id": (session.get("workspace_org_id") if session is not None else None) or "-",
                }
            )
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
