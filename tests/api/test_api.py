"""The JSON API: auth, scopes, balances, transactions, transfers and usage charges, with bad input."""

from datetime import datetime
from unittest import mock

import psycopg
import pytest
from django.core.cache import cache
from django.db import OperationalError, connection
from django.test import Client, override_settings
from django.test.utils import CaptureQueriesContext

import wallets.ledger
from apikeys.models import ApiKey, IdempotencyRecord, UsageCharge
from core.db_unavailable import RETRY_AFTER_SECONDS
from tests.api.helpers import Api, give, issue_key
from tests.core.test_db_unavailable import lock_timeout_error, queries_fail, unreachable_database_error
from tests.expiry.helpers import grant, member_with_promo_of_two_days
from tests.factories import MembershipFactory, fund, ledger_snapshot
from wallets.models import Entry, OutstandingBalance, Pocket, Transfer, TransferKind, Wallet
from wallets.selectors import ledger_problems

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _fresh_rate_limits():
    cache.clear()


@pytest.fixture
def member(funded_org):
    return MembershipFactory(org=funded_org)


@pytest.fixture
def charger(funded_org, owner):
    return Api(issue_key(funded_org, "charge", created_by=owner)[1])


def _problem(response, status, code):
    assert response.status_code == status, response.content
    assert response["Content-Type"].startswith("application/problem+json")
    body = response.json()
    assert body["code"] == code
    assert body["status"] == status
    assert body["message"] and body["detail"] == body["message"]
    assert body["type"] == f"urn:credits:problem:{code}"
    return body


# ---------------------------------------------------------------- keys and auth


def test_api_key_is_stored_hashed_and_authenticates(funded_org):
    key, token = issue_key(funded_org, "read")
    assert token.startswith("crd_") and len(token) > 40
    stored = ApiKey.objects.get(pk=key.pk)
    assert token not in (stored.secret_hash, stored.lookup)
    assert stored.secret_hash != token.split("_", 2)[2]
    assert ApiKey.objects.find_by_token(token) == key
    assert ApiKey.objects.find_by_token(token[:-1] + ("A" if token[-1] != "A" else "B")) is None
    response = Api(token).get("/balance")
    assert response.status_code == 200
    assert response.json()["total"] == 10_000


def test_missing_malformed_and_unknown_keys_get_401(funded_org):
    _problem(Client().get("/api/v1/balance"), 401, "unauthenticated")
    _problem(Client(HTTP_AUTHORIZATION="Token abc").get("/api/v1/balance"), 401, "unauthenticated")
    _problem(Client(HTTP_AUTHORIZATION="Bearer crd_000000000000_nope").get("/api/v1/balance"), 401, "invalid_api_key")
    response = Client(HTTP_AUTHORIZATION="Bearer nonsense").get("/api/v1/balance")
    _problem(response, 401, "invalid_api_key")
    assert response["WWW-Authenticate"].startswith("Bearer")


def test_unknown_api_paths_get_a_problem_document_not_the_html_404_page(funded_org, charger):
    for response in (
        Client().get("/api/v1/no-such-thing"),
        Client().get("/api/v2/balance"),
        Client().get("/api/"),
        charger.get("/balanse"),
        charger.post("/usage-charges/extra/segment", {"amount": 5}, key="typo-1"),
    ):
        body = _problem(response, 404, "not_found")
        assert "No such API endpoint" in body["message"] and body["instance"].startswith("/api/")
    csrf_checked = Client(enforce_csrf_checks=True)  # as a real API client: no CSRF token
    _problem(
        csrf_checked.post("/api/v1/usage-charge", {"amount": 5}, content_type="application/json"), 404, "not_found"
    )
    assert Client().get("/api/v1/balance").status_code == 401  # real endpoints are still matched first


def test_revoked_key_fails_at_once(funded_org, owner, client):
    key, token = issue_key(funded_org, "charge")
    api = Api(token)
    assert api.get("/balance").status_code == 200
    client.force_login(owner)
    client.post(f"/orgs/{funded_org.slug}/settings/api-keys/{key.pk}/revoke/")
    _problem(api.get("/balance"), 401, "api_key_revoked")
    member = MembershipFactory(org=funded_org)
    give(funded_org, member, 10)
    before = ledger_snapshot()
    _problem(api.post("/usage", {"member_id": member.pk, "amount": 1}), 401, "api_key_revoked")
    assert ledger_snapshot() == before


def test_last_used_time_is_recorded(funded_org):
    key, token = issue_key(funded_org, "read")
    assert key.last_used_at is None
    Api(token).get("/balance")
    key.refresh_from_db()
    assert key.last_used_at is not None


def test_wrong_scope_gets_403_and_moves_nothing(funded_org, member):
    give(funded_org, member, 100)
    reader = Api(issue_key(funded_org, "read")[1])
    charger = Api(issue_key(funded_org, "charge")[1])
    before = ledger_snapshot()
    body = _problem(reader.post("/usage", {"member_id": member.pk, "amount": 5}), 403, "insufficient_scope")
    assert body["required_scope"] == "charge"
    _problem(charger.post("/transfers", {"members": [member.pk], "amount": 5}), 403, "insufficient_scope")
    transferer = Api(issue_key(funded_org, "transfer")[1])
    _problem(transferer.post("/usage", {"member_id": member.pk, "amount": 5}), 403, "insufficient_scope")
    assert ledger_snapshot() == before
    assert not IdempotencyRecord.objects.exists()


@override_settings(API_RATE_LIMIT_PER_MINUTE=3)
def test_rate_limit_per_key_answers_429_with_retry_after(funded_org):
    api = Api(issue_key(funded_org, "read")[1])
    other = Api(issue_key(funded_org, "read", name="other")[1])
    assert [api.get("/balance").status_code for _ in range(3)] == [200, 200, 200]
    response = api.get("/balance")
    body = _problem(response, 429, "rate_limited")
    assert 1 <= int(response["Retry-After"]) <= 60
    assert body["retry_after"] == int(response["Retry-After"])
    assert other.get("/balance").status_code == 200  # the limit is per key


