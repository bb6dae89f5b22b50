"""Log lines cannot be forged and never carry a secret: every value is escaped, so one record is one line, and
the tokens in emailed links are redacted from the paths that logs write."""

import io
import logging
import re
from contextlib import contextmanager

import pytest
from django.contrib.auth.tokens import default_token_generator
from django.test import Client
from django.utils.encoding import force_bytes
from django.utils.http import urlsafe_base64_encode

from tests.factories import UserFactory
from web.views.accounts import signup_token

pytestmark = pytest.mark.django_db

# What a line of the configured console format starts with: its timestamp and level.
LINE_START = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} (DEBUG|INFO|WARNING|ERROR|CRITICAL) \S+ request_id=")


@contextmanager
def console_output():
    """What the configured console handler (settings.LOGGING: its formatter and filters) writes, for every
    logger that reaches the root."""
    console = logging.getHandlerByName("console")
    assert console is not None and console.formatter is not None
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(console.formatter)
    for f in console.filters:
        handler.addFilter(f)
    root = logging.getLogger()
    root.addHandler(handler)
    try:
        yield stream
    finally:
        root.removeHandler(handler)


def _lines(stream) -> list[str]:
    lines = stream.getvalue().splitlines()
    for line in lines:
        assert LINE_START.match(line), f"a line that is not a log record: {line!r}"
    return lines


FORGED = "2026-12-02 00:00:00,000 INFO credits.ledger request_id=x user=1 org=acme money_movement transfer=999999"


def test_a_path_cannot_plant_a_forged_log_line(client):
    """The access line writes the path; a %0a in it must not start a new line that looks like a ledger record."""
    path = "/nope%0a" + FORGED.replace(" ", "%20")
    with console_output() as out:
        response = client.get(path, headers={"X-Request-ID": "req-forge-1"})
    assert response.status_code == 404
    lines = _lines(out)
    access = [line for line in lines if " credits.request " in line]
    assert len(access) == 1  # one line per request
    assert "GET /nope\\n2026-12-02 00:00:00,000 INFO credits.ledger" in access[0]
    assert "request_id=req-forge-1 " in access[0] and access[0].endswith("ms")
    assert not any(line.startswith("2026-12-02 00:00:00,000") for line in lines)
    assert [line.split(" ")[3] for line in lines] == ["credits.request", "django.request"]  # no ledger line


def test_every_logger_escapes_control_characters_and_backslashes():
    """Escaping is in the console formatter, so it covers every logger, message arguments, and tracebacks:
    CR, LF, tab, the other C0 and C1 controls, Unicode line separators, and the backslash itself (so a
    literal backslash-n can never be read as an escaped newline)."""
    log = logging.getLogger("credits.anything")
    with console_output() as out:
        log.warning("a\r\nb %s", "c\x1b[31md\x85e\u2028f\\ng\tend")
        try:
            raise ValueError("boom\n" + FORGED)
        except ValueError:
            logging.getLogger("django.request").exception("Internal Server Error: %s", "/x")
    first, second = _lines(out)
    assert first.endswith("a\\r\\nb c\\x1b[31md\\x85e\\u2028f\\\\ng\\tend")
    assert "Traceback (most recent call last):\\n" in second
    assert "ValueError: boom\\n2026-12-02 00:00:00,000 INFO credits.ledger" in second


def test_escaping_is_reversible_and_leaves_ordinary_text_alone():
    from core.logcontext import escape_log_text

    assert (
        escape_log_text("GET /orgs/acme-lab/billing/ 200 3.1ms é ü 漢")
        == "GET /orgs/acme-lab/billing/ 200 3.1ms é ü 漢"
    )
    assert escape_log_text("\\n") == "\\\\n" and escape_log_text("\n") == "\\n"
    assert escape_log_text("\x00\x7f\x9f") == "\\x00\\x7f\\x9f"


def _reset_link(user) -> tuple[str, str]:
    token = default_token_generator.make_token(user)
    return f"/accounts/reset/{urlsafe_base64_encode(force_bytes(user.pk))}/{token}/", token


def test_tokens_in_emailed_links_never_reach_the_log():
    """Sign-up confirmation, invitation and password-reset links carry a secret: whoever reads the logs must
    not be able to use it. The access line, and Django's own line for a 4xx answer, write the path with the
    token redacted; the rest of the path stays, so the line still says what was asked."""
    user = UserFactory(email="reset-me@example.com")
    signup = signup_token(email="new-person@example.com", name="New")
    reset_path, reset_token = _reset_link(user)
    invite = "Mzc6a2V5:1uXyZa:Rg9fFAKEsigNATUREqq"
    requests = {
        f"/accounts/signup/confirm/{signup}/": (200, "/accounts/signup/confirm/[redacted]/"),
        f"/accounts/signup/confirm/{signup}x/": (400, "/accounts/signup/confirm/[redacted]/"),  # tampered
        f"/invite/{invite}/": (400, "/invite/[redacted]/"),
        f"/invite/{invite}": (301, "/invite/[redacted]"),  # a link cut short by a mail client
        reset_path: (302, reset_path.replace(reset_token, "[redacted]")),
    }
    for path, (status, logged) in requests.items():
        with console_output() as out:
            response = Client().get(path)
        assert response.status_code == status, path
        lines = _lines(out)
        text = "\n".join(lines)
        for secret in (signup, reset_token, invite):
            assert secret not in text, path
        assert "[redacted]" in text
        access = [line for line in lines if " credits.request " in line]
        assert len(access) == 1
        assert f"GET {logged} {status} " in access[0]
        if status == 400:  # Django's django.request warning names the path too
            assert any(f"Bad Request: {logged}" in line for line in lines), lines


def test_ordinary_paths_are_logged_as_they_are(client):
    with console_output() as out:
        client.get("/accounts/login/?next=/invite/abc/")
    [access] = [line for line in _lines(out) if " credits.request " in line]
    assert "GET /accounts/login/ 200 " in access
