"""Django admin: staff see the money but never edit it; the Promo grant action goes through the one primitive.

Staff here is a superuser, the most powerful staff there is: if even a superuser cannot add, change or delete
transfers, entries, pockets or wallets, no permission setting can let anyone else do it.
"""

import uuid

import pytest
from django.test import Client
from django.urls import NoReverseMatch, reverse

from tests.factories import MembershipFactory, UserFactory, fund, ledger_snapshot
from wallets.models import Entry, Pocket, Transfer, TransferKind, Wallet
from wallets.selectors import ledger_problems, wallet_balance

pytestmark = pytest.mark.django_db

MONEY_MODELS = ["transfer", "pocket", "wallet"]


@pytest.fixture
def staff():
    user = UserFactory(email="staff@example.com", is_staff=True)
    user.is_superuser = True
    user.save(update_fields=["is_superuser"])
    client = Client()
    client.force_login(user)
    return user, client


@pytest.fixture
def books(funded_org, owner):
    """An org with a purchase, a promo grant and a transfer to a member: every money model has rows."""
    from wallets.models import CreditType
    from wallets.services import org_transfer_to_member

    fund(funded_org, 700, "promo")
    member = MembershipFactory(org=funded_org)
    org_transfer_to_member(
        org=funded_org,
        membership_id=member.pk,
        credit_type=CreditType.objects.get(slug="org-allocated"),
        amount=250,
        actor=owner,
    )
    return funded_org


def _state():
    """Everything an admin page could touch: the ledger, and the wallets' own fields."""
    return ledger_snapshot(), sorted(Wallet.objects.values_list("pk", "kind", "name", "org_id", "user_id", "code"))


def _one(model: str):
    return {"transfer": Transfer, "pocket": Pocket, "wallet": Wallet}[model].objects.order_by("pk").first()


@pytest.mark.parametrize("model", MONEY_MODELS)
def test_staff_can_view_lists_and_details(books, staff, model):
    _, client = staff
    assert client.get(reverse(f"admin:wallets_{model}_changelist")).status_code == 200
    page = client.get(reverse(f"admin:wallets_{model}_change", args=[_one(model).pk]))
    assert page.status_code == 200
    html = page.content.decode()
    assert 'name="_save"' not in html  # a read-only view: no Save, Save and continue, Save and add
    assert 'name="_continue"' not in html and 'name="_addanother"' not in html
    assert "deletelink" not in html  # no Delete link


@pytest.mark.parametrize("model", MONEY_MODELS)
def test_staff_cannot_add_or_delete(books, staff, model):
    _, client = staff
    obj = _one(model)
    before = _state()
    add = reverse(f"admin:wallets_{model}_add")
    delete = reverse(f"admin:wallets_{model}_delete", args=[obj.pk])
    assert client.get(add).status_code == 403
    assert client.post(add, {"kind": "org", "name": "Forged", "balance": 1_000_000, "amount": 5}).status_code == 403
    assert client.get(delete).status_code == 403
    assert client.post(delete, {"post": "yes"}).status_code == 403
    assert _state() == before


@pytest.mark.parametrize("model", MONEY_MODELS)
def test_posting_a_change_form_changes_nothing(books, staff, model):
    _, client = staff
    obj = _one(model)
    before = _state()
    forged = {
        "balance": 1_000_000,
        "amount": 999,
        "memo": "edited",
        "kind": "refund",
        "name": "Renamed",
        "_save": "Save",
        # the inline management forms, as if the inlines were editable
        "pockets-TOTAL_FORMS": "1",
        "pockets-INITIAL_FORMS": "1",
        "entries-TOTAL_FORMS": "1",
        "entries-INITIAL_FORMS": "1",
    }
    response = client.post(reverse(f"admin:wallets_{model}_change", args=[obj.pk]), forged)
    assert response.status_code == 403
    assert _state() == before


def test_the_delete_selected_action_is_not_offered_and_does_nothing(books, staff):
    _, client = staff
    url = reverse("admin:wallets_transfer_changelist")
    assert 'value="delete_selected"' not in client.get(url).content.decode()
    before = _state()
    ids = list(Transfer.objects.values_list("pk", flat=True))
    client.post(url, {"action": "delete_selected", "_selected_action": ids, "post": "yes"})
    assert _state() == before


def test_entries_have_no_admin_of_their_own_and_show_read_only_in_their_transfer(books, staff):
    _, client = staff
    with pytest.raises(NoReverseMatch):
        reverse("admin:wallets_entry_changelist")
    transfer = Transfer.objects.filter(kind=TransferKind.TRANSFER).get()
    html = client.get(reverse("admin:wallets_transfer_change", args=[transfer.pk])).content.decode()
    for entry in Entry.objects.filter(transfer=transfer):
        assert f"{entry.amount}" in html
    assert 'name="entries-0-amount"' not in html  # shown, not editable
    assert 'name="entries-0-DELETE"' not in html


