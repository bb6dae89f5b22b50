"""Production safety: security headers, CSP, healthz, request ids, sign-in lockout, rate limits."""

import logging
from unittest import mock

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

    from core.ratelimit import rate_limited

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

    from credit_requests.models import CreditRequest
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


# ---------------------------------------------------------------- healthz and logs


def test_healthz_is_503_when_the_database_is_unreachable(client):
    from django.db import OperationalError, connections

    with mock.patch.object(
        connections["default"], "cursor", side_effect=OperationalError("could not connect to server")
    ):
        response = client.get("/healthz")
    assert response.status_code == 503
    assert b"database unavailable" in response.content
    assert client.get("/healthz").status_code == 200  # and healthy again once it answers


def _line(record) -> str:
    """The record as the configured console formatter writes it."""
    from django.conf import settings

    return logging.Formatter(settings.LOGGING["formatters"]["plain"]["format"]).format(record)


def test_a_request_logs_one_access_line_with_request_id_user_and_org(client, org, owner, caplog):
    client.force_login(owner)
    client.post(reverse("workspace_switch"), {"workspace": org.slug})
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="credits.request"):
        response = client.get(reverse("billing:page", args=[org.slug]), headers={"X-Request-ID": "req-abc-1"})
    assert response.status_code == 200
    [record] = [r for r in caplog.records if r.name == "credits.request"]
    assert (record.request_id, record.user_id, record.org_id) == ("req-abc-1", owner.pk, org.slug)
    line = _line(record)
    assert f"request_id=req-abc-1 user={owner.pk} org={org.slug}" in line
    assert f"GET /orgs/{org.slug}/billing/ 200" in line or f"GET {reverse('billing:page', args=[org.slug])} 200" in line


def test_a_transfer_logs_exactly_one_ledger_line_with_its_id_kind_and_amount(client, funded_org, owner, caplog):
    import uuid

    from tests.factories import MembershipFactory
    from wallets.models import Transfer

    member = MembershipFactory(org=funded_org, role="member")
    client.force_login(owner)
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="credits.ledger"):
        response = client.post(
            reverse("billing:transfer_submit", args=[funded_org.slug]),
            {
                "mode": "one",
                "recipient": str(member.pk),
                "credit_type": "org-allocated",
                "amount": "321",
                "message": "Lab time",
                "idempotency_key": str(uuid.uuid4()),
            },
            headers={"X-Request-ID": "req-transfer-1"},
        )
    assert response.status_code == 302
    transfer = Transfer.objects.get(kind="transfer", memo="Lab time")
    records = [r for r in caplog.records if r.name == "credits.ledger"]
    assert len(records) == 1
    message = records[0].getMessage()
    assert f"transfer={transfer.pk} " in message and " kind=transfer " in message and " amount=321 " in message
    assert f"org_id={funded_org.pk} " in message and f"actor_id={owner.pk} " in message
    assert "request_id=req-transfer-1 " in _line(records[0])  # the line ties back to its request


def test_lines_logged_inside_a_view_carry_the_user_and_the_org_of_the_url(client, funded_org, owner, caplog):
    """The ledger line is written inside the view: it carries who acted and the org the URL names, not the
    session's workspace (here another org), and so does the access line."""
    import uuid

    from orgs.services import org_create
    from tests.factories import MembershipFactory

    elsewhere = org_create(name="Elsewhere Lab", owner=owner)
    member = MembershipFactory(org=funded_org, role="member")
    client.force_login(owner)
    client.post(reverse("workspace_switch"), {"workspace": elsewhere.slug})
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="credits"):
        response = client.post(
            reverse("billing:transfer_submit", args=[funded_org.slug]),
            {
                "mode": "one",
                "recipient": str(member.pk),
                "credit_type": "org-allocated",
                "amount": "42",
                "idempotency_key": str(uuid.uuid4()),
            },
            headers={"X-Request-ID": "req-inside-1"},
        )
    assert response.status_code == 302
    [ledger] = [r for r in caplog.records if r.name == "credits.ledger"]
    [access] = [r for r in caplog.records if r.name == "credits.request"]
    for record in (ledger, access):
        assert (record.request_id, record.user_id, record.org_id) == ("req-inside-1", owner.pk, funded_org.slug)
        assert f"request_id=req-inside-1 user={owner.pk} org={funded_org.slug} " in _line(record)


def test_an_org_page_logs_that_org_even_for_someone_it_refuses(client, org, other_org, owner, caplog):
    """The org requested is what the access line names: an outsider probing another org's page is logged
    against that org (404), with who they are."""
    client.force_login(owner)
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="credits.request"):
        response = client.get(reverse("billing:page", args=[other_org.slug]))
    assert response.status_code == 404
    [record] = [r for r in caplog.records if r.name == "credits.request"]
    assert (record.user_id, record.org_id) == (owner.pk, other_org.slug)


