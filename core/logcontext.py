r"""Request context for logs: a request id, the user and the org on every log line, and one access line
per request. The request id is taken from X-Request-ID when a proxy sets a sane one, else minted.

The user and the org are bound before the view runs, so lines logged inside it (the ledger's
`money_movement`, errors) carry them as well as the access line:

- `user_id`: the signed-in user's id; for the JSON API, `key:<the key's public prefix>` once the key is
  checked (billing/api_auth.py binds it); `-` for anonymous requests.
- `org_id`: the org the request acts on, by slug: the URL's `org_slug` (the org of the page requested,
  whether or not the user may see it), or the API key's org; `-` for pages outside an org. A slug, not
  the numeric id, because that is what the request carries: resolving it would cost a query.

Log lines cannot be forged and carry no secrets (docs/security.md):

- `EscapingFormatter` (the console handler's formatter in settings.LOGGING) writes every record, whatever its
  logger, as exactly one line: CR, LF, tab, the other C0 and C1 controls, Unicode line and paragraph
  separators, bidi controls and the backslash itself are written as escapes (`\n`, `\x1b`, `\u2028`,
  `\\`), in the message, its arguments and tracebacks alike. A path with `%0a` in it cannot start a line.
- A URL parameter named `token` (see SECRET_URL_KWARGS) is a secret: paths are logged with it replaced by
  `[redacted]`, in the access line, in lines logged during the request, and in Django's own lines that
  carry the request (`Bad Request: <path>`). Name a new secret URL part `token` and it is redacted too.
"""

import contextvars
import logging
import re
import time
import uuid

from django.db import DatabaseError
from django.urls import Resolver404, resolve

_context: contextvars.ContextVar[dict | None] = contextvars.ContextVar("request_context", default=None)
access_log = logging.getLogger("credits.request")
_SAFE_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")
_SAFE_SLUG = re.compile(r"^[A-Za-z0-9_-]{1,140}$")  # an org slug as URLs carry it; nothing else reaches a log line


# URL parameters that are secrets (the emailed links: sign-up confirmation, invitation, password reset).
SECRET_URL_KWARGS = frozenset({"token"})
REDACTED = "[redacted]"

# Everything that could end a line or make an escape ambiguous: C0 and C1 controls, DEL, Unicode line and
# paragraph separators, bidi controls (they reorder what a reader sees), and the backslash.
_UNSAFE = re.compile(r"[\x00-\x1f\x7f-\x9f\u200e\u200f\u2028-\u202e\u2066-\u2069\\]")
_NAMED_ESCAPES = {"\n": "\\n", "\r": "\\r", "\t": "\\t", "\\": "\\\\"}


def _escape_char(match: re.Match[str]) -> str:
    char = match.group()
    named = _NAMED_ESCAPES.get(char)
    if named is not None:
        return named
    code = ord(char)
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def escape_log_text(text: str) -> str:
    """`text` on one line, every control character and backslash written as a Python-style escape."""
    return _UNSAFE.sub(_escape_char, text)


def _secret_segments(request) -> set[str]:
    """The values of the secret URL parameters of the request's path. A path that matches no URL (a link cut
    short, or with something appended) is matched with a slash added, then by its leading parts."""
    match = getattr(request, "resolver_match", None)
    if match is None:
        path = request.path_info
        candidates = [path] if path.endswith("/") else [path, path + "/"]
        cut = path.rstrip("/")
        for _ in range(4):
            cut = cut.rpartition("/")[0]
            if not cut:
                break
            candidates.append(cut + "/")
        for candidate in candidates:
            try:
                match = resolve(candidate, urlconf=getattr(request, "urlconf", None))
            except Resolver404:
                continue
            break
    if match is None:
        return set()
    return {v for k, v in match.kwargs.items() if k in SECRET_URL_KWARGS and isinstance(v, str) and v}


def loggable_path(request) -> str:
    """request.path with the value of every secret URL parameter replaced by [redacted]."""
    cached = getattr(request, "_loggable_path", None)
    if cached is not None:
        return cached
    path = request.path
    secrets = _secret_segments(request)
    if secrets:
        path = "/".join(REDACTED if segment in secrets else segment for segment in path.split("/"))
    request._loggable_path = path
    return path


def _redactions(record: logging.LogRecord) -> list[tuple[str, str]]:
    """(what a line may contain, what to write instead): the path of the request being logged about, when
    it carries a secret, as it is and as Django's own log lines escape it."""
    pairs = []
    request = getattr(record, "request", None)
    if request is not None and isinstance(getattr(request, "path", None), str):
        pairs.append((request.path, loggable_path(request)))
    ctx = _context.get()
    if ctx and "path" in ctx:
        pairs.append((ctx["path"], ctx["loggable_path"]))
    found = []
    for raw, redacted in pairs:
        if raw != redacted:
            found.append((raw, redacted))
            # django.utils.log.log_message writes its arguments (the path) escaped this way.
            escaped = raw.encode("unicode_escape").decode("ascii")
            if escaped != raw:
                found.append((escaped, redacted.encode("unicode_escape").decode("ascii")))
    return found


class EscapingFormatter(logging.Formatter):
    """The console format, one record per line: secret URL parts redacted, then every value escaped."""

    def format(self, record: logging.LogRecord) -> str:
        text = super().format(record)
        for raw, redacted in _redactions(record):
            text = text.replace(raw, redacted)
        return escape_log_text(text)


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
                loggable_path(request),  # the formatter escapes it
                response.status_code,
                (time.perf_counter() - started) * 1000,
            )
            return response
        finally:
            _context.reset(token)

    def process_view(self, request, view_func, view_args, view_kwargs):
        _bind_user(request)
        path = loggable_path(request)
        if path != request.path:  # lines logged inside the view write the path redacted too
            ctx = _context.get()
            if ctx is not None:
                ctx["path"], ctx["loggable_path"] = request.path, path
        slug = view_kwargs.get("org_slug")
        if isinstance(slug, str) and _SAFE_SLUG.match(slug):
            bind_log_context(org_id=slug)
