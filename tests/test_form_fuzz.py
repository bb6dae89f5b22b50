"""Every form that takes an amount, fuzzed: odd strings are refused with a message, never a 500, never a movement."""

import uuid

import pytest
from django.test import Client
from django.urls import reverse
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.factories import MembershipFactory, ledger_snapshot
from wallets.forms import CreditsField

ODD = [
    "١٢٣",
    "１２３",
    "1_000",
    "+5",
    "1e3",
    "9223372036854775808",
    "9" * 300,
    "",
    " ",
    "\x00",
    "5\x00",
    "-1",
    "0",
    "1.5",
    "0x10",
    "NaN",
    "inf",
    "1,00",
    "١",
    "5 5",
    "<script>",
    "=1+1",
    "1" + "\u200b",
]


def _is_plain_whole_number(text: str) -> bool:
    t = text.strip()
    return t.isascii() and t.replace(",", "").isdigit() and t.replace(",", "").lstrip("0") != ""


amounts = st.one_of(st.sampled_from(ODD), st.text(max_size=40).filter(lambda s: not _is_plain_whole_number(s)))
fuzz = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


@pytest.mark.parametrize("value", ["5 5", "1,00", "١٢٣", "１２３", "1_000", "+5", "1e3", "5\x00", "9223372036854775808", "9" * 300])
def test_credits_field_refuses_odd_amounts(value):
    from django import forms

    with pytest.raises(forms.ValidationError):
        CreditsField().clean(value)


def test_credits_field_takes_plain_and_grouped_numbers():
    assert CreditsField().clean(" 1,000 ") == 1000
    assert CreditsField().clean("1 000") == 1000
    assert CreditsField(min_value=0, max_value=10).clean("0") == 0


@pytest.fixture
def people(funded_org, owner):
    member = MembershipFactory(org=funded_org, role="member")
    admin = Client()
    admin.force_login(owner)
    member_client = Client()
    member_client.force_login(member.user)
    return funded_org, member, admin, member_client


@pytest.mark.django_db
@fuzz
@given(amount=amounts)
def test_transfer_forms_never_move_odd_amounts(people, amount):
    org, member, admin, _ = people
    before = ledger_snapshot()
    url = reverse("billing:transfer_submit", args=[org.slug])
    for data in (
        {"mode": "one", "recipient": member.pk, "credit_type": "org-allocated"},
        {"mode": "all", "credit_type": "org-allocated"},
    ):
        response = admin.post(url, {**data, "amount": amount, "idempotency_key": uuid.uuid4()})
        assert response.status_code in (200, 400), response.status_code
    assert ledger_snapshot() == before


@pytest.mark.django_db
@fuzz
@given(amount=amounts)
def test_credit_request_forms_never_take_odd_amounts(people, amount):
    from billing.models import CreditRequest
    from billing.requests import credit_request_create

    org, member, admin, member_client = people
    pending = CreditRequest.objects.filter(org=org, status="pending").first() or credit_request_create(
        org=org, user=member.user, amount=100, reason="fuzz"
    )
    before = (ledger_snapshot(), CreditRequest.objects.count())
    response = member_client.post(reverse("billing:request_new", args=[org.slug]), {"amount": amount, "reason": "x"})
    assert response.status_code in (200, 400), response.status_code
    response = admin.post(
        reverse("billing:request_approve", args=[org.slug, pending.pk]),
        {"amount": amount, "credit_type": "org-allocated"},
    )
    assert response.status_code in (200, 400), response.status_code
    assert (ledger_snapshot(), CreditRequest.objects.count()) == before
    pending.refresh_from_db()
    assert pending.status == "pending"


@pytest.mark.django_db
@fuzz
@given(amount=amounts)
def test_member_forms_never_take_odd_amounts(people, amount):
    from orgs.models import Invitation, MemberDefaults

    org, _member, admin, _ = people
    defaults_before = list(MemberDefaults.objects.values())
    invitations_before = Invitation.objects.count()
    response = admin.post(
        reverse("members:invite", args=[org.slug]),
        {"email": "fuzz-invitee@example.com", "role": "member", "credit_allocation": amount},
    )
    assert response.status_code in (200, 302, 400), response.status_code
    if amount.strip():  # an empty allocation is allowed (it is optional): then the invite may be created
        assert Invitation.objects.count() == invitations_before
    response = admin.post(
        reverse("members:defaults", args=[org.slug]),
        {"default_role": "member", "seat_assignment_credits": amount, "default_credit_allocation": amount},
    )
    if amount.strip().strip("0") == "" and amount.strip():  # "0", "00": a valid setting (0 to 100,000)
        assert response.status_code == 302
        return
    assert response.status_code in (200, 400), response.status_code
    assert list(MemberDefaults.objects.values()) == defaults_before
