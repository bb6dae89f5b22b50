"""Names, memos and descriptions with control characters are refused with a field error and nothing is saved,
at every place people type them: a line break in a name reached the admins' notification email's subject, and
the email silently failed."""

import re
import uuid

import pytest
from django.test import Client
from django.urls import reverse

from core.validators import MULTI_LINE_MESSAGE, PLAIN_TEXT_PATTERN, SINGLE_LINE_MESSAGE, first_control_character
from credit_requests.models import CreditRequest
from credit_requests.services import credit_request_create
from members import services as svc
from orgs.models import User
from tests.api.helpers import Api, give, issue_key
from tests.factories import MembershipFactory, ledger_snapshot
from tests.members.helpers import PASSWORD, ask_for_link, invite_path
from web.views.accounts import signup_token

pytestmark = pytest.mark.django_db

# CR/LF (an email header injection), a lone LF, a tab, ESC (terminal escapes), NEL, the Unicode line
# separator, a right-to-left override (a name or memo that reads backwards), and DEL.
CONTROL = ["Eve\r\nBcc: all@example.com", "Eve\nAdmin", "Eve\tX", "Eve\x1b[31m", "Eve\x85X", "Eve\u2028X", "Eve\u202eX"]
CONTROL += ["Eve\x7fX"]


@pytest.mark.parametrize("text", [*CONTROL, "a\x00b"])
def test_the_shared_validator_finds_each(text):
    assert first_control_character(text) is not None


def test_the_published_pattern_is_the_same_set():
    """The API schema's pattern (ECMA-262, where $ is the very end: Python spells it \\Z) refuses exactly what the
    validator refuses, for every code point."""
    pattern = re.compile(PLAIN_TEXT_PATTERN.removesuffix("$") + r"\Z")
    differ = [
        hex(cp)
        for cp in range(0x110000)
        if not 0xD800 <= cp <= 0xDFFF and (pattern.match(chr(cp)) is None) != bool(first_control_character(chr(cp)))
    ]
    assert differ == []


@pytest.mark.parametrize(
    "text", ["Ada Lovelace", "Zoë O'Brien-Łukasz", "مريم", "李小龍", "👩🏽‍💻 Dev", "a\u00a0b", "é"]
)
def test_plain_text_in_any_script_passes(text):
    assert first_control_character(text) is None


def _html(response) -> str:
    return response.content.decode()


# ---------------------------------------------------------------- names


