"""The app's SDK calls to this server's own stand-in, answered in-process on the stand-in's own threads.

Why: the stand-in is mounted on the app's own server. When the SDK reached it over HTTP, a request that calls
Stripe (a webhook re-fetching its session, Buy Credits creating one, the success page) waited for another
request to be served by the same server. Under gunicorn's sync workers every worker could be waiting for such
a call at once, with no worker left to answer any of them: they deadlocked until gunicorn killed them (WORKER
TIMEOUT) and purchases were left pending. Now those calls never need a worker: the SDK still builds and signs
the HTTP request and parses the response exactly as it does for Stripe (same URLs, form encoding, errors), but
the request is handed to the stand-in's API views on a small thread pool of the stand-in's own. A pool thread
never waits for a worker (the stand-in delivers webhooks from background threads, see core.deliver), so the
pool always drains. A separate thread also means a separate database connection and transaction: the stand-in
commits its state on its own, as Stripe would, never inside the caller's transaction.

Only calls to the API base this process started with (settings.STRIPE_API_BASE, by default this server's
/stripe-standin) are answered here; any other address (a test's live server, an unreachable host, Stripe)
goes over the network as before.
"""

from __future__ import annotations

import io
import json
import logging
import os
import sys
import threading
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from urllib.parse import urlsplit

import stripe
from django.conf import settings
from django.core.handlers.wsgi import WSGIRequest
from django.db import connections
from django.urls import Resolver404, resolve

from purchases import stripe_client

log = logging.getLogger("credits.stripe_standin")

POOL_THREADS = 8
TIMEOUT_SECONDS = 80  # the SDK's own default read timeout
_URLCONF = "devtools.stripe_standin.urls"

_pool: ThreadPoolExecutor | None = None
_pool_pid = 0
_pool_lock = threading.Lock()


def _executor() -> ThreadPoolExecutor:
    """The stand-in's API threads, one pool per process (made after gunicorn forks its workers)."""
    global _pool, _pool_pid
    with _pool_lock:
        if _pool is None or _pool_pid != os.getpid():
            _pool = ThreadPoolExecutor(max_workers=POOL_THREADS, thread_name_prefix="stripe-standin-api")
            _pool_pid = os.getpid()
        return _pool


def _environ(method: str, url: str, headers, body: bytes) -> dict:
    parts = urlsplit(url)
    environ = {
        "REQUEST_METHOD": method.upper(),
        "SCRIPT_NAME": "",
        "PATH_INFO": parts.path or "/",
        "QUERY_STRING": parts.query,
        "SERVER_NAME": parts.hostname or "127.0.0.1",
        "SERVER_PORT": str(parts.port or (443 if parts.scheme == "https" else 80)),
        "SERVER_PROTOCOL": "HTTP/1.1",
        "REMOTE_ADDR": "127.0.0.1",
        "HTTP_HOST": parts.netloc,
        "CONTENT_LENGTH": str(len(body)),
        "wsgi.version": (1, 0),
        "wsgi.url_scheme": parts.scheme or "http",
        "wsgi.input": io.BytesIO(body),
        "wsgi.errors": sys.stderr,
        "wsgi.multithread": True,
        "wsgi.multiprocess": True,
        "wsgi.run_once": False,
    }
    for name, value in (headers or {}).items():
        key = name.upper().replace("-", "_")
        if key == "CONTENT_TYPE":
            environ[key] = value
        elif key != "CONTENT_LENGTH":
            environ[f"HTTP_{key}"] = value
    return environ


def _error(status: int, message: str) -> tuple[bytes, int, dict]:
    body = json.dumps({"error": {"type": "api_error", "message": message}}).encode()
    return body, status, {"content-type": "application/json"}


def answer(method: str, url: str, headers, post_data, api_path: str) -> tuple[bytes, int, dict]:
    """One SDK request, served by the stand-in's API views (on a pool thread). `api_path` is the path of
    the API base, e.g. "/stripe-standin"."""
    body = post_data.encode() if isinstance(post_data, str) else (post_data or b"")
    try:
        request = WSGIRequest(_environ(method, url, headers, body))
        try:
            match = resolve(request.path_info.removeprefix(api_path) or "/", urlconf=_URLCONF)
        except Resolver404:
            return _error(404, f"Unrecognized request URL ({request.path_info}).")
        response = match.func(request, *match.args, **match.kwargs)
        return response.content, response.status_code, {k.lower(): v for k, v in response.items()}
    except Exception:  # a bug in the stand-in: a 500, like any server's
        log.exception("stand-in API %s %s failed", method.upper(), url)
        return _error(500, "The Stripe stand-in failed; see the server log.")
    finally:
        connections.close_all()  # this thread's connection; the next call opens its own


class InProcessClient(stripe.HTTPClient):
    """The SDK's transport: calls under `api_base` go to the stand-in in-process, others to `fallback`."""

    name = "stripe-standin-in-process"

    def __init__(self, api_base: str, fallback: stripe.HTTPClient):
        super().__init__()
        self.api_base = api_base.rstrip("/")
        self.api_path = urlsplit(self.api_base).path.rstrip("/")
        self.fallback = fallback

    def handles(self, url: str) -> bool:
        return bool(self.api_base) and url.startswith(self.api_base + "/")

    def request(self, method, url, headers, post_data=None, **kwargs):
        if not self.handles(url):
            return self.fallback.request(method, url, headers, post_data)
        future = _executor().submit(answer, method, url, dict(headers or {}), post_data, self.api_path)
        try:
            return future.result(timeout=TIMEOUT_SECONDS)
        except FutureTimeout:
            raise stripe.APIConnectionError("The Stripe stand-in did not answer in time.") from None

    def request_stream(self, method, url, headers, post_data=None, **kwargs):
        return self.fallback.request_stream(method, url, headers, post_data)

    def close(self):
        self.fallback.close()


def install() -> None:
    """Answer this process's SDK calls to its own stand-in in-process (StripeStandinConfig.ready)."""
    base = settings.STRIPE_API_BASE
    if not base or not getattr(settings, "STRIPE_STANDIN_IN_PROCESS", True):
        return
    stripe_client.use_http_client(InProcessClient(base, stripe.new_default_http_client()))