# ---------------------------------------------------------------- one org never sees another


def test_keys_of_one_org_never_see_another_orgs_data(funded_org, member, other_org):
    fund(other_org, 777)
    outsider = MembershipFactory(org=other_org)
    give(other_org, outsider, 50)
    other_charge = Api(issue_key(other_org, "charge")[1])
    assert other_charge.post("/usage", {"member_id": outsider.pk, "amount": 5}, key="theirs").status_code == 201

    api = Api(issue_key(funded_org, "transfer")[1])
    assert api.get("/balance").json()["total"] == 10_000
    _problem(api.get(f"/members/{outsider.pk}/balance"), 404, "member_not_found")
    _problem(api.get("/transactions", member_id=outsider.pk), 404, "member_not_found")
    assert outsider.pk not in [m["id"] for m in api.get("/members").json()["items"]]
    assert api.get("/members", email=outsider.user.email).json()["items"] == []
    their_ids = set(Transfer.objects.filter(org=other_org).values_list("pk", flat=True))
    ours = {t["id"] for t in api.get("/transactions", limit=200).json()["items"]}
    assert ours and not ours & their_ids
    before = ledger_snapshot()
    _problem(api.post("/transfers", {"members": [outsider.pk], "amount": 1}), 404, "member_not_found")
    charger = Api(issue_key(funded_org, "charge")[1])
    _problem(charger.post("/usage", {"member_id": outsider.pk, "amount": 1}, key="x2"), 404, "member_not_found")
    assert ledger_snapshot() == before
    # The same Idempotency-Key in two orgs is two different requests.
    assert charger.post("/usage", {"member_id": member.pk, "amount": 1}, key="theirs").status_code == 402


# ---------------------------------------------------------------- the database connection drops


def test_a_dropped_database_connection_is_a_503_problem(funded_org, member):
    api = Api(issue_key(funded_org, "read")[1])
    for error in (OperationalError("server closed the connection unexpectedly"), unreachable_database_error()):
        with queries_fail(error, "wallets_pocket"):  # the view's own query, after auth
            response = api.get(f"/members/{member.pk}/balance")
        body = _problem(response, 503, "database_unavailable")
        assert response["Retry-After"] == str(RETRY_AFTER_SECONDS)
        assert body["instance"] == f"/api/v1/members/{member.pk}/balance"
    assert api.get(f"/members/{member.pk}/balance").status_code == 200


def test_a_connection_dropped_mid_charge_is_a_503_that_stores_nothing(funded_org, member, charger):
    """The ledger's prepared statements raise psycopg's own errors (not Django's wrapped ones)."""
    give(funded_org, member, 10)
    before = ledger_snapshot()
    real = wallets.ledger.execute_prepared

    def execute_prepared(sql, params):
        if "INSERT INTO wallets_transfer" in sql:  # the statement that charges and claims the key: the link is gone
            raise psycopg.OperationalError("consuming input failed: server closed the connection unexpectedly")
        return real(sql, params)

    with mock.patch.object(wallets.ledger, "execute_prepared", execute_prepared):
        response = charger.post("/usage", {"member_id": member.pk, "amount": 3}, key="job-db")
    _problem(response, 503, "database_unavailable")
    assert response["Retry-After"] == str(RETRY_AFTER_SECONDS)
    assert ledger_snapshot() == before and not IdempotencyRecord.objects.exists()
    retried = charger.post("/usage", {"member_id": member.pk, "amount": 3}, key="job-db")
    assert retried.status_code == 201 and "Idempotent-Replayed" not in retried


def test_other_database_errors_are_not_called_unavailable(funded_org, member):
    api = Api(issue_key(funded_org, "read")[1])
    api.client.raise_request_exception = False
    with queries_fail(lock_timeout_error(), "wallets_pocket"):
        response = api.get(f"/members/{member.pk}/balance")
    assert response.status_code == 500 and "Retry-After" not in response


# ---------------------------------------------------------------- balances, members, transactions


def test_member_balance_shows_only_this_orgs_credits(funded_org, member, other_org):
    fund(funded_org, 300, "promo")
    give(funded_org, member, 40)
    give(funded_org, member, 7, "promo")
    fund(other_org, 100)
    elsewhere = MembershipFactory(org=other_org, user=member.user)
    give(other_org, elsewhere, 99)
    body = Api(issue_key(funded_org, "read")[1]).get(f"/members/{member.pk}/balance").json()
    assert body["total"] == 47
    assert {r["credit_type"]: r["balance"] for r in body["by_credit_type"]} == {"org-allocated": 40, "promo": 7}


@pytest.mark.parametrize(
    "raw",
    ["abc", "1.0", "1.5", "+1", "-1", "0", " 1", "1 ", "1_0", "01e0", "１", "١", "1e0", "0x1", str(2**63)],
)
def test_malformed_member_ids_in_the_path_are_refused(funded_org, member, raw):
    """A path id is digits only: `1.0`, `+1` or ` 1` is not member 1 (pydantic alone would coerce them)."""
    from urllib.parse import quote

    api = Api(issue_key(funded_org, "read")[1])
    assert api.get(f"/members/{member.pk}/balance").status_code == 200
    expected = api.get("/members/abc/balance")
    response = api.get(f"/members/{quote(raw.replace('1', str(member.pk)))}/balance")
    _problem(response, expected.status_code, expected.json()["code"])
    assert "member_id" not in response.json()


def test_members_list_finds_by_email_and_pages(funded_org, member):
    api = Api(issue_key(funded_org, "read")[1])
    found = api.get("/members", email=member.user.email.upper()).json()["items"]
    assert [m["id"] for m in found] == [member.pk]
    first = api.get("/members", limit=1).json()
    second = api.get("/members", limit=1, cursor=first["next_cursor"]).json()
    assert first["items"][0]["id"] != second["items"][0]["id"]
    _problem(api.get("/members", cursor="abc"), 422, "validation_error")
    for limit in ("1.0", "+1", " 1", "1_0"):
        _problem(api.get("/members", limit=limit), 422, "validation_error")


