"""Absolute links for emails: `SITE_URL` when it is set (production: one canonical address), else the scheme and
host of the request being served (validated against ALLOWED_HOSTS by `request.get_host()`), so a link in an email
sent from http://localhost:8010/ points at localhost:8010, not at a hard-coded 127.0.0.1:8000.

Emails are built in the request's thread (on commit, then enqueued with their final text), so the request is
known: `SiteUrlMiddleware` keeps it in a context variable for the duration of the request. Outside a request
(a management command, a task) with no SITE_URL, links fall back to `FALLBACK`."""

from contextvars import ContextVar

from django.conf import settings
from django.http import HttpRequest

FALLBACK = "http://127.0.0.1:8000"

_current_request: ContextVar[HttpRequest | None] = ContextVar("site_url_request", default=None)


def site_base() -> str:
    """The scheme and host that absolute links start with, without a trailing slash."""
    configured = (settings.SITE_URL or "").rstrip("/")
    if configured:
        return configured
    request = _current_request.get()
    if request is not None:
        return request.build_absolute_uri("/").rstrip("/")
    return FALLBACK


def absolute_url(path: str) -> str:
    """`path` (from reverse(), starting with /) as an absolute link."""
    return site_base() + path


class SiteUrlMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request: HttpRequest):
        token = _current_request.set(request)
        try:
            return self.get_response(request)
        finally:
            _current_request.reset(token)
