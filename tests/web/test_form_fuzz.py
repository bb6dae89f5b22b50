"""Every form that takes an amount, fuzzed: odd strings are refused with a message, never a 500, never a movement."""

import re
import uuid

import pytest
from django.test import Client
from django.urls import reverse
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from tests.factories import MembershipFactory, ledger_snapshot
from tests.purchases.stripe_fixtures import standin_fixture  # noqa: F401 (the `standin` fixture)
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


@pytest.mark.parametrize(
    "value", ["5 5", "1,00", "١٢٣", "１２３", "1_000", "+5", "1e3", "5\x00", "9223372036854775808", "9" * 300]
)
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
    from credit_requests.models import CreditRequest
    from credit_requests.services import credit_request_create

    org, member, admin, member_client = people
    pending = (
        CreditRequest.objects.filter(org=org, status="pending").first()
        or credit_request_create(org=org, user=member.user, amount=100, reason="fuzz").request
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


# ---------------------------------------------------------------- Buy Credits (dollar amounts, Stripe stand-in)

DOLLAR_ODD = [
    *ODD,
    "$١٢٣",
    "٥٠",
    "５０",
    "٥٠.٠٠",
    "25.5٠",
    "12٣",
    "1_000.00",
    "+25",
    "25e0",
    "2.5e1",
    "Infinity",
    "-Infinity",
    "sNaN",
    "5.001",
    "25.005",
    ".5",
    "25\x00",
    "\x0025",
    "$",
    "$$25",
    "25$",
    "25 .00",
    "10,00",
    "1,0000",
    ",100",
    "100,",
    "1..5",
    "0x19",
    "9" * 300 + ".00",
    "0." + "0" * 300 + "1",
]
DOLLAR_VALID = [
    "25",
    "  25 ",
    "$25",
    "$ 25",
    "25.",
    "25.5",
    "25.50",
    "1,000",
    "1,000.5",
    "25.500",
    "00025",
    "5",
    "100000",
]
# Near-misses: mostly digits, with the separators, signs and look-alike digits people (and attackers) type.
near_dollars = st.text(alphabet=st.sampled_from("0123456789.,$ -+e_١٢５\x00"), min_size=1, max_size=12)
dollar_amounts = st.one_of(st.sampled_from(DOLLAR_ODD + DOLLAR_VALID), near_dollars, st.text(max_size=40))
_PLAIN_DOLLARS = re.compile(r"(?:[0-9]{1,3}(?:,[0-9]{3})+|[0-9]+)(?:\.[0-9]*)?", re.ASCII)


def _expected_cents(text: str) -> int | None:
    """What a person means by `text` in US cents, if it is a plain ASCII dollar amount within the limits."""
    from django.conf import settings as django_settings

    raw = text.strip()
    raw = raw[1:].strip() if raw.startswith("$") else raw
    if not _PLAIN_DOLLARS.fullmatch(raw):
        return None
    whole, _, frac = raw.replace(",", "").partition(".")
    if frac[2:].strip("0"):  # a fraction of a cent
        return None
    cents = int(whole) * 100 + int((frac + "00")[:2])
    return cents if django_settings.PURCHASE_MIN_CENTS <= cents <= django_settings.PURCHASE_MAX_CENTS else None


@pytest.mark.parametrize("value", DOLLAR_ODD)
def test_parse_dollars_refuses_odd_amounts(value):
    from purchases.services import PurchaseError, parse_dollars

    with pytest.raises(PurchaseError):
        parse_dollars(value)


@pytest.mark.parametrize("value", DOLLAR_VALID)
def test_parse_dollars_takes_plain_amounts(value):
    from purchases.services import parse_dollars

    assert parse_dollars(value) == _expected_cents(value) is not None


@pytest.mark.django_db(transaction=True)
@fuzz
@given(amount=dollar_amounts)
def test_buy_credits_form_never_takes_odd_amounts(standin, org, owner, amount):
    """The Purchase POST (and its preview) never answers 500 and never moves credits; it creates a Purchase
    and a Checkout Session (in the Stripe stand-in, over HTTP) only for a plain ASCII dollar amount in range,
    for exactly that many cents."""
    from purchases.models import Purchase

    admin = Client()
    admin.force_login(owner)
    before_ledger, before_ids = ledger_snapshot(), set(Purchase.objects.values_list("pk", flat=True))
    expected = _expected_cents(amount)
    event("refused" if expected is None else "purchase started")
    preview = admin.get(reverse("billing:buy_preview", args=[org.slug]), {"amount": amount})
    assert preview.status_code == 200
    response = admin.post(reverse("billing:buy", args=[org.slug]), {"amount": amount})
    new = list(Purchase.objects.exclude(pk__in=before_ids))
    assert ledger_snapshot() == before_ledger  # a purchase moves credits only once Stripe says it is paid
    if expected is None:
        assert response.status_code == 400, (amount, response.status_code)
        assert 'role="alert"' in response.content.decode()
        assert new == []
    else:
        assert response.status_code == 302, (amount, response.status_code)
        assert [(p.amount_cents, p.status) for p in new] == [(expected, "pending")]
        assert response["Location"] == new[0].checkout_url


@pytest.mark.django_db
@pytest.mark.parametrize("ref", ["²", "١", "１", "-1", "1_0", " 1"])
def test_stripe_purchase_references_are_ascii_digits(org, owner, ref):
    """A purchase id read back from a Checkout Session or a Charge is ASCII digits or nothing (never a crash,
    never another purchase: an Arabic-Indic one is not purchase 1)."""
    from purchases.models import Purchase
    from purchases.services import _purchase_for_charge, purchase_for_session

    purchase = Purchase.objects.create(org=org, created_by=owner, amount_cents=2500, credits=2500)
    Purchase.objects.filter(pk=purchase.pk).update(id=1)
    meta = {"org_id": str(org.pk), "purchase_id": ref}
    assert purchase_for_session({"id": "cs_unknown", "client_reference_id": ref, "metadata": meta}) is None
    assert _purchase_for_charge({"id": "ch_unknown", "payment_intent": None, "metadata": meta}) is None
