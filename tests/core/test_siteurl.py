"""Links in emails start with SITE_URL when it is set, else with the scheme and host serving the request that
sends the email (not a hard-coded http://127.0.0.1:8000)."""

import re

import pytest
from django.core import mail
from django.test import Client, RequestFactory
from django.urls import reverse

from core import siteurl

# Real commits: the email is built when the view's transaction commits, inside the request, as in production.
pytestmark = pytest.mark.django_db(transaction=True)


def _signup_link(client, **extra) -> str:
    response = client.post(reverse("signup"), {"name": "Ada", "email": "ada@example.com"}, **extra)
    assert response.status_code == 200
    [message] = mail.outbox
    match = re.search(r"(https?://[^/\s]+)/accounts/signup/confirm/", message.body)
    assert match, message.body
    return match.group(1)


def test_without_site_url_links_use_the_host_serving_the_request(settings):
    settings.SITE_URL = ""
    base = _signup_link(Client(), HTTP_HOST="localhost:8010")
    assert base == "http://localhost:8010"


def test_https_requests_get_https_links(settings):
    settings.SITE_URL = ""
    base = _signup_link(Client(), HTTP_HOST="localhost", secure=True)
    assert base == "https://localhost"


def test_site_url_wins_over_the_request_host(settings):
    settings.SITE_URL = "https://credits.example.com/"
    base = _signup_link(Client(), HTTP_HOST="localhost:8010")
    assert base == "https://credits.example.com"


def test_a_host_outside_allowed_hosts_sends_nothing(settings):
    settings.SITE_URL = ""
    client = Client(raise_request_exception=False)
    response = client.post(reverse("signup"), {"name": "Ada", "email": "ada@example.com"}, HTTP_HOST="evil.example.net")
    assert response.status_code == 400
    assert mail.outbox == []


def test_outside_a_request_the_fallback_is_used(settings):
    settings.SITE_URL = ""
    assert siteurl.absolute_url("/wallet/") == siteurl.FALLBACK + "/wallet/"


def test_the_middleware_forgets_the_request_after_the_response(settings):
    settings.SITE_URL = ""
    seen = []
    middleware = siteurl.SiteUrlMiddleware(lambda request: seen.append(siteurl.site_base()) or "response")
    assert middleware(RequestFactory().get("/", HTTP_HOST="localhost:9000")) == "response"
    assert seen == ["http://localhost:9000"]
    assert siteurl.site_base() == siteurl.FALLBACK