def test_transactions_keyset_pages_and_filters(funded_org, member):
    other = MembershipFactory(org=funded_org)
    fund(funded_org, 50, "promo")
    for i in range(5):
        give(funded_org, member, 10 + i)
    give(funded_org, other, 3, "promo")
    api = Api(issue_key(funded_org, "charge")[1])
    api.post("/usage", {"member_id": member.pk, "amount": 4, "description": "job 9", "metadata": {"job": 9}})

    seen, cursor = [], None
    while True:
        params = {"limit": 3} | ({"cursor": cursor} if cursor else {})
        page = api.get("/transactions", **params).json()
        seen += page["items"]
        cursor = page["next_cursor"]
        if not cursor:
            break
    all_ids = list(Transfer.objects.filter(org=funded_org).order_by("-created_at", "-pk").values_list("pk", flat=True))
    assert [t["id"] for t in seen] == all_ids  # every transfer once, newest first

    usage = api.get("/transactions", kind="usage").json()["items"]
    assert len(usage) == 1
    assert usage[0]["usage"] == {"member_id": member.pk, "description": "job 9", "metadata": {"job": 9}}
    mine = api.get("/transactions", member_id=member.pk).json()["items"]
    assert len(mine) == 6 and all(t["kind"] in ("transfer", "usage") for t in mine)
    promo = api.get("/transactions", credit_type="promo").json()["items"]
    assert {t["kind"] for t in promo} == {"promo_grant", "transfer"} and len(promo) == 2
    newest = Transfer.objects.filter(org=funded_org).order_by("-created_at").first()
    window = api.get("/transactions", since=newest.created_at.isoformat()).json()["items"]
    assert [t["id"] for t in window] == [newest.pk]
    assert api.get("/transactions", until=newest.created_at.isoformat(), kind="usage").json()["items"] == []
    _problem(api.get("/transactions", cursor="!!!"), 422, "validation_error")
    _problem(api.get("/transactions", credit_type="gold"), 404, "unknown_credit_type")
    _problem(api.get("/transactions", kind="nope"), 422, "validation_error")
    _problem(api.get("/transactions", since="2026-01-01T00:00:00"), 422, "validation_error")


def test_transactions_page_query_count_is_flat(funded_org, member, django_assert_max_num_queries):
    for _ in range(30):
        give(funded_org, member, 1)
    api = Api(issue_key(funded_org, "read")[1])
    api.get("/transactions")  # warm last_used_at
    # auth key lookup + the page (with actor and usage joined) + member lookups for filters
    with django_assert_max_num_queries(2):
        assert len(api.get("/transactions", limit=25).json()["items"]) == 25


# ---------------------------------------------------------------- transfers


def test_transfer_to_one_and_many_members(funded_org, owner, member):
    others = [MembershipFactory(org=funded_org) for _ in range(3)]
    api = Api(issue_key(funded_org, "transfer", created_by=owner)[1])
    one = api.post("/transfers", {"members": [member.pk], "amount": 25, "memo": "bonus"}, key="t1")
    assert one.status_code == 201, one.content
    assert one.json()["kind"] == TransferKind.TRANSFER and one.json()["total"] == 25
    many = api.post(
        "/transfers", {"members": [o.pk for o in others], "amount": 10, "credit_type": "org-allocated"}, key="t2"
    )
    assert many.status_code == 201
    body = many.json()
    assert body["kind"] == TransferKind.BULK_TRANSFER and body["total"] == 30
    assert Transfer.objects.get(pk=body["transfer_id"]).actor == owner
    assert Api(issue_key(funded_org, "read")[1]).get("/balance").json()["total"] == 10_000 - 55
    assert ledger_problems() == []


def test_transfer_bad_input_changes_nothing(funded_org, member):
    api = Api(issue_key(funded_org, "transfer")[1])
    before = ledger_snapshot()
    _problem(api.post("/transfers", {"members": [member.pk], "amount": 20_000}, key="a"), 402, "insufficient_credits")
    _problem(api.post("/transfers", {"members": [member.pk], "amount": 0}, key="b"), 422, "invalid_amount")
    _problem(api.post("/transfers", {"members": [member.pk], "amount": 1.5}, key="c"), 422, "invalid_amount")
    _problem(api.post("/transfers", {"members": [member.pk, 999_999], "amount": 1}, key="d"), 404, "member_not_found")
    _problem(api.post("/transfers", {"members": [], "amount": 1}, key="e"), 422, "validation_error")
    _problem(
        api.post("/transfers", {"members": [member.pk], "amount": 1, "credit_type": "x"}, key="f"),
        404,
        "unknown_credit_type",
    )
    _problem(api.post("/transfers", "{not json", key="g"), 400, "malformed_request")
    assert ledger_snapshot() == before


# ---------------------------------------------------------------- usage charges