def test_pages_outside_an_org_log_no_org(client, org, owner, caplog):
    client.force_login(owner)
    client.post(reverse("workspace_switch"), {"workspace": org.slug})
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="credits.request"):
        assert client.get(reverse("wallet")).status_code == 200
        assert Client().get(reverse("login")).status_code == 200
    wallet, login = [r for r in caplog.records if r.name == "credits.request"]
    assert (wallet.user_id, wallet.org_id) == (owner.pk, "-")
    assert (login.user_id, login.org_id) == ("-", "-")


def test_an_api_usage_charge_logs_its_ledger_line_with_the_keys_org(funded_org, owner, caplog):
    """API requests carry no org in the URL and no session: the key names the org, and the key is the user."""
    from tests.api.helpers import Api, give, issue_key
    from tests.factories import MembershipFactory

    member = MembershipFactory(org=funded_org, role="member")
    give(funded_org, member, 50)
    key, token = issue_key(funded_org, "charge", created_by=owner)
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="credits"):
        response = Api(token).post(
            "/usage", {"member_id": member.pk, "amount": 7}, key="job-log-1", HTTP_X_REQUEST_ID="req-api-1"
        )
    assert response.status_code == 201, response.content
    [ledger] = [r for r in caplog.records if r.name == "credits.ledger"]
    [access] = [r for r in caplog.records if r.name == "credits.request"]
    assert f"transfer={response.json()['transfer_id']} kind=usage amount=7 " in ledger.getMessage()
    for record in (ledger, access):
        assert (record.request_id, record.user_id, record.org_id) == (
            "req-api-1",
            f"key:{key.display_prefix}",
            funded_org.slug,
        )
    assert key.display_prefix.startswith("crd_") and token not in _line(ledger)  # never the secret


# ---------------------------------------------------------------- user text is escaped everywhere

SCRIPT = "<script>alert(1)</script>"
EVIL = '<b>x</b>"onmouseover=alert(1)'
EVIL_ESCAPED = "&lt;b&gt;x&lt;/b&gt;&quot;onmouseover=alert(1)"
SCRIPT_ESCAPED = "&lt;script&gt;alert(1)&lt;/script&gt;"


@pytest.fixture
def hostile(db):
    """An org and people whose every free-text field is markup or a spreadsheet formula."""
    from credit_requests.services import credit_request_create, credit_request_reject
    from orgs.services import org_create
    from tests.factories import MembershipFactory, fund
    from wallets.models import CreditType
    from wallets.services import org_transfer_to_member

    owner = UserFactory(email="hostile-owner@example.com", name=EVIL)
    org = org_create(name=SCRIPT, owner=owner)
    fund(org, 10_000)
    member = MembershipFactory(org=org, user=UserFactory(email="hostile-member@example.com", name=EVIL))
    formula = MembershipFactory(
        org=org, user=UserFactory(email="formula@example.com", name="@SUM(1+1)*cmd|' /C calc'!A0")
    )
    ct = CreditType.objects.get(slug="org-allocated")
    org_transfer_to_member(org=org, membership_id=member.pk, credit_type=ct, amount=250, actor=owner, memo=EVIL)
    org_transfer_to_member(
        org=org, membership_id=formula.pk, credit_type=ct, amount=5, actor=owner, memo='=HYPERLINK("http://x","y")'
    )
    pending = credit_request_create(org=org, user=member.user, amount=40, reason=EVIL).request
    rejected = credit_request_create(org=org, user=member.user, amount=50, reason=EVIL).request
    credit_request_reject(org=org, request_id=rejected.pk, actor=owner, reason=EVIL)
    return {"org": org, "owner": owner, "member": member, "pending": pending, "rejected": rejected}


def _assert_escaped(html: str, where: str, *expected: str):
    assert "<script>alert(1)" not in html, where
    assert "<b>x</b>" not in html, where
    assert '"onmouseover=' not in html, where
    for text in expected:
        assert text in html, f"{where}: {text} not shown"