@pytest.mark.parametrize("name", CONTROL)
def test_sign_up_name_is_refused(client, name, mailoutbox, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(reverse("signup"), {"name": name, "email": "eve@example.com"})
    assert response.status_code == 400 and SINGLE_LINE_MESSAGE in _html(response)
    assert mailoutbox == []  # no link was sent for the bad name


@pytest.mark.parametrize("name", CONTROL)
def test_sign_up_confirm_name_is_refused(client, name):
    link = reverse("signup_confirm", args=[signup_token(email="eve@example.com")])
    response = client.post(link, {"name": name, "password": PASSWORD})
    assert response.status_code == 400 and SINGLE_LINE_MESSAGE in _html(response)
    assert not User.objects.filter(email="eve@example.com").exists()


@pytest.mark.parametrize("name", CONTROL)
def test_invite_accept_name_is_refused_on_both_steps(
    client, org, owner, name, mailoutbox, django_capture_on_commit_callbacks
):
    inv = svc.invitation_create(org=org, email="eve@example.com", role="member", actor=owner)
    path = invite_path(inv)
    mailoutbox.clear()
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(path, {"name": name})
    assert response.status_code == 400 and SINGLE_LINE_MESSAGE in _html(response)
    assert mailoutbox == []

    link = ask_for_link(client, path, django_capture_on_commit_callbacks, mailoutbox, name="Eve")
    response = client.post(link, {"name": name, "password": PASSWORD})
    assert response.status_code == 400 and SINGLE_LINE_MESSAGE in _html(response)
    assert not User.objects.filter(email="eve@example.com").exists()
    assert inv.org.memberships.count() == 1  # the owner only


# ---------------------------------------------------------------- memos and reasons (web)


@pytest.fixture
def admin_client(funded_org, owner):
    c = Client()
    c.force_login(owner)
    return c


@pytest.mark.parametrize("memo", CONTROL)
def test_transfer_message_is_refused_and_nothing_moves(admin_client, funded_org, member_membership, memo):
    before = ledger_snapshot()
    response = admin_client.post(
        reverse("billing:transfer_submit", args=[funded_org.slug]),
        {
            "mode": "one",
            "recipient": str(member_membership.pk),
            "credit_type": "org-allocated",
            "amount": "25",
            "message": memo,
            "idempotency_key": str(uuid.uuid4()),
        },
    )
    assert response.status_code in (200, 400) and SINGLE_LINE_MESSAGE in _html(response)
    assert ledger_snapshot() == before


@pytest.mark.parametrize("mode", ["all", "selected"])
@pytest.mark.parametrize("reason", CONTROL[:3])
def test_bulk_transfer_reason_is_refused_and_nothing_moves(admin_client, funded_org, member_membership, mode, reason):
    before = ledger_snapshot()
    response = admin_client.post(
        reverse("billing:transfer_submit", args=[funded_org.slug]),
        {
            "mode": mode,
            "member": [str(member_membership.pk)],
            "credit_type": "org-allocated",
            "amount": "5",
            "reason": reason,
            "idempotency_key": str(uuid.uuid4()),
        },
    )
    assert response.status_code in (200, 400) and SINGLE_LINE_MESSAGE in _html(response)
    assert ledger_snapshot() == before


@pytest.mark.parametrize("reason", [r for r in CONTROL if "\n" not in r])
def test_credit_request_reason_is_refused_and_nothing_is_saved(funded_org, member_membership, reason):
    member = Client()
    member.force_login(member_membership.user)
    response = member.post(reverse("billing:request_new", args=[funded_org.slug]), {"amount": "10", "reason": reason})
    assert MULTI_LINE_MESSAGE in _html(response)
    assert not CreditRequest.objects.exists()


def test_credit_request_reason_may_have_line_breaks(funded_org, member_membership):
    """A reason is a textarea: line breaks (as browsers send them, CR LF) are text, not an attack on a header."""
    member = Client()
    member.force_login(member_membership.user)
    response = member.post(
        reverse("billing:request_new", args=[funded_org.slug]), {"amount": "10", "reason": "GPU time\r\nfor the demo"}
    )
    assert response.status_code == 302
    assert CreditRequest.objects.get().reason == "GPU time\r\nfor the demo"


@pytest.mark.parametrize("reason", ["No\x1b[2J", "No\u202eX", "No\tthanks"])
def test_credit_request_reject_reason_is_refused_and_the_request_stays_pending(
    admin_client, funded_org, member_membership, reason
):
    pending = credit_request_create(org=funded_org, user=member_membership.user, amount=10, reason="x").request
    response = admin_client.post(
        reverse("billing:request_reject", args=[funded_org.slug, pending.pk]), {"reason": reason}
    )
    assert MULTI_LINE_MESSAGE in _html(response)
    pending.refresh_from_db()
    assert pending.status == "pending" and pending.decision_reason == ""


# ---------------------------------------------------------------- the JSON API


@pytest.mark.parametrize("memo", CONTROL)
def test_api_transfer_memo_is_refused_and_nothing_moves(funded_org, owner, member_membership, memo):
    api = Api(issue_key(funded_org, "transfer", created_by=owner)[1])
    before = ledger_snapshot()
    response = api.post("/transfers", {"members": [member_membership.pk], "amount": 5, "memo": memo}, key="m1")
    assert response.status_code == 422, response.content
    body = response.json()
    assert body["code"] == "validation_error" and "control characters" in response.content.decode()
    assert ledger_snapshot() == before
    # Plain text with the same key still works (a refusal is not stored against the key).
    ok = api.post("/transfers", {"members": [member_membership.pk], "amount": 5, "memo": "Eve"}, key="m1")
    assert ok.status_code == 201


@pytest.mark.parametrize("description", CONTROL)
def test_api_usage_description_is_refused_and_nothing_moves(funded_org, description):
    member = MembershipFactory(org=funded_org)
    give(funded_org, member, 100)
    api = Api(issue_key(funded_org, "charge")[1])
    before = ledger_snapshot()
    response = api.post("/usage", {"member_id": member.pk, "amount": 5, "description": description}, key="u1")
    assert response.status_code == 422, response.content
    assert response.json()["code"] == "validation_error" and "control characters" in response.content.decode()
    assert ledger_snapshot() == before