def test_usage_draws_promo_first_then_org_allocated_into_usage(funded_org, member, charger):
    fund(funded_org, 100, "promo")
    give(funded_org, member, 50)
    give(funded_org, member, 20, "promo")
    response = charger.post(
        "/usage", {"member_id": member.pk, "amount": 30, "description": "GPU job 17", "metadata": {"job": "j-17"}}
    )
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["drawn"] == [{"credit_type": "promo", "amount": 20}, {"credit_type": "org-allocated", "amount": 10}]
    assert body["member_balance"] == {"org-allocated": 40, "promo": 0}
    assert body["metadata"] == {"job": "j-17"} and body["description"] == "GPU job 17"
    transfer = Transfer.objects.get(pk=body["transfer_id"])
    assert transfer.kind == TransferKind.USAGE and transfer.amount == 30 and transfer.memo == "GPU job 17"
    usage_wallet = Wallet.objects.external("usage")
    assert sum(Entry.objects.filter(transfer=transfer, wallet=usage_wallet).values_list("amount", flat=True)) == 30
    assert set(Pocket.objects.filter(wallet=usage_wallet).values_list("funding_org_id", flat=True)) == {funded_org.pk}
    assert UsageCharge.objects.get(pk=body["id"]).transfer_id == transfer.pk
    assert ledger_problems() == []


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)  # no test transaction around it: its savepoints would be counted
def test_a_usage_charge_costs_a_fixed_set_of_statements(funded_org, member, charger):
    """The API's hottest path, statement by statement (PostgreSQL; each a prepared statement but the
    transaction's own): a new statement here is a round trip on every charge, so it must be a choice."""
    give(funded_org, member, 10)
    charger.post("/usage", {"member_id": member.pk, "amount": 1}, key="warm")  # last_used_at is written once
    with CaptureQueriesContext(connection) as ctx:
        response = charger.post("/usage", {"member_id": member.pk, "amount": 2, "metadata": {"job": "j-1"}}, key="c-1")
    assert response.status_code == 201, response.content
    sql = [q["sql"] for q in ctx.captured_queries]
    # No transaction of its own (no BEGIN, COMMIT or SAVEPOINT): key+org, then the ledger's drawn statement
    # (membership, pockets, plan and write: post_usage.sql), which also writes the usage charge and the key's record
    # with its answer. That statement is its own transaction.
    assert len(sql) == 2, sql
    assert not any(s in ("BEGIN", "COMMIT") or "SAVEPOINT" in s for s in sql), sql
    assert sql[1].startswith("/* prepared */ WITH m AS MATERIALIZED"), sql
    assert "INSERT INTO billing_usagecharge" in sql[1] and "INSERT INTO billing_idempotencyrecord" in sql[1], sql
    record = IdempotencyRecord.objects.get(key="c-1")
    assert record.status_code == 201 and record.response_body.encode() == response.content
    body = response.json()
    charge = UsageCharge.objects.get(pk=body["id"])
    assert (charge.transfer_id, charge.amount, charge.metadata) == (body["transfer_id"], 2, {"job": "j-1"})
    assert charge.created_at == datetime.fromisoformat(body["created_at"])


def test_usage_never_spends_personal_or_other_orgs_credits(funded_org, member, charger, other_org):
    fund(other_org, 100)
    elsewhere = MembershipFactory(org=other_org, user=member.user)
    give(other_org, elsewhere, 100)
    give(funded_org, member, 10)
    before = ledger_snapshot()
    body = _problem(charger.post("/usage", {"member_id": member.pk, "amount": 11}), 402, "insufficient_credits")
    assert body["shortfall"] == 1 and body["available"] == 10 and body["requested"] == 11
    assert ledger_snapshot() == before


def test_usage_bad_input_changes_nothing(funded_org, member, charger):
    give(funded_org, member, 10)
    before = ledger_snapshot()
    for i, amount in enumerate([0, -5, 1.5, "10", True, 10**16, None, 1e300, "1e3"]):
        body = _problem(
            charger.post("/usage", {"member_id": member.pk, "amount": amount}, key=f"bad-{i}"), 422, "invalid_amount"
        )
        assert body["errors"]
    _problem(charger.post("/usage", {"member_id": 424242, "amount": 1}, key="m1"), 404, "member_not_found")
    _problem(charger.post("/usage", {"member_id": member.pk, "amount": 1}, key=None), 422, "idempotency_key_required")
    _problem(
        charger.post("/usage", {"member_id": member.pk, "amount": 1}, key="x" * 101), 422, "idempotency_key_required"
    )
    _problem(
        charger.post("/usage", {"member_id": member.pk, "amount": 1, "extra": 1}, key="m2"), 422, "validation_error"
    )
    meta = {f"k{i}": i for i in range(51)}
    _problem(
        charger.post("/usage", {"member_id": member.pk, "amount": 1, "metadata": meta}, key="m3"),
        422,
        "validation_error",
    )
    assert ledger_snapshot() == before


def test_usage_on_removed_member_is_404(funded_org, member, charger):
    give(funded_org, member, 10)
    member.status = "removed"
    member.save()
    before = ledger_snapshot()
    _problem(charger.post("/usage", {"member_id": member.pk, "amount": 1}), 404, "member_not_found")
    assert ledger_snapshot() == before


# ---------------------------------------------------------------- idempotency


def test_same_key_same_body_replays_first_response_and_moves_nothing(funded_org, member, charger):
    give(funded_org, member, 100)
    payload = {"member_id": member.pk, "amount": 30, "description": "job", "metadata": {"a": 1, "b": "x"}}
    first = charger.post("/usage", payload, key="job-1")
    snapshot = ledger_snapshot()
    # Same JSON, different key order and spacing: the same request.
    again = charger.post(
        "/usage",
        '{"metadata": {"b": "x", "a": 1},  "amount": 30, "description": "job", "member_id": %d}' % member.pk,
        key="job-1",
    )
    assert again.status_code == first.status_code == 201
    assert again.content == first.content
    assert again["Idempotent-Replayed"] == "true"
    assert ledger_snapshot() == snapshot
    assert UsageCharge.objects.count() == 1


def test_same_key_different_body_is_409_and_moves_nothing(funded_org, member, charger):
    give(funded_org, member, 100)
    assert charger.post("/usage", {"member_id": member.pk, "amount": 30}, key="job-2").status_code == 201
    before = ledger_snapshot()
    _problem(charger.post("/usage", {"member_id": member.pk, "amount": 31}, key="job-2"), 409, "idempotency_key_reused")
    # The same key on another endpoint is another request too.
    transferer = Api(issue_key(funded_org, "transfer")[1])
    _problem(
        transferer.post("/transfers", {"members": [member.pk], "amount": 1}, key="job-2"), 409, "idempotency_key_reused"
    )
    assert ledger_snapshot() == before


