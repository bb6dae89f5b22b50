"""Middleware the JSON API does not need, skipped for its requests (paths under /api/).

API requests authenticate with a key in a header (api.auth), send no cookies and render no page, so the
session, its user, flash messages, CSRF (the API's views are exempt) and htmx have
nothing to do for them; skipped, they cost nothing: no session store, no message storage, no CSRF cookie
read. `web_only(M)` is M for every other request. The security headers (SecurityMiddleware, the CSP, X-Frame-
Options) and the request's log context stay on every request.
"""

from django.contrib.auth.middleware import AuthenticationMiddleware as _AuthenticationMiddleware
from django.contrib.messages.middleware import MessageMiddleware as _MessageMiddleware
from django.contrib.sessions.middleware import SessionMiddleware as _SessionMiddleware
from django.http import HttpRequest
from django.middleware.csrf import CsrfViewMiddleware as _CsrfViewMiddleware
from django_htmx.middleware import HtmxMiddleware as _HtmxMiddleware

API_PREFIX = "/api/"


def is_api_request(request: HttpRequest) -> bool:
    return request.path_info.startswith(API_PREFIX)


def web_only(middleware: type) -> type:
    """A subclass of `middleware` that passes API requests straight through (its process_view too)."""

    def __call__(self, request):
        if is_api_request(request):
            return self.get_response(request)
        return middleware.__call__(self, request)

    namespace: dict = {
        "__call__": __call__,
        "__module__": __name__,
        "__doc__": f"{middleware.__name__}, not for /api/.",
    }
    if hasattr(middleware, "process_view"):

        def process_view(self, request, view_func, view_args, view_kwargs):
            if is_api_request(request):
                return None
            return middleware.process_view(self, request, view_func, view_args, view_kwargs)

        namespace["process_view"] = process_view
    return type(middleware.__name__, (middleware,), namespace)


SessionMiddleware = web_only(_SessionMiddleware)
CsrfViewMiddleware = web_only(_CsrfViewMiddleware)
AuthenticationMiddleware = web_only(_AuthenticationMiddleware)
MessageMiddleware = web_only(_MessageMiddleware)
HtmxMiddleware = web_only(_HtmxMiddleware)