def test_user_text_is_escaped_on_every_page(client, hostile):
    org, owner = hostile["org"], hostile["owner"]
    client.force_login(owner)
    client.post(reverse("workspace_switch"), {"workspace": org.slug})
    slug = org.slug
    pages = {
        "Billing": (reverse("billing:page", args=[slug]), [SCRIPT_ESCAPED, EVIL_ESCAPED]),
        "Credit Requests tab": (reverse("billing:requests", args=[slug]), [SCRIPT_ESCAPED, EVIL_ESCAPED]),
        "requests list": (reverse("billing:requests_list", args=[slug]), [EVIL_ESCAPED]),
        "requests history": (reverse("billing:requests_history", args=[slug]), [EVIL_ESCAPED]),
        "approve": (reverse("billing:request_approve", args=[slug, hostile["pending"].pk]), [EVIL_ESCAPED]),
        "reject": (reverse("billing:request_reject", args=[slug, hostile["pending"].pk]), [EVIL_ESCAPED]),
        "Transactions": (reverse("billing:transactions", args=[slug]), [SCRIPT_ESCAPED, EVIL_ESCAPED]),
        "Transfer dialog": (reverse("billing:transfer", args=[slug]), [EVIL_ESCAPED]),
        "Members": (reverse("members:page", args=[slug]), [SCRIPT_ESCAPED, EVIL_ESCAPED]),
        "Remove confirm": (reverse("members:remove", args=[slug, hostile["member"].pk]), [EVIL_ESCAPED]),
        "Seats": (reverse("members:seats", args=[slug]), [EVIL_ESCAPED]),
        "owner's Wallet": (reverse("wallet"), [SCRIPT_ESCAPED]),
    }
    for where, (url, expected) in pages.items():
        response = client.get(url)
        assert response.status_code == 200, where
        _assert_escaped(response.content.decode(), where, *expected)

    member = Client()
    member.force_login(hostile["member"].user)
    member.post(reverse("workspace_switch"), {"workspace": org.slug})
    for where, url in {
        "member's Wallet": reverse("wallet"),
        "member's requests panel": reverse("billing:member_requests_panel", args=[slug]),
        "Request credits": reverse("billing:request_new", args=[slug]),
    }.items():
        response = member.get(url)
        assert response.status_code == 200, where
        _assert_escaped(response.content.decode(), where)
    wallet = member.get(reverse("wallet")).content.decode()
    _assert_escaped(wallet, "member's Wallet", SCRIPT_ESCAPED, EVIL_ESCAPED)  # the memo and the reject reason


def test_csv_export_neutralizes_formulas(client, hostile):
    import csv
    import io

    client.force_login(hostile["owner"])
    response = client.get(reverse("billing:transactions_export", args=[hostile["org"].slug]))
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/csv")
    assert response["X-Content-Type-Options"] == "nosniff"
    body = b"".join(response.streaming_content).decode()
    rows = list(csv.DictReader(io.StringIO(body)))
    assert ",".join(rows[0]) == "id,date,kind,from,to,credit_type,amount,credits_moved,balance_after,actor,message"
    cells = [row[c] for row in rows for c in ("from", "to", "credit_type", "balance_after", "actor", "message")]
    assert not [c for c in cells if c[:1] in ("=", "+", "-", "@", "\t", "\r")], cells
    assert '\'=HYPERLINK("http://x","y")' in cells
    assert any(c.startswith("'@SUM(1+1)") for c in cells)
    assert EVIL in cells  # CSV is data, not HTML: the text is kept as typed (and served as text/csv)


# ---------------------------------------------------------------- staff unlock a lockout in Django admin


def test_staff_unlock_a_locked_out_user_from_django_admin(client):
    from axes.models import AccessAttempt
    from django.contrib.auth.models import Permission

    UserFactory(email="locked@example.com", password="the-right-passphrase")
    for _ in range(5):
        client.post(reverse("login"), {"username": "locked@example.com", "password": "wrong"})
    good = {"username": "locked@example.com", "password": "the-right-passphrase"}
    assert client.post(reverse("login"), good).status_code == 429
    attempts = list(AccessAttempt.objects.filter(username="locked@example.com").values_list("pk", flat=True))
    assert attempts

    staff = UserFactory(email="support@example.com", is_staff=True)
    staff.user_permissions.add(
        *Permission.objects.filter(
            content_type__app_label="axes", codename__in=["view_accessattempt", "delete_accessattempt"]
        )
    )
    admin = Client()
    admin.force_login(staff)
    changelist = reverse("admin:axes_accessattempt_changelist")
    page = admin.get(changelist)
    assert page.status_code == 200 and "locked@example.com" in page.content.decode()
    confirm = admin.post(changelist, {"action": "delete_selected", "_selected_action": attempts})
    assert confirm.status_code == 200 and "Are you sure" in confirm.content.decode()
    done = admin.post(changelist, {"action": "delete_selected", "_selected_action": attempts, "post": "yes"})
    assert done.status_code == 302
    assert not AccessAttempt.objects.filter(username="locked@example.com").exists()

    response = client.post(reverse("login"), good)
    assert response.status_code == 302 and response.url == reverse("wallet")


def test_a_member_cannot_unlock_anyone(client):
    from axes.models import AccessAttempt

    UserFactory(email="locked2@example.com")
    for _ in range(5):
        client.post(reverse("login"), {"username": "locked2@example.com", "password": "wrong"})
    attempts = list(AccessAttempt.objects.values_list("pk", flat=True))
    member = Client()
    member.force_login(UserFactory(email="plain@example.com"))
    changelist = reverse("admin:axes_accessattempt_changelist")
    response = member.post(changelist, {"action": "delete_selected", "_selected_action": attempts, "post": "yes"})
    assert response.status_code == 302 and "/admin/login/" in response.url
    assert AccessAttempt.objects.filter(pk__in=attempts).count() == len(attempts)