def test_a_stored_402_is_replayed_even_after_top_up(funded_org, member, charger):
    """The first response is the answer for that key (as with Stripe): retry a failed charge with a new key."""
    first = charger.post("/usage", {"member_id": member.pk, "amount": 5}, key="job-3")
    assert first.status_code == 402
    give(funded_org, member, 100)
    again = charger.post("/usage", {"member_id": member.pk, "amount": 5}, key="job-3")
    assert again.status_code == 402 and again.content == first.content
    assert charger.post("/usage", {"member_id": member.pk, "amount": 5}, key="job-3b").status_code == 201


def test_a_charge_and_its_answer_are_written_by_one_statement(funded_org, member, charger):
    """POST /usage's statement writes the charge and the key's record with its answer: there is no charge without
    its answer, and the answer stored is the bytes the first caller got."""
    give(funded_org, member, 100)
    payload = {"member_id": member.pk, "amount": 30, "description": "job", "metadata": {"run": 7}}
    first = charger.post("/usage", payload, key="job-one")
    assert first.status_code == 201, first.content
    record = IdempotencyRecord.objects.get(key="job-one")
    assert record.status_code == 201 and record.response_body.encode() == first.content
    charge = UsageCharge.objects.get()
    body = first.json()
    assert (body["id"], body["transfer_id"], body["member_id"], body["amount"]) == (
        charge.pk,
        charge.transfer_id,
        member.pk,
        30,
    )
    assert body["description"] == "job" and body["metadata"] == {"run": 7}
    assert body["drawn"] == [{"credit_type": "org-allocated", "amount": 30}]
    assert body["member_balance"] == {"org-allocated": 70, "promo": 0}
    assert datetime.fromisoformat(body["created_at"]) == charge.transfer.created_at
    again = charger.post("/usage", payload, key="job-one")
    assert again.content == first.content and again["Idempotent-Replayed"] == "true"


def test_a_charge_whose_record_was_purged_is_answered_from_the_ledger_once(funded_org, member, charger):
    """Records are purged after their retention; the ledger keeps the key. A retry after that charges nothing,
    answers from the ledger the same answer the charge's own statement gave (api/routers/usage.py `_body` and
    api/sql/idempotency_answer_row.sql build one answer), stores it, and every later retry replays it byte for byte."""
    give(funded_org, member, 100)
    payload = {"member_id": member.pk, "amount": 30, "description": "job", "metadata": {"run": 7, "gpu": "a100"}}
    first = charger.post("/usage", payload, key="job-purged")
    assert first.status_code == 201, first.content
    IdempotencyRecord.objects.filter(key="job-purged").delete()  # what purge_idempotency_records does, later
    after_charge = ledger_snapshot()

    retried = charger.post("/usage", payload, key="job-purged")
    assert retried.status_code == 201, retried.content
    assert retried.json() == first.json()  # nothing moved since: the same answer, member balance included
    stored = IdempotencyRecord.objects.get(key="job-purged")
    assert stored.status_code == 201 and stored.response_body.encode() == retried.content
    again = charger.post("/usage", payload, key="job-purged")
    assert again.content == retried.content and again["Idempotent-Replayed"] == "true"
    _problem(charger.post("/usage", {**payload, "amount": 31}, key="job-purged"), 409, "idempotency_key_reused")
    assert ledger_snapshot() == after_charge and UsageCharge.objects.count() == 1


def test_the_answer_built_by_the_statement_matches_the_ledger_over_pockets_and_types(funded_org, charger):
    """Over pockets of several expiry days and two credit types, the statement's answer sums what it drew per credit
    type in draw order, and the member's balance per type, as the ledger's read-back does."""
    member = member_with_promo_of_two_days(funded_org)  # promo 50 (5 days) + 200 (10 days), org-allocated 100
    first = charger.post("/usage", {"member_id": member.pk, "amount": 280}, key="mixed")
    body = first.json()
    assert body["drawn"] == [{"credit_type": "promo", "amount": 250}, {"credit_type": "org-allocated", "amount": 30}]
    assert body["member_balance"] == {"promo": 0, "org-allocated": 70}
    IdempotencyRecord.objects.filter(key="mixed").delete()
    assert charger.post("/usage", {"member_id": member.pk, "amount": 280}, key="mixed").json() == body

    # The member's Org-allocated pocket older than their Promo ones: the draw order is still Promo first.
    later = MembershipFactory(org=funded_org)
    give(funded_org, later, 40)
    grant(funded_org, 20, 3)
    give(funded_org, later, 25, "promo")
    body = charger.post("/usage", {"member_id": later.pk, "amount": 30}, key="later").json()
    assert body["drawn"] == [{"credit_type": "promo", "amount": 25}, {"credit_type": "org-allocated", "amount": 5}]
    assert body["member_balance"] == {"promo": 0, "org-allocated": 35}
    IdempotencyRecord.objects.filter(key="later").delete()
    assert charger.post("/usage", {"member_id": later.pk, "amount": 30}, key="later").json() == body


def test_a_key_first_used_for_a_transfer_is_409_on_usage_and_charges_nothing(funded_org, member, charger):
    """The usage charge claims its key inside the ledger's statement: a record of another request under the key
    makes that whole statement write nothing."""
    give(funded_org, member, 100)
    transferer = Api(issue_key(funded_org, "transfer")[1])
    assert transferer.post("/transfers", {"members": [member.pk], "amount": 1}, key="shared").status_code == 201
    before = ledger_snapshot()
    _problem(charger.post("/usage", {"member_id": member.pk, "amount": 5}, key="shared"), 409, "idempotency_key_reused")
    assert ledger_snapshot() == before and not UsageCharge.objects.exists()


def test_validation_failures_do_not_use_up_the_key(funded_org, member, charger):
    give(funded_org, member, 100)
    assert charger.post("/usage", {"member_id": member.pk, "amount": "x"}, key="job-4").status_code == 422
    assert charger.post("/usage", {"member_id": member.pk, "amount": 3}, key="job-4").status_code == 201


