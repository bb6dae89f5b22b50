"""Production safety: security headers, CSP, healthz, request ids, sign-in lockout, rate limits."""

import pytest
from django.test import override_settings
from django.urls import reverse

from tests.factories import UserFactory

pytestmark = pytest.mark.django_db


def test_pages_carry_csp_frame_and_request_id_headers(client):
    response = client.get(reverse("login"))
    csp = response["Content-Security-Policy"]
    assert "script-src 'self'" in csp
    assert "unsafe-inline" not in csp.split("style-src")[0]
    assert "frame-ancestors 'none'" in csp
    assert response["X-Frame-Options"] == "DENY"
    assert len(response["X-Request-ID"]) == 32


def test_no_inline_scripts_in_pages(client, funded_org, owner):
    import re

    client.force_login(owner)
    for url in [reverse("wallet"), reverse("billing:page", args=[funded_org.slug])]:
        html = client.get(url).content.decode()
        inline = [m for m in re.findall(r"<script([^>]*)>(.*?)</script>", html, re.S) if "src=" not in m[0]]
        assert inline == [], url
        assert " on" + "click=" not in html


def test_incoming_request_id_is_kept_only_when_sane(client):
    assert client.get(reverse("login"), headers={"X-Request-ID": "abc-123"})["X-Request-ID"] == "abc-123"
    assert client.get(reverse("login"), headers={"X-Request-ID": "bad id\n"})["X-Request-ID"] != "bad id\n"


def test_healthz_checks_the_database(client):
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.content == b"ok"


def test_sign_in_locks_out_after_repeated_failures(client):
    UserFactory(email="target@example.com", password="the-right-passphrase")
    for _ in range(5):
        client.post(reverse("login"), {"username": "target@example.com", "password": "wrong"})
    response = client.post(reverse("login"), {"username": "target@example.com", "password": "the-right-passphrase"})
    assert response.status_code == 429
    assert "Too many failed sign-ins" in response.content.decode()


def test_sign_in_errors_do_not_reveal_whether_an_email_exists(client):
    UserFactory(email="known@example.com")
    known = client.post(reverse("login"), {"username": "known@example.com", "password": "wrong"}).content.decode()
    unknown = client.post(reverse("login"), {"username": "nobody@example.com", "password": "wrong"}).content.decode()
    assert "do not match an account" in known
    assert "do not match an account" in unknown


@override_settings(RATE_LIMIT_MONEY=(2, 60))
def test_rate_limit_returns_429_with_retry_after(rf, owner):
    from django.http import HttpResponse

    from config.ratelimit import rate_limited

    @rate_limited("RATE_LIMIT_MONEY")
    def view(request):
        return HttpResponse("moved")

    from django.core.cache import cache

    cache.clear()
    request = rf.post("/x")
    request.user = owner
    assert view(request).status_code == 200
    assert view(request).status_code == 200
    limited = view(request)
    assert limited.status_code == 429
    assert int(limited["Retry-After"]) >= 1
    get = rf.get("/x")
    get.user = owner
    assert view(get).status_code == 200
