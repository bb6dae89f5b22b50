"""A lost database connection answers 503 Service Unavailable with Retry-After, not a 500.

When PostgreSQL restarts, fails over or drops the connection, a query raises OperationalError (or
InterfaceError): nothing was written that outlives the rolled-back transaction, and the same request will
work again once the database is back. So pages answer a readable 503 page (templates/503.html) and the
JSON API a `503 database_unavailable` problem (api.app uses `is_connection_lost` and `RETRY_AFTER_SECONDS`
from here), both with Retry-After.

Only connection loss counts. Other database errors that are OperationalErrors too (a lock that could not
be had, a cancelled statement, a serialization failure) keep their own handling: the ledger turns a lock
timeout into LedgerBusy, anything else stays a 500 to be fixed.

Put `core.db_unavailable.DatabaseUnavailableMiddleware` near the top of MIDDLEWARE. It answers for an
exception raised by the view (process_exception) and for one raised by a middleware below it (the first
query of a signed-in page is often the session and user lookup in a middleware): Django has already turned
that one into a 500 by the time it comes back up, so the exception is noted on the request when Django
signals it (got_request_exception) and the 500 is swapped for the 503.
"""

from __future__ import annotations

import logging
import sys

import psycopg
from django.core.signals import got_request_exception
from django.db import InterfaceError, OperationalError, connections
from django.http import HttpRequest, HttpResponse
from django.template.loader import render_to_string

RETRY_AFTER_SECONDS = 5
# Django wraps psycopg's errors in its own; the ledger's prepared statements (wallets.ledger.execute_prepared)
# use psycopg's cursor directly, so psycopg's errors reach the views unwrapped.
OPERATIONAL_ERRORS = (OperationalError, psycopg.OperationalError)
INTERFACE_ERRORS = (InterfaceError, psycopg.InterfaceError)
logger = logging.getLogger("credits.db")

# SQLSTATEs that mean the session is gone or cannot be had (PostgreSQL, Appendix A "Error Codes"):
# class 08 connection exception; admin shutdown, crash shutdown, cannot connect now (the server is starting
# or stopping), idle session timeout; idle-in-transaction timeout; too many connections.
_LOST_SQLSTATE_CLASSES = ("08",)
_LOST_SQLSTATES = frozenset({"57P01", "57P02", "57P03", "57P05", "25P03", "53300"})


def _sqlstate(exc: BaseException) -> str | None:
    """The SQLSTATE psycopg read from the server; Django's wrapper keeps psycopg's error as __cause__.
    None when the client itself failed (connection refused, server closed the connection, socket closed)."""
    for err in (exc, exc.__cause__):
        sqlstate = getattr(err, "sqlstate", None)
        if sqlstate:
            return str(sqlstate)
    return None


def _a_connection_is_closed() -> bool:
    for conn in connections.all(initialized_only=True):
        raw = conn.connection
        if raw is not None and (getattr(raw, "closed", False) or getattr(raw, "broken", False)):
            return True
    return False


def is_connection_lost(exc: BaseException) -> bool:
    """True when `exc` says the database connection dropped or could not be made.

    OperationalError: when the server sent no SQLSTATE (the client lost or could not open the connection) or a
    connection-level one. A lock timeout (55P03), a cancelled statement (57014) or a deadlock (40P01) is not.
    InterfaceError: when a connection is in fact closed or broken (psycopg also raises it for misuse, e.g. a
    closed cursor, which is a bug and stays a 500).
    """
    if isinstance(exc, OPERATIONAL_ERRORS):
        sqlstate = _sqlstate(exc)
        return sqlstate is None or sqlstate.startswith(_LOST_SQLSTATE_CLASSES) or sqlstate in _LOST_SQLSTATES
    if isinstance(exc, INTERFACE_ERRORS):
        return _a_connection_is_closed()
    return False


def database_unavailable_page() -> HttpResponse:
    """The readable 503 page. Rendered without the request: the sidebar and the signed-in user would need
    the database."""
    response = HttpResponse(render_to_string("503.html", {"retry_after": RETRY_AFTER_SECONDS}), status=503)
    response["Retry-After"] = str(RETRY_AFTER_SECONDS)
    return response


_LOST = "_credits_database_unavailable"  # set on the request when a middleware below lost the connection


def _note_connection_loss(sender, request: HttpRequest | None = None, **kwargs) -> None:
    """got_request_exception is sent inside Django's `except` block, so sys.exc_info() is the exception."""
    exc = sys.exc_info()[1]
    if request is not None and exc is not None and is_connection_lost(exc):
        setattr(request, _LOST, True)


got_request_exception.connect(_note_connection_loss, dispatch_uid="core.db_unavailable")


class DatabaseUnavailableMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        if response.status_code == 500 and getattr(request, _LOST, False):
            return database_unavailable_page()
        return response

    def process_exception(self, request: HttpRequest, exception: Exception) -> HttpResponse | None:
        if not is_connection_lost(exception):
            return None  # Django's 500
        logger.error("database unavailable: %s %s: %s", request.method, request.path, exception)
        return database_unavailable_page()
