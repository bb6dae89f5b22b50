"""A lost database connection answers a readable 503 page with Retry-After, not a 500; other database
errors (a lock timeout) are not mistaken for it."""

import socket
from contextlib import contextmanager
from unittest import mock

import psycopg
import pytest
from django.db import InterfaceError, OperationalError, connection
from django.db.backends.postgresql.base import DatabaseWrapper
from django.test import Client
from django.urls import reverse

from core.db_unavailable import RETRY_AFTER_SECONDS, is_connection_lost

pytestmark = pytest.mark.django_db


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]  # nothing listens once the socket is closed


def unreachable_database_error() -> OperationalError:
    """What Django raises when PostgreSQL cannot be reached: a second connection pointed at a closed port."""
    down = DatabaseWrapper({**connection.settings_dict, "HOST": "127.0.0.1", "PORT": closed_port()}, alias="down")
    try:
        down.ensure_connection()
    except OperationalError as exc:
        return exc
    raise AssertionError("connected to a closed port")


def lock_timeout_error() -> OperationalError:
    """What Django raises when a row lock is not had within lock_timeout (psycopg's LockNotAvailable, 55P03)."""
    try:
        raise OperationalError("canceling statement due to lock timeout") from psycopg.errors.LockNotAvailable()
    except OperationalError as exc:
        return exc


@contextmanager
def queries_fail(error, table=""):
    """Every query (or those touching `table`) raises `error`, as a dropped connection would."""
    from django.db.backends.utils import CursorWrapper

    real = CursorWrapper.execute

    def execute(self, sql, params=None):
        if table in sql:
            raise error
        return real(self, sql, params)

    with mock.patch.object(CursorWrapper, "execute", execute):
        yield


def server_closed_the_connection() -> OperationalError:
    return OperationalError("server closed the connection unexpectedly")


# table "": every query fails, so the first one (the session and user, loaded by a middleware) does;
# "wallets_": the session loads, the view's own query fails.
WHERE = pytest.mark.parametrize("table", ["", "wallets_"], ids=["in-a-middleware", "in-the-view"])


@WHERE
@pytest.mark.parametrize(
    "make_error", [server_closed_the_connection, unreachable_database_error], ids=["closed-by-server", "unreachable"]
)
def test_a_page_answers_a_readable_503_when_the_database_is_gone(owner, make_error, table):
    client = Client(raise_request_exception=False)
    client.force_login(owner)
    with queries_fail(make_error(), table):
        response = client.get(reverse("wallet"))
    assert response.status_code == 503
    assert response["Retry-After"] == str(RETRY_AFTER_SECONDS)
    assert response["Content-Type"].startswith("text/html")
    page = response.content.decode()
    assert "Temporarily unavailable" in page and f"Try again in {RETRY_AFTER_SECONDS} seconds" in page
    assert client.get(reverse("wallet")).status_code == 200  # and back when the database is


@WHERE
def test_other_database_errors_stay_500s(owner, table):
    client = Client(raise_request_exception=False)
    client.force_login(owner)
    with queries_fail(lock_timeout_error(), table):
        response = client.get(reverse("wallet"))
    assert response.status_code == 500
    assert "Retry-After" not in response


def test_connection_loss_is_told_from_other_database_errors():
    assert is_connection_lost(server_closed_the_connection())
    assert is_connection_lost(unreachable_database_error())
    for sqlstate_error in (psycopg.errors.AdminShutdown, psycopg.errors.CannotConnectNow):
        try:
            raise OperationalError("terminating connection") from sqlstate_error()
        except OperationalError as exc:
            assert is_connection_lost(exc)
    assert not is_connection_lost(lock_timeout_error())
    for sqlstate_error in (psycopg.errors.QueryCanceled, psycopg.errors.DeadlockDetected):
        try:
            raise OperationalError("not a connection problem") from sqlstate_error()
        except OperationalError as exc:
            assert not is_connection_lost(exc)
    # An InterfaceError counts only if a connection really is closed (a closed cursor is a bug, not an outage).
    assert not is_connection_lost(InterfaceError("the cursor is closed"))
    with mock.patch.object(connection, "connection", mock.Mock(closed=True)):
        assert is_connection_lost(InterfaceError("connection already closed"))
    assert not is_connection_lost(ValueError("not a database error"))
