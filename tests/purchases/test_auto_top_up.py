"""Auto top-up with a saved card (docs/auto-top-up.md): the card is saved through the stand-in's Checkout in
setup mode, a crossing below the threshold charges it off-session once, and the credits land once through the
Buy Credits fulfilment, whatever the webhooks, retries and concurrent triggers do."""

import contextlib
from datetime import timedelta

import pytest
from django.db.models import Sum
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from devtools.stripe_standin import core
from devtools.stripe_standin.models import StandinObject
from purchases import auto_top_up, stripe_client
from purchases.models import AutoTopUp, StripeEvent, TopUpAttempt, TopUpStatus
from tests.concurrency import race
from tests.factories import MembershipFactory, fund, ledger_snapshot
from tests.purchases.stripe_fixtures import post_event, standin_fixture  # noqa: F401
from wallets.errors import InsufficientCredits, LedgerBusy
from wallets.models import BalanceWatch, CreditType, Transfer, TransferKind, Wallet
from wallets.services import org_transfer_to_member
from wallets.watches import wallet_balance

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("standin")]

VISA, DECLINES, NEEDS_3DS = "4242424242424242", "4000000000000002", "4000002500003155"


def _page(org):
    return reverse("auto_top_up:page", kwargs={"org_slug": org.slug})