def test_a_refusal_the_handler_decides_is_stored_like_a_402(funded_org, owner, member):
    """A 422 that the endpoint itself decided (the org owes credits; a bulk total above 10^15) is that
    key's answer, as a 402 is (Stripe stores what an endpoint that began executing answered); only what
    fails before the endpoint runs (validation, auth, scope) leaves the key unused (docs/api.md)."""
    transferrer = Api(issue_key(funded_org, "transfer", created_by=owner)[1])
    second = MembershipFactory(org=funded_org)
    before = ledger_snapshot()

    owed = OutstandingBalance.objects.create(org=funded_org, credits=30)
    first = transferrer.post("/transfers", {"members": [member.pk], "amount": 5}, key="owes")
    _problem(first, 422, "rejected")
    owed.credits = 0
    owed.save()
    again = transferrer.post("/transfers", {"members": [member.pk], "amount": 5}, key="owes")
    assert again.status_code == 422 and again.content == first.content and again["Idempotent-Replayed"] == "true"

    too_much = {"members": [member.pk, second.pk], "amount": 10**15}
    first = transferrer.post("/transfers", too_much, key="huge")
    _problem(first, 422, "invalid_amount")
    again = transferrer.post("/transfers", too_much, key="huge")
    assert again.status_code == 422 and again.content == first.content and again["Idempotent-Replayed"] == "true"
    assert ledger_snapshot() == before
    assert set(IdempotencyRecord.objects.values_list("key", "status_code")) == {("owes", 422), ("huge", 422)}

    _problem(transferrer.post("/transfers", {"members": [member.pk], "amount": 0}, key="bad"), 422, "invalid_amount")
    assert not IdempotencyRecord.objects.filter(key="bad").exists()
    assert transferrer.post("/transfers", {"members": [member.pk], "amount": 5}, key="bad").status_code == 201


def test_idempotency_records_are_purged_after_retention_only(funded_org, member, charger):
    from datetime import timedelta

    from django.core.management import call_command
    from django.utils import timezone

    give(funded_org, member, 100)
    charger.post("/usage", {"member_id": member.pk, "amount": 3}, key="old")
    charger.post("/usage", {"member_id": member.pk, "amount": 3}, key="new")
    IdempotencyRecord.objects.filter(key="old").update(created_at=timezone.now() - timedelta(hours=49))
    IdempotencyRecord.objects.filter(key="new").update(created_at=timezone.now() - timedelta(hours=23))
    call_command("purge_idempotency_records", stdout=open("/dev/null", "w"))  # noqa: SIM115
    assert list(IdempotencyRecord.objects.values_list("key", flat=True)) == ["new"]
    # Even past retention, the ledger's own key stops a second charge: a replay still moves nothing.
    before = ledger_snapshot()
    again = charger.post("/usage", {"member_id": member.pk, "amount": 3}, key="old")
    assert again.status_code == 201
    assert ledger_snapshot() == before


# ---------------------------------------------------------------- schema and docs


def test_openapi_schema_and_docs_are_served_without_a_cdn(client):
    schema = client.get("/api/v1/openapi.json").json()
    assert schema["openapi"].startswith("3.")
    paths = schema["paths"]
    for path in [
        "/api/v1/balance",
        "/api/v1/members/{member_id}/balance",
        "/api/v1/transactions",
        "/api/v1/transfers",
        "/api/v1/usage",
    ]:
        assert path in paths
    usage = paths["/api/v1/usage"]["post"]
    assert "application/problem+json" in usage["responses"]["402"]["content"]
    assert any(p["name"] == "Idempotency-Key" and p["required"] for p in usage["parameters"])
    html = client.get("/api/v1/docs").content.decode()
    assert "/static/ninja/swagger-ui-bundle.js" in html
    assert "cdn" not in html.lower() and "https://" not in html


# ---------------------------------------------------------------- transactions: the Transactions page's filters


@pytest.fixture
def history(funded_org, owner, member):
    """Transfers over three days, of several kinds, credit types, amounts and members."""
    from datetime import timedelta
    from unittest import mock

    from django.utils import timezone

    from wallets.models import CreditType
    from wallets.services import org_transfer_to_member

    alice = MembershipFactory(org=funded_org)
    now = timezone.now()
    org_allocated, promo = CreditType.objects.get(slug="org-allocated"), CreditType.objects.get(slug="promo")
    for days_ago, fn in [
        (2, lambda: fund(funded_org, 500, "promo")),
        (2, lambda: org_transfer_to_member(org=funded_org, membership_id=member.pk, credit_type=promo, amount=40)),
        (
            1,
            lambda: org_transfer_to_member(org=funded_org, membership_id=alice.pk, credit_type=org_allocated, amount=7),
        ),
        (1, lambda: give(funded_org, member, 300)),
        (0, lambda: fund(funded_org, 2_000)),
        (0, lambda: give(funded_org, alice, 25, "promo")),
    ]:
        with mock.patch("wallets.ledger.timezone.now", return_value=now - timedelta(days=days_ago)):
            fn()
    api = Api(issue_key(funded_org, "charge")[1])
    api.post("/usage", {"member_id": member.pk, "amount": 30, "description": "job"}, key="usage-1")
    return funded_org, alice


def _page_ids(org, **params) -> list[int]:
    """The Transactions page's selector, given the page's own parameters."""
    from django.http import QueryDict

    from reporting.filters import parse_filter
    from reporting.queries import iter_transactions

    query = QueryDict(mutable=True)
    for name, value in params.items():
        query.setlist(name, [str(v) for v in value] if isinstance(value, list) else [str(value)])
    filt, errors = parse_filter(org, query)
    assert errors == []
    return [row.id for row in iter_transactions(org, filt)]


def _api_ids(api, **params) -> list[int]:
    """Every page of the API's list, followed by next_cursor."""
    ids, cursor = [], None
    while True:
        response = api.get("/transactions", **params, limit=2, **({"cursor": cursor} if cursor else {}))
        assert response.status_code == 200, response.content
        page = response.json()
        ids += [t["id"] for t in page["items"]]
        if not (cursor := page["next_cursor"]):
            return ids