def test_wallet_page_shows_pocket_balances_read_only(books, staff):
    _, client = staff
    wallet = Wallet.objects.for_org(books)
    html = client.get(reverse("admin:wallets_wallet_change", args=[wallet.pk])).content.decode()
    assert "9750" in html or "9,750" in html  # 10,000 bought, 250 given away
    assert 'name="pockets-0-balance"' not in html
    assert 'name="pockets-0-DELETE"' not in html


# ---------------------------------------------------------------- the Promo grant action


def _grant(client, orgs, amount, *, memo="Launch promo", key=None):
    return client.post(
        reverse("admin:orgs_organization_changelist"),
        {
            "action": "grant_promo_credits",
            "_selected_action": [o.pk for o in orgs],
            "apply": "Grant credits",
            "amount": amount,
            "memo": memo,
            "grant_key": key or uuid.uuid4().hex,
        },
    )


def test_action_asks_for_the_amount_first(org, staff):
    _, client = staff
    before = ledger_snapshot()
    response = client.post(
        reverse("admin:orgs_organization_changelist"), {"action": "grant_promo_credits", "_selected_action": [org.pk]}
    )
    html = response.content.decode()
    assert response.status_code == 200
    assert "Grant Promo credits" in html and 'name="amount"' in html and org.name in html
    assert ledger_snapshot() == before


def test_grant_moves_promo_from_promotions_through_the_primitive(org, other_org, staff):
    user, client = staff
    promotions = Wallet.objects.external("promotions")
    response = _grant(client, [org, other_org], "1,500")
    assert response.status_code == 302
    transfers = list(Transfer.objects.filter(kind=TransferKind.PROMO_GRANT).order_by("org_id"))
    assert [(t.org_id, t.amount, t.actor_id, t.memo) for t in transfers] == [
        (o.pk, 1_500, user.pk, "Launch promo") for o in sorted([org, other_org], key=lambda o: o.pk)
    ]
    for o in (org, other_org):
        legs = sorted(Entry.objects.filter(transfer__org=o).values_list("wallet_id", "credit_type__slug", "amount"))
        assert legs == sorted([(promotions.pk, "promo", -1_500), (Wallet.objects.for_org(o).pk, "promo", 1_500)])
        assert {tb.credit_type.slug: tb.balance for tb in wallet_balance(Wallet.objects.for_org(o)).by_type} == {
            "org-allocated": 0,
            "promo": 1_500,
        }
    assert ledger_problems() == []
    messages = [str(m) for m in client.get(reverse("admin:orgs_organization_changelist")).context["messages"]]
    assert any("Granted 1,500 Promo credits to 2 org(s)" in m for m in messages)


def test_resubmitting_the_same_grant_form_grants_once(org, staff):
    _, client = staff
    key = uuid.uuid4().hex
    _grant(client, [org], "200", key=key)
    before = ledger_snapshot()
    _grant(client, [org], "200", key=key)
    assert ledger_snapshot() == before
    assert Transfer.objects.filter(kind=TransferKind.PROMO_GRANT).count() == 1


@pytest.mark.parametrize(
    "amount",
    ["", "0", "-5", "1.5", "1.0", "abc", "1e3", "+5", "1_000", "١٢٣", "１２３", "5\x00", "1000000000001", "9" * 300],
)
def test_grant_refuses_bad_amounts_with_a_message_and_moves_nothing(org, staff, amount):
    _, client = staff
    before = ledger_snapshot()
    response = _grant(client, [org], amount)
    assert response.status_code == 200  # the form again, with the error next to the field
    form = response.context["form"]
    assert form.errors["amount"], amount
    assert 'class="errorlist' in response.content.decode()
    assert ledger_snapshot() == before


@pytest.mark.parametrize("who", ["anonymous", "member", "staff_without_permissions"])
def test_people_who_are_not_admin_staff_cannot_reach_admin_or_grant(org, member_membership, who):
    client = Client()
    if who == "member":
        client.force_login(member_membership.user)
    elif who == "staff_without_permissions":
        client.force_login(UserFactory(email="plain-staff@example.com", is_staff=True))
    before = ledger_snapshot()
    for model in MONEY_MODELS:
        response = client.get(reverse(f"admin:wallets_{model}_changelist"))
        assert response.status_code in (302, 403), (who, model, response.status_code)
        if response.status_code == 302:
            assert "/admin/login/" in response.url
    response = _grant(client, [org], "1000")
    assert response.status_code in (302, 403)
    if response.status_code == 302:
        assert "/admin/login/" in response.url
    assert ledger_snapshot() == before