def _signed_in(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def save_card(client: Client, org, number=VISA):
    """What the browser does: Save a card -> the stand-in's setup page -> pick the card -> back to the app."""
    resp = client.post(reverse("auto_top_up:card_setup", kwargs={"org_slug": org.slug}))
    assert resp.status_code == 302 and "/stripe-standin/checkout/cs_" in resp.url
    path = resp.url[resp.url.index("/stripe-standin/") :]
    resp = client.post(path, {"card": number, "action": "save"})
    assert resp.status_code == 302 and "/auto-top-up/card/done/?session_id=cs_" in resp.url
    resp = client.get(resp.url.removeprefix("http://testserver"))
    assert resp.status_code == 302 and resp.url == _page(org)
    return AutoTopUp.objects.get(org=org)


def configure(client: Client, org, threshold=1_000, target=5_000, cap="100", enabled=True):
    data = {"threshold": str(threshold), "target": str(target), "monthly_cap": cap}
    if enabled:
        data["enabled"] = "on"
    return client.post(_page(org), data)


def spend(org, member, amount):
    """A movement out of the org wallet (to a member): what makes the balance cross the threshold."""
    ct = CreditType.objects.get(slug="org-allocated")
    return org_transfer_to_member(org=org, membership_id=member.pk, credit_type=ct, amount=amount)


def org_balance(org):
    return auto_top_up.org_balance(org.pk)


def top_up_credits(org) -> int:
    return Transfer.objects.filter(org=org, kind=TransferKind.AUTO_TOP_UP).aggregate(t=Sum("amount"))["t"] or 0


def payment_intents():
    return StandinObject.objects.filter(type="payment_intent")


@pytest.fixture
def member(org):
    return MembershipFactory(org=org, role="member")


@pytest.fixture
def owner_client(owner):
    return _signed_in(owner)


# ---------------------------------------------------------------- the stand-in, through the SDK


def test_standin_saves_a_card_and_charges_it_off_session_once_per_idempotency_key(org, owner):
    customer = stripe_client.create_customer(org_id=org.pk, org_name=org.name, email="", idempotency_key="k-cus")
    assert customer["id"].startswith("cus_")
    session = stripe_client.create_setup_session(
        customer=customer["id"],
        org_id=org.pk,
        success_url="http://x/ok",
        cancel_url="http://x/no",
        idempotency_key="k1",
    )
    assert session["mode"] == "setup" and session["status"] == "open"
    _, events = core.save_card(session["id"], VISA)
    assert [e["type"] for e in events] == ["checkout.session.completed", "setup_intent.succeeded"]
    full = stripe_client.retrieve_setup_session(session["id"])
    pm = full["setup_intent"]["payment_method"]
    assert pm["card"]["last4"] == "4242" and pm["customer"] == customer["id"]

    def charge(key):
        return stripe_client.charge_saved_card(
            customer=customer["id"],
            payment_method=pm["id"],
            amount_cents=4000,
            currency="usd",
            metadata={"purpose": "test"},
            idempotency_key=key,
        )

    first, again = charge("pi-key-1"), charge("pi-key-1")
    assert first["status"] == "succeeded" and first["amount"] == 4000
    assert again["id"] == first["id"]  # the same key: the same PaymentIntent, one charge
    assert charge("pi-key-2")["id"] != first["id"]
    assert payment_intents().count() == 2
    assert stripe_client.retrieve_payment_intent(first["id"])["status"] == "succeeded"


@pytest.mark.parametrize(("number", "code"), [(DECLINES, "card_declined"), (NEEDS_3DS, "authentication_required")])
def test_standin_card_errors_come_back_as_the_failed_payment_intent(org, owner, number, code):
    customer = stripe_client.create_customer(org_id=org.pk, org_name=org.name, email="", idempotency_key="c")
    session = stripe_client.create_setup_session(
        customer=customer["id"], org_id=org.pk, success_url="http://x/ok", cancel_url="http://x/no", idempotency_key="s"
    )
    core.save_card(session["id"], number)
    pm_id = stripe_client.retrieve_setup_session(session["id"])["setup_intent"]["payment_method"]["id"]
    pi = stripe_client.charge_saved_card(
        customer=customer["id"],
        payment_method=pm_id,
        amount_cents=900,
        currency="usd",
        metadata={},
        idempotency_key="same",
    )
    assert pi["status"] == "requires_payment_method" and pi["last_payment_error"]["code"] == code
    replay = stripe_client.charge_saved_card(
        customer=customer["id"],
        payment_method=pm_id,
        amount_cents=900,
        currency="usd",
        metadata={},
        idempotency_key="same",
    )
    assert replay["id"] == pi["id"] and payment_intents().count() == 1


def test_standin_refuses_another_customers_card(org, owner):
    a = stripe_client.create_customer(org_id=org.pk, org_name="a", email="", idempotency_key="a")
    b = stripe_client.create_customer(org_id=org.pk, org_name="b", email="", idempotency_key="b")
    session = stripe_client.create_setup_session(
        customer=a["id"], org_id=org.pk, success_url="http://x/ok", cancel_url="http://x/no", idempotency_key="s"
    )
    core.save_card(session["id"], VISA)
    pm_id = stripe_client.retrieve_setup_session(session["id"])["setup_intent"]["payment_method"]["id"]
    with pytest.raises(stripe_client.StripeError, match="not attached"):
        stripe_client.charge_saved_card(
            customer=b["id"], payment_method=pm_id, amount_cents=900, currency="usd", metadata={}, idempotency_key="x"
        )


# ---------------------------------------------------------------- saving the card and the settings


def test_owner_saves_a_card_and_settings_and_the_page_shows_them(org, owner, owner_client):
    row = save_card(owner_client, org)
    assert row.card_last4 == "4242" and row.card_brand == "visa" and row.stripe_customer_id.startswith("cus_")
    resp = configure(owner_client, org)
    assert resp.status_code == 302
    row.refresh_from_db()
    assert (row.enabled, row.threshold_credits, row.target_credits, row.monthly_cap_cents) == (True, 1000, 5000, 10000)
    watch = BalanceWatch.objects.get(purpose="auto_top_up", ref_id=row.pk)
    assert watch.threshold == 1000 and watch.credit_type_id is None
    page = owner_client.get(_page(org)).content.decode()
    assert "Visa ending 4242" in page and 'value="5000"' in page
    summary = owner_client.get(reverse("auto_top_up:summary", kwargs={"org_slug": org.slug})).content.decode()
    assert "Below <strong>1,000 credits</strong>" in summary
    billing = owner_client.get(reverse("billing:page", kwargs={"org_slug": org.slug})).content.decode()
    assert 'data-testid="auto-top-up-card"' in billing
    # Rendered with the page, so it is there without JavaScript (htmx only refreshes it).
    assert "Below <strong>1,000 credits</strong>" in billing and "card ending 4242" in billing


def test_the_setup_webhook_saves_the_card_too_and_a_replay_changes_nothing(org, owner, owner_client):
    resp = owner_client.post(reverse("auto_top_up:card_setup", kwargs={"org_slug": org.slug}))
    sid = resp.url.rstrip("/").rsplit("/", 1)[-1]
    _, events = core.save_card(sid, VISA)
    completed = events[0]
    assert post_event(completed).status_code == 200
    row = AutoTopUp.objects.get(org=org)
    assert row.card_last4 == "4242"
    generation = row.generation
    assert post_event(completed).status_code == 200  # the same event again: a no-op
    row.refresh_from_db()
    assert row.generation == generation and StripeEvent.objects.filter(event_id=completed["id"]).count() == 1


@pytest.mark.parametrize(
    ("data", "field", "message"),
    [
        ({"threshold": "", "target": "5000", "monthly_cap": "100"}, "threshold", "Enter the balance that starts"),
        ({"threshold": "1000", "target": "1000", "monthly_cap": "100"}, "target", "more than 1,000 credits"),
        ({"threshold": "1000", "target": "500", "monthly_cap": "100"}, "target", "more than 1,000 credits"),
        ({"threshold": "10.5", "target": "5000", "monthly_cap": "100"}, "threshold", "whole numbers"),
        ({"threshold": "-1", "target": "5000", "monthly_cap": "100"}, "threshold", "Enter at least 0"),
        ({"threshold": "1000", "target": "5000", "monthly_cap": "0"}, "monthly_cap", "minimum cap is $5.00"),
        ({"threshold": "1000", "target": "5000", "monthly_cap": "-5"}, "monthly_cap", "must be positive"),
        ({"threshold": "1000", "target": "5000", "monthly_cap": "abc"}, "monthly_cap", "as a number"),
        ({"threshold": "1000", "target": "5000", "monthly_cap": "10"}, "monthly_cap", "below one top-up"),
        ({"threshold": "1000", "target": "999999999999", "monthly_cap": "100"}, "target", "too large"),
    ],
)
def test_bad_input_is_refused_next_to_the_field_and_nothing_is_saved(org, owner, owner_client, data, field, message):
    save_card(owner_client, org)
    before = (
        AutoTopUp.objects.filter(org=org).values_list("threshold_credits", "enabled").get(),
        ledger_snapshot(),
    )
    resp = owner_client.post(_page(org), {**data, "enabled": "on"})
    assert resp.status_code == 400
    html = resp.content.decode()
    assert f'id="id_{field}_error"' in html and message in html
    after = (AutoTopUp.objects.filter(org=org).values_list("threshold_credits", "enabled").get(), ledger_snapshot())
    assert after == before
    assert not TopUpAttempt.objects.exists()


def test_turning_on_without_a_card_is_refused(org, owner, owner_client):
    resp = configure(owner_client, org)
    assert resp.status_code == 400 and "Save a card first" in resp.content.decode()
    assert not AutoTopUp.objects.filter(org=org, enabled=True).exists()


# ---------------------------------------------------------------- the top-up


def test_a_crossing_tops_up_once_and_the_credits_land_through_the_purchase_fulfilment(
    org, owner, owner_client, member, mailoutbox
):
    fund(org, 3_000)
    save_card(owner_client, org)
    assert configure(owner_client, org).status_code == 302
    assert not TopUpAttempt.objects.exists()  # 3,000 is above the threshold
    spend(org, member, 2_500)  # 3,000 -> 500: below 1,000
    attempt = TopUpAttempt.objects.get()
    assert attempt.status == TopUpStatus.SUCCEEDED
    assert (attempt.credits, attempt.amount_cents, attempt.balance_before) == (4_500, 4_500, 500)
    assert org_balance(org) == 5_000 and top_up_credits(org) == 4_500
    transfer = Transfer.objects.get(pk=attempt.transfer_id)
    assert (
        transfer.kind == TransferKind.AUTO_TOP_UP and transfer.idempotency_key == f"stripe:{attempt.payment_intent_id}"
    )
    pi = stripe_client.retrieve_payment_intent(attempt.payment_intent_id)
    assert pi["status"] == "succeeded" and pi["amount"] == 4_500 and pi["off_session"] is True
    assert pi["metadata"]["top_up_attempt"] == str(attempt.pk)
    assert StandinObject.objects.get(pk=attempt.payment_intent_id).idempotency_key == attempt.idempotency_key
    assert attempt.idempotency_key.startswith(f"auto-top-up:{org.pk}:")
    # The payment_intent.succeeded webhook, delivered twice (and a second event for the same intent): no more credits.
    evt = core.event("payment_intent.succeeded", core.get(attempt.payment_intent_id, "payment_intent"))
    assert post_event(evt).status_code == 200 and post_event(evt).status_code == 200
    evt2 = core.event("payment_intent.succeeded", core.get(attempt.payment_intent_id, "payment_intent"))
    assert post_event(evt2).status_code == 200
    assert top_up_credits(org) == 4_500 and org_balance(org) == 5_000
    assert not mailoutbox  # a successful top-up sends nothing
    page = owner_client.get(_page(org)).content.decode()
    assert "4,500 credits" in page and "$45.00" in page and ">Paid<" in page
    billing = owner_client.get(reverse("billing:page", kwargs={"org_slug": org.slug})).content.decode()
    assert "4,500 credits" in billing and ">Paid<" in billing  # every attempt is listed on the Billing page too


def test_when_the_charge_answer_is_lost_the_webhook_credits_once_and_asking_again_charges_once(
    org, owner, owner_client, member, monkeypatch
):
    fund(org, 3_000)
    save_card(owner_client, org)
    configure(owner_client, org)
    real = stripe_client.charge_saved_card

    def lost(**kwargs):
        real(**kwargs)  # Stripe charged, but its answer never arrived
        raise stripe_client.StripeError("connection reset")

    monkeypatch.setattr(stripe_client, "charge_saved_card", lost)
    spend(org, member, 2_500)
    attempt = TopUpAttempt.objects.get()
    assert attempt.status == TopUpStatus.PENDING and top_up_credits(org) == 0
    pi = payment_intents().get().data
    evt = core.event("payment_intent.succeeded", pi)
    # Twenty concurrent deliveries of the same event: one credits.
    results = race(20, lambda i: post_event(evt).status_code, check=True)
    assert results == [200] * 20
    attempt.refresh_from_db()
    assert attempt.status == TopUpStatus.SUCCEEDED and attempt.payment_intent_id == pi["id"]
    assert top_up_credits(org) == 4_500
    # The sweep would ask Stripe again for a pending try with the same key; Stripe answers the same intent.
    monkeypatch.setattr(stripe_client, "charge_saved_card", real)
    TopUpAttempt.objects.filter(pk=attempt.pk).update(status=TopUpStatus.PENDING, transfer=None)
    auto_top_up.charge_attempt(attempt.pk)
    assert payment_intents().count() == 1 and top_up_credits(org) == 4_500
    assert Transfer.objects.filter(idempotency_key=f"stripe:{pi['id']}").count() == 1


def test_concurrent_triggers_of_one_crossing_start_one_payment_intent(org, owner, owner_client, member):
    fund(org, 3_000)
    save_card(owner_client, org)
    configure(owner_client, org, enabled=False)
    spend(org, member, 2_500)  # below, but auto top-up is off
    row = AutoTopUp.objects.get(org=org)
    AutoTopUp.objects.filter(pk=row.pk).update(enabled=True)
    outcomes = race(10, lambda i: auto_top_up.run_check(org.pk), check=True)
    assert outcomes.count("charging") == 1, outcomes
    assert set(outcomes) <= {"charging", "in flight", "above threshold"}
    assert TopUpAttempt.objects.count() == 1 and payment_intents().count() == 1
    assert top_up_credits(org) == 4_500 and org_balance(org) == 5_000


def test_concurrent_movements_crossing_at_once_start_one_top_up(org, owner, owner_client):
    members = [MembershipFactory(org=org, role="member") for _ in range(8)]
    fund(org, 1_400)
    save_card(owner_client, org)
    configure(owner_client, org)
    race(8, lambda i: spend(org, members[i], 100), check=True)  # 1,400 -> 600, crossing 1,000 on the way
    assert TopUpAttempt.objects.count() == 1 and payment_intents().count() == 1
    attempt = TopUpAttempt.objects.get()
    assert attempt.status == TopUpStatus.SUCCEEDED
    assert org_balance(org) == 600 + attempt.credits and top_up_credits(org) == attempt.credits
    assert org_balance(org) >= 5_000 - 800  # bought to Y from a balance read under the lock


def test_the_monthly_cap_is_never_exceeded_under_concurrent_triggers(org, owner, owner_client, mailoutbox):
    members = [MembershipFactory(org=org, role="member") for _ in range(6)]
    fund(org, 5_000)
    save_card(owner_client, org)
    # Each top-up from below 1,000 to 5,000 costs more than $40; a $100 cap fits two, never three.
    assert configure(owner_client, org, cap="100").status_code == 302

    def drain(i):
        for _ in range(3):
            balance = org_balance(org)
            if balance > 0:
                with contextlib.suppress(InsufficientCredits, LedgerBusy):  # a racer took the credits first
                    spend(org, members[i], min(balance, 4_200))
            auto_top_up.run_check(org.pk)

    race(6, drain, check=True)
    charged = TopUpAttempt.objects.filter(status__in=[TopUpStatus.SUCCEEDED, TopUpStatus.PENDING])
    assert 0 < (charged.aggregate(t=Sum("amount_cents"))["t"] or 0) <= 10_000  # never past the cap under the race
    # How many crossings the racing threads made depends on scheduling; keep crossing (one thread) until the cap
    # stops a top-up, so the end state is the same on a loaded machine.
    for _ in range(3):
        if TopUpAttempt.objects.filter(status=TopUpStatus.SKIPPED_CAP).exists():
            break
        if (balance := org_balance(org)) >= 1_000:
            spend(org, members[0], balance - 500)
        auto_top_up.run_check(org.pk)
    spent = charged.aggregate(t=Sum("amount_cents"))["t"] or 0
    assert 0 < spent <= 10_000
    assert charged.count() == 2
    assert TopUpAttempt.objects.filter(status=TopUpStatus.SKIPPED_CAP).exists()
    assert top_up_credits(org) == sum(a.credits for a in charged)
    paid_at_stripe = sum(o.data["amount_received"] for o in payment_intents())
    assert paid_at_stripe == spent
    cap_mails = [m for m in mailoutbox if "monthly cap" in m.subject]
    assert len(cap_mails) == 1 and "$100.00" in cap_mails[0].body


def test_a_declined_card_adds_nothing_emails_the_admins_and_retries_after_1h_6h_24h_then_stops(
    org, owner, owner_client, member, mailoutbox
):
    admin = MembershipFactory(org=org, role="admin")
    MembershipFactory(org=org, role="manager")
    fund(org, 3_000)
    save_card(owner_client, org, DECLINES)
    configure(owner_client, org)
    spend(org, member, 2_500)
    first = TopUpAttempt.objects.get()
    assert first.status == TopUpStatus.DECLINED and first.failure_code == "card_declined"
    assert first.transfer_id is None and top_up_credits(org) == 0 and org_balance(org) == 500
    assert first.next_retry_at == first.created_at + timedelta(hours=1)
    mail = mailoutbox[-1]
    assert sorted(mail.to) == sorted([owner.email, admin.user.email])
    assert "declined" in mail.subject and _page(org) in mail.body and "try again" in mail.body
    # Not due yet: nothing happens.
    assert auto_top_up.run_check(org.pk, now=first.created_at + timedelta(minutes=59)) == "retry not due"
    expected = [timedelta(hours=1), timedelta(hours=6), timedelta(hours=24)]
    previous = first
    for delay in expected:
        assert auto_top_up.run_check(org.pk, now=previous.next_retry_at + timedelta(seconds=1)) == "charging"
        previous = TopUpAttempt.objects.order_by("-try_number").first()
        assert previous.status == TopUpStatus.DECLINED
        assert previous.try_number == expected.index(delay) + 2
    assert previous.try_number == 4 and previous.next_retry_at is None
    assert auto_top_up.run_check(org.pk, now=previous.created_at + timedelta(days=30)) == "gave up"
    assert TopUpAttempt.objects.count() == 4 and payment_intents().count() == 4
    tries = list(TopUpAttempt.objects.order_by("try_number"))
    assert [a.next_retry_at - a.created_at for a in tries[:3]] == expected
    assert top_up_credits(org) == 0
    assert len([m for m in mailoutbox if "declined" in m.subject]) == 4
    assert "We will not try again" in mailoutbox[-1].body
    page = owner_client.get(_page(org)).content.decode()
    assert page.count(">Declined<") == 4 and "No more retries" in page


def test_a_card_that_needs_authentication_is_reported_not_retried(org, owner, owner_client, member, mailoutbox):
    fund(org, 3_000)
    save_card(owner_client, org, NEEDS_3DS)
    configure(owner_client, org)
    spend(org, member, 2_500)
    attempt = TopUpAttempt.objects.get()
    assert attempt.status == TopUpStatus.NEEDS_AUTHENTICATION and attempt.next_retry_at is None
    assert top_up_credits(org) == 0
    assert "authentication" in mailoutbox[-1].subject and _page(org) in mailoutbox[-1].body
    assert auto_top_up.run_check(org.pk, now=timezone.now() + timedelta(days=2)) == "needs authentication"
    auto_top_up.sweep(now=timezone.now() + timedelta(days=2))
    assert TopUpAttempt.objects.count() == 1 and payment_intents().count() == 1
    # Saving a card that works starts afresh: the balance is still below, so it tops up now.
    save_card(owner_client, org, VISA)
    assert TopUpAttempt.objects.filter(status=TopUpStatus.SUCCEEDED).count() == 1
    assert org_balance(org) == 5_000
    assert "Needs authentication" in owner_client.get(_page(org)).content.decode()


def test_saving_settings_below_the_threshold_tops_up_at_once_and_a_double_submit_charges_once(org, owner, owner_client):
    fund(org, 200)
    save_card(owner_client, org)
    race(2, lambda i: configure(_signed_in(owner), org).status_code, check=True)
    assert TopUpAttempt.objects.count() == 1 and payment_intents().count() == 1
    assert org_balance(org) == 5_000


def test_the_next_crossing_after_a_top_up_tops_up_again(org, owner, owner_client, member):
    fund(org, 3_000)
    save_card(owner_client, org)
    configure(owner_client, org, cap="1000")
    spend(org, member, 2_500)
    spend(org, member, 4_500)  # 5,000 -> 500
    attempts = list(TopUpAttempt.objects.order_by("id"))
    assert [a.status for a in attempts] == [TopUpStatus.SUCCEEDED] * 2
    assert attempts[0].generation < attempts[1].generation
    assert org_balance(org) == 5_000 and top_up_credits(org) == 9_000


def test_movements_above_the_threshold_start_nothing(org, owner, owner_client, member):
    fund(org, 9_000)
    save_card(owner_client, org)
    configure(owner_client, org)
    spend(org, member, 2_000)
    assert not TopUpAttempt.objects.exists() and payment_intents().count() == 0
    assert auto_top_up.sweep()["checked"] == {}


# ---------------------------------------------------------------- who may see it


@pytest.mark.parametrize("role", ["member", "manager"])
def test_members_and_managers_get_403_and_see_no_section(org, owner, role):
    user = MembershipFactory(org=org, role=role).user
    client = _signed_in(user)
    for name in ("page", "summary", "card_done"):
        assert client.get(reverse(f"auto_top_up:{name}", kwargs={"org_slug": org.slug})).status_code == 403
    assert client.post(reverse("auto_top_up:card_setup", kwargs={"org_slug": org.slug})).status_code == 403
    assert client.post(_page(org), {"threshold": "1", "target": "5", "monthly_cap": "50"}).status_code == 403
    assert not AutoTopUp.objects.exists()
    if role == "manager":
        billing = client.get(reverse("billing:page", kwargs={"org_slug": org.slug})).content.decode()
        assert "auto-top-up-card" not in billing


def test_another_orgs_card_is_a_404(org, owner, owner_client, other_org):
    save_card(owner_client, org)
    theirs = AutoTopUp.objects.get(org=org).setup_session_id
    other_owner = _signed_in(other_org.memberships.get(role="owner").user)
    done = reverse("auto_top_up:card_done", kwargs={"org_slug": other_org.slug})
    assert other_owner.get(f"{done}?session_id={theirs}").status_code == 404
    assert other_owner.get(f"{done}?session_id=cs_test_nope").status_code == 404
    assert owner_client.get(_page(other_org)).status_code == 404
    assert not AutoTopUp.objects.filter(org=other_org, payment_method_id__gt="").exists()
    assert other_owner.get(_page(other_org)).content.decode().count("ending 4242") == 0


def test_wallet_balance_helper_agrees(org, owner):
    """The threshold is compared with the wallet's total, the same number wallets.watches reads."""
    fund(org, 1_234)
    assert org_balance(org) == wallet_balance(Wallet.objects.for_org(org).pk) == 1_234


def test_a_signed_webhook_whose_body_says_paid_credits_nothing_when_stripe_says_declined(
    org, owner, owner_client, member
):
    fund(org, 3_000)
    save_card(owner_client, org, DECLINES)
    configure(owner_client, org)
    spend(org, member, 2_500)
    attempt = TopUpAttempt.objects.get()
    assert attempt.status == TopUpStatus.DECLINED
    pi = dict(core.get(attempt.payment_intent_id, "payment_intent"), status="succeeded")  # the body lies
    assert post_event(core.event("payment_intent.succeeded", pi)).status_code == 200
    attempt.refresh_from_db()
    assert attempt.status == TopUpStatus.DECLINED and top_up_credits(org) == 0


def test_the_sweep_runs_a_due_retry_and_nothing_before(org, owner, owner_client, member):
    fund(org, 3_000)
    save_card(owner_client, org, DECLINES)
    configure(owner_client, org)
    spend(org, member, 2_500)
    first = TopUpAttempt.objects.get()
    assert auto_top_up.sweep(now=first.next_retry_at - timedelta(seconds=1))["checked"] == {org.pk: "retry not due"}
    assert auto_top_up.sweep(now=first.next_retry_at + timedelta(seconds=1))["checked"] == {org.pk: "charging"}
    assert TopUpAttempt.objects.filter(try_number=2, status=TopUpStatus.DECLINED).count() == 1


def test_a_refund_of_a_top_up_takes_its_credits_back_once(org, owner, owner_client, member):
    fund(org, 3_000)
    save_card(owner_client, org)
    configure(owner_client, org)
    spend(org, member, 2_500)
    attempt = TopUpAttempt.objects.get()
    assert org_balance(org) == 5_000
    stripe_client.create_refund(payment_intent=attempt.payment_intent_id, amount_cents=1_500)
    charge = core.get(core.get(attempt.payment_intent_id, "payment_intent")["latest_charge"], "charge")
    refunded = core.event("charge.refunded", charge)
    assert post_event(refunded).status_code == 200 and post_event(refunded).status_code == 200
    attempt.refresh_from_db()
    assert (attempt.refunded_cents, attempt.refunded_credits) == (1_500, 1_500)
    assert org_balance(org) == 3_500
    # A later event with the same total (Stripe's refund.updated) takes nothing more.
    assert post_event(core.event("charge.refunded", charge)).status_code == 200
    assert org_balance(org) == 3_500
    assert Transfer.objects.filter(kind=TransferKind.REFUND, org=org).count() == 1
    assert "1,500 credits, $15.00 refunded" in owner_client.get(_page(org)).content.decode()


def test_a_card_stripe_no_longer_has_fails_the_try_instead_of_leaving_it_pending(
    org, owner, owner_client, member, mailoutbox
):
    fund(org, 3_000)
    save_card(owner_client, org)
    configure(owner_client, org)
    AutoTopUp.objects.filter(org=org).update(payment_method_id="pm_test_gone")  # detached at Stripe meanwhile
    spend(org, member, 2_500)
    attempt = TopUpAttempt.objects.get()
    assert attempt.status == TopUpStatus.DECLINED and attempt.failure_code == "resource_missing"
    assert attempt.next_retry_at == attempt.created_at + timedelta(hours=1)
    assert top_up_credits(org) == 0 and payment_intents().count() == 0
    assert "declined" in mailoutbox[-1].subject