def test_transactions_take_the_pages_filters_and_answer_like_the_page(history, member):
    from django.utils import timezone

    org, alice = history
    api = Api(issue_key(org, "read")[1])
    today = timezone.localdate()
    yesterday = today.fromordinal(today.toordinal() - 1).isoformat()
    email = member.user.email
    for params in [
        {},
        {"kind": ["transfer", "usage"]},
        {"kind": ["purchase", "promo_grant"]},
        {"member": email},
        {"member": email.upper(), "kind": "transfer"},
        {"credit_type": "promo"},
        {"credit_type": "promo", "member": alice.user.email},
        {"min": 30},
        {"max": 40},
        {"min": 25, "max": 300},
        {"min": 25, "max": 300, "kind": "transfer", "credit_type": "org-allocated"},
        {"from": yesterday},
        {"to": yesterday},
        {"from": yesterday, "to": yesterday},
        {"from": yesterday, "to": yesterday, "member": email, "min": 41},
        {"to": "9999-12-31"},
        {"from": "0001-01-01", "to": today.isoformat(), "kind": ["refund"]},
    ]:
        expected = _page_ids(org, **params)
        assert _api_ids(api, **params) == expected, params
    everything = _page_ids(org)
    assert len(everything) == Transfer.objects.filter(org=org).count() == 8
    assert _api_ids(api, kind=["transfer", "usage"], member_id=member.pk) == _page_ids(
        org, kind=["transfer", "usage"], member=email
    )
    assert len(_api_ids(api, kind=["transfer", "usage"], member_id=member.pk)) == 3


def test_transactions_filters_combine_with_exact_instants_and_member_id(history, member):
    org, alice = history
    api = Api(issue_key(org, "read")[1])
    transfers = list(Transfer.objects.filter(org=org).order_by("-created_at", "-pk"))
    oldest_today = [t for t in transfers if t.created_at.date() == transfers[0].created_at.date()][-1]
    since_today = _api_ids(api, since=oldest_today.created_at.isoformat())
    assert since_today == [t.pk for t in transfers if t.created_at >= oldest_today.created_at]
    assert _api_ids(api, since=oldest_today.created_at.isoformat(), min=1_000) == [
        t.pk for t in transfers if t.created_at >= oldest_today.created_at and t.amount >= 1_000
    ]
    # member and member_id that name the same person filter once; two different people match nothing
    assert _api_ids(api, member_id=member.pk, member=member.user.email) == _api_ids(api, member_id=member.pk)
    assert _api_ids(api, member_id=member.pk, member=alice.user.email) == []
    # empty ranges match nothing rather than erroring
    assert _api_ids(api, min=500, max=40) == []
    assert _api_ids(api, **{"from": "2026-02-02", "to": "2026-02-01"}) == []


def test_transactions_cursor_pages_are_stable_under_inserts(history, member, owner):
    org, _ = history
    api = Api(issue_key(org, "read")[1])
    first = api.get("/transactions", limit=3).json()
    expected_rest = [t.pk for t in Transfer.objects.filter(org=org).order_by("-created_at", "-pk")[3:]]
    for _ in range(4):  # new movements while a client pages through
        give(org, member, 1)
    rest, cursor = [], first["next_cursor"]
    while cursor:
        page = api.get("/transactions", limit=3, cursor=cursor).json()
        rest += [t["id"] for t in page["items"]]
        cursor = page["next_cursor"]
    assert rest == expected_rest  # nothing shifted, nothing repeated, the new ones are not in older pages
    newest = api.get("/transactions", limit=4).json()["items"]
    assert [t["amount"] for t in newest] == [1, 1, 1, 1]


@pytest.mark.parametrize(
    ("params", "code"),
    [
        ({"kind": "nope"}, "validation_error"),
        ({"kind": ["transfer", "nope"]}, "validation_error"),
        ({"from": "2026-02-30"}, "validation_error"),
        ({"from": "yesterday"}, "validation_error"),
        ({"to": "2026-01-01T00:00:00"}, "validation_error"),
        ({"to": "0"}, "validation_error"),
        ({"from": "２０２６-01-01"}, "validation_error"),
        ({"min": "-1"}, "validation_error"),
        ({"min": "1.5"}, "validation_error"),
        ({"min": "+5"}, "validation_error"),
        ({"min": "1_000"}, "validation_error"),
        ({"max": "١٢٣"}, "validation_error"),
        ({"max": "1e3"}, "validation_error"),
        ({"max": str(10**15 + 1)}, "validation_error"),
        ({"max": "9" * 300}, "validation_error"),
        ({"min": ["1", "2"]}, "repeated_parameter"),
        ({"from": ["2026-01-01", "2026-01-02"]}, "repeated_parameter"),
        ({"amount_min": "5"}, "unknown_parameter"),
        ({"date_from": "2026-01-01"}, "unknown_parameter"),
        ({"since": "2026-01-01T00:00:00Z\n"}, "validation_error"),
        ({"member_id": "1.0"}, "validation_error"),
        ({"member_id": "+1"}, "validation_error"),
        ({"member_id": " 1"}, "validation_error"),
        ({"limit": "5.0"}, "validation_error"),
        ({"limit": "+5"}, "validation_error"),
        ({"limit": "1_0"}, "validation_error"),
    ],
)
def test_bad_transaction_filters_are_problem_422s(funded_org, params, code):
    api = Api(issue_key(funded_org, "read")[1])
    body = _problem(api.get("/transactions", **params), 422, code)
    assert body["message"]


def test_unknown_member_email_is_404(funded_org, other_org):
    api = Api(issue_key(funded_org, "read")[1])
    outsider = MembershipFactory(org=other_org)
    _problem(api.get("/transactions", member="nobody@example.com"), 404, "member_not_found")
    _problem(api.get("/transactions", member=outsider.user.email), 404, "member_not_found")


