"""Production safety: security headers, CSP, healthz, request ids, sign-in lockout, rate limits."""

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client, override_settings
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


# ---------------------------------------------------------------- rate limits on real views


def _seat_org(org, seats=10, seat_credits=100):
    from orgs.models import MemberDefaults

    org.seats = seats
    org.save(update_fields=["seats"])
    defaults = MemberDefaults.for_org(org)
    defaults.seat_assignment_credits = seat_credits
    defaults.save()


def _assert_429(response):
    assert response.status_code == 429
    html = response.content.decode()
    assert "Too many requests" in html and "nothing was changed" in html
    assert int(response["Retry-After"]) >= 1
    assert f"Try again in {response['Retry-After']} seconds" in html


# A day-long window, so the test never straddles two windows (the limit counts per fixed window).
@override_settings(RATE_LIMIT_MONEY=(2, 86_400))
def test_member_money_views_share_the_money_limit_and_the_429_moves_nothing(client, funded_org, owner):
    from django.core.cache import cache

    from orgs.models import Invitation, MembershipStatus
    from tests.factories import MembershipFactory, ledger_snapshot
    from wallets.models import CreditType
    from wallets.services import org_transfer_to_member

    cache.clear()
    _seat_org(funded_org)
    members = [MembershipFactory(org=funded_org, role="member") for _ in range(3)]
    org_transfer_to_member(
        org=funded_org,
        membership_id=members[2].pk,
        credit_type=CreditType.objects.get(slug="org-allocated"),
        amount=300,
    )
    client.force_login(owner)

    def seat(m):
        return client.post(reverse("members:seat_assign", args=[funded_org.slug, m.pk]))

    assert seat(members[0]).status_code == 302
    assert seat(members[1]).status_code == 302
    before = ledger_snapshot()
    invitations = Invitation.objects.count()

    _assert_429(seat(members[2]))
    _assert_429(client.post(reverse("members:remove", args=[funded_org.slug, members[2].pk])))
    _assert_429(
        client.post(
            reverse("members:invite", args=[funded_org.slug]),
            {"email": "late@example.com", "role": "member", "credit_allocation": "500"},
        )
    )
    _assert_429(
        client.post(
            reverse("members:invite_bulk", args=[funded_org.slug]),
            {"file": SimpleUploadedFile("people.csv", b"bulk@example.com,member\n", content_type="text/csv")},
        )
    )
    # Nothing moved or changed: no seat, no return, no invitation.
    assert ledger_snapshot() == before
    members[2].refresh_from_db()
    assert members[2].status == MembershipStatus.ACTIVE and not members[2].has_seat
    assert Invitation.objects.count() == invitations
    # Reading is never limited, and the limit is per user: another admin still acts.
    assert client.get(reverse("members:remove", args=[funded_org.slug, members[2].pk])).status_code == 200
    other_admin = MembershipFactory(org=funded_org, role="admin").user
    other = Client()
    other.force_login(other_admin)
    assert other.post(reverse("members:seat_assign", args=[funded_org.slug, members[2].pk])).status_code == 302
    assert ledger_snapshot() != before


@override_settings(RATE_LIMIT_REQUESTS=(2, 86_400))
def test_credit_requests_are_rate_limited_and_the_429_creates_nothing(client, funded_org, member_membership):
    from django.core.cache import cache

    from billing.models import CreditRequest
    from tests.factories import ledger_snapshot

    cache.clear()
    client.force_login(member_membership.user)
    url = reverse("billing:request_new", args=[funded_org.slug])
    for amount in ("100", "200"):
        assert client.post(url, {"amount": amount, "reason": "Lab time"}).status_code == 302
    before = (CreditRequest.objects.count(), ledger_snapshot())
    _assert_429(client.post(url, {"amount": "300", "reason": "Lab time"}))
    assert (CreditRequest.objects.count(), ledger_snapshot()) == before
    assert client.get(url).status_code == 200  # the form still opens