def test_transaction_filters_do_not_grow_the_query_count(history, member, django_assert_max_num_queries):
    org, _ = history
    for _ in range(30):
        give(org, member, 1)
    api = Api(issue_key(org, "read")[1])
    api.get("/transactions")  # warm last_used_at
    filters = {"kind": ["transfer", "usage"], "min": 1, "max": 1_000, "from": "2000-01-01", "to": "9999-12-31"}
    with django_assert_max_num_queries(2):  # the key, the page: filters are WHERE clauses, not queries
        page = api.get("/transactions", limit=25, **filters).json()
    assert len(page["items"]) == 25 and page["next_cursor"]
    with django_assert_max_num_queries(2):
        assert api.get("/transactions", limit=25, cursor=page["next_cursor"], **filters).json()["items"]
    with django_assert_max_num_queries(3):  # + the credit type
        api.get("/transactions", limit=25, credit_type="promo", **filters)
    with django_assert_max_num_queries(3):  # + the member's wallet
        api.get("/transactions", limit=25, member=member.user.email, **filters)


def test_the_schema_documents_the_page_filters(client):
    params = {
        p["name"]: p
        for p in client.get("/api/v1/openapi.json").json()["paths"]["/api/v1/transactions"]["get"]["parameters"]
    }
    assert set(params) == {
        "from",
        "to",
        "since",
        "until",
        "kind",
        "member",
        "member_id",
        "credit_type",
        "min",
        "max",
        "cursor",
        "limit",
    }
    assert "array" in str(params["kind"]["schema"])
    assert "'format': 'date'" in str(params["from"]["schema"])


@pytest.mark.parametrize(
    ("params", "found"),
    [
        ({"until": "2000-01-01T00:00:00+16:00"}, 0),  # RFC 3339 allows it; PostgreSQL's offsets stop at 15:59
        ({"since": "0789-03-28T13:03:18.47917+21:12"}, 1),
        ({"since": "0001-01-01T00:00:00+05:00"}, 1),  # before year 1 in UTC
        ({"until": "0001-01-01T00:00:00+05:00"}, 0),
        ({"until": "9999-12-31T23:59:59-05:00"}, 1),  # after year 9999 in UTC
        ({"since": "9999-12-31T23:59:59-05:00"}, 0),
        ({"to": "9999-12-31"}, 1),
        ({"from": "0001-01-01"}, 1),
    ],
)
def test_extreme_dates_and_offsets_are_answered_not_500(funded_org, params, found):
    api = Api(issue_key(funded_org, "read")[1])
    response = api.get("/transactions", **params)
    assert response.status_code == 200, response.content
    assert len(response.json()["items"]) == found  # the org's one purchase, or nothing


def test_transactions_page_survives_the_same_extremes(client, funded_org, owner):
    """The page shares the selector: the last day there is, and a NUL in the member email, are not 500s."""
    from django.urls import reverse

    client.force_login(owner)
    page = reverse("billing:transactions", args=[funded_org.slug])
    response = client.get(page, {"to": "9999-12-31"})
    assert response.status_code == 200 and "10,000" in response.content.decode()
    response = client.get(page, {"member": "a\x00@example.com"})
    assert response.status_code == 200 and "No member of" in response.content.decode()


# ---------------------------------------------------------------- text PostgreSQL cannot store: 422, never a 500


@pytest.mark.parametrize(
    ("path", "params"),
    [
        ("/transactions", {"credit_type": "promo\x00"}),
        ("/transactions", {"member": "a\x00@example.com"}),
        ("/members", {"email": "a\x00@example.com"}),
    ],
)
def test_nul_in_a_query_is_a_422(funded_org, path, params):
    api = Api(issue_key(funded_org, "read")[1])
    _problem(api.get(path, **params), 422, "validation_error")


@pytest.mark.parametrize(
    ("path", "raw"),
    [
        ("/transfers", r'{"members": [MEMBER], "amount": 1, "credit_type": "org-allocated\u0000"}'),
        ("/transfers", r'{"members": [MEMBER], "amount": 1, "memo": "lab\u0000time"}'),
        ("/usage", r'{"member_id": MEMBER, "amount": 1, "description": "job\u0000"}'),
        ("/usage", r'{"member_id": MEMBER, "amount": 1, "metadata": {"job": "a\u0000"}}'),
        ("/usage", r'{"member_id": MEMBER, "amount": 1, "metadata": {"jo\u0000b": 1}}'),
        ("/usage", r'{"member_id": MEMBER, "amount": 1, "metadata": {"job": "\udc00"}}'),  # JSON, not Unicode
        ("/usage", r'{"member_id": MEMBER, "amount": 1, "metadata": {"job": NaN}}'),
        ("/usage", r'{"member_id": MEMBER, "amount": 1, "metadata": {"job": Infinity}}'),
    ],
)
def test_text_postgresql_cannot_store_is_a_422_and_moves_nothing(funded_org, owner, member, path, raw):
    give(funded_org, member, 50)
    api = Api(issue_key(funded_org, "charge" if path == "/usage" else "transfer", created_by=owner)[1])
    before = ledger_snapshot()
    _problem(api.post(path, raw.replace("MEMBER", str(member.pk))), 422, "validation_error")
    assert ledger_snapshot() == before
    assert not UsageCharge.objects.exists() and not IdempotencyRecord.objects.exists()


def test_the_schema_says_which_text_is_refused(client):
    schemas = client.get("/api/v1/openapi.json").json()["components"]["schemas"]
    metadata = schemas["UsageIn"]["properties"]["metadata"]
    assert metadata["propertyNames"]["pattern"] == "^[^\\x00]*$"  # keys, not just patternProperties
    # Descriptions and memos refuse every control character, NUL included (core.validators.PLAIN_TEXT_PATTERN).
    plain_text = "^[^\\x00-\\x1f\\x7f-\\x9f\\u2028\\u2029\\u202a-\\u202e\\u2066-\\u2069]*$"
    assert schemas["UsageIn"]["properties"]["description"]["pattern"] == plain_text
    assert schemas["TransferIn"]["properties"]["memo"]["pattern"] == plain_text
    assert schemas["TransferIn"]["properties"]["credit_type"]["pattern"] == "^[-a-zA-Z0-9_]*$"
