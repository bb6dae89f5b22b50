"""Reports read the database they are given (`using=`, core.replica.read_alias): every query of the Transactions
list, the CSV export and the balance chart goes there and none to the primary; the export leaves no session
setting behind (PgBouncer in transaction mode hands the server connection to the next client).

The "replica" alias of the test settings mirrors the test database on its own connection, so these tests commit.
"""

import csv
import io

import pytest
from django.db import connections
from django.test.utils import CaptureQueriesContext

from reporting.chart import balance_chart
from reporting.export import copy_csv, csv_chunks
from reporting.filters import TransactionFilter
from reporting.queries import iter_transactions, transactions_page
from tests.factories import MembershipFactory, UserFactory, fund
from wallets.models import CreditType, Wallet
from wallets.selectors import wallet_balance
from wallets.services import org_transfer_to_member

pytestmark = pytest.mark.django_db(transaction=True, databases=["default", "replica"])


@pytest.fixture
def org_with_rows(funded_org, owner):
    alice = MembershipFactory(org=funded_org, user=UserFactory(email="alice@example.com", name="Alice"))
    ct = CreditType.objects.get(slug="org-allocated")
    for amount in (100, 200, 300):
        org_transfer_to_member(
            org=funded_org, membership_id=alice.pk, credit_type=ct, amount=amount, actor=owner, memo=f"m{amount}"
        )
    fund(funded_org, 50, "promo")
    return funded_org


@pytest.fixture
def both():
    with (
        CaptureQueriesContext(connections["default"]) as primary,
        CaptureQueriesContext(connections["replica"]) as replica,
    ):
        yield primary, replica
    connections["replica"].close()


def test_transactions_page_reads_only_the_alias_it_is_given(org_with_rows, both):
    primary, replica = both
    page = transactions_page(org_with_rows, TransactionFilter(), limit=2, using="replica")
    older = transactions_page(org_with_rows, TransactionFilter(), cursor=page.older_cursor, limit=2, using="replica")
    assert [r.memo for r in page.rows + older.rows] == ["test funding", "m300", "m200", "m100"]
    assert len(primary) == 0
    # per page: org wallet, credit types, transfers, entry summary, wallet labels, the types' balances after
    assert len(replica) == 12
    assert transactions_page(org_with_rows, TransactionFilter(), limit=2).rows == page.rows  # same rows either way


def test_iter_transactions_reads_only_the_alias_it_is_given(org_with_rows, both):
    primary, replica = both
    rows = list(iter_transactions(org_with_rows, TransactionFilter(), chunk_size=2, using="replica"))
    assert len(rows) == 5 and len(primary) == 0 and len(replica) > 0


def test_balance_chart_is_one_query_on_the_alias_it_is_given(org_with_rows, both):
    wallet = Wallet.objects.for_org(org_with_rows)
    by_type = wallet_balance(wallet).by_type
    primary, replica = both
    before = len(primary)
    chart = balance_chart(wallet, by_type, days=30, using="replica")
    assert chart.totals[-1] == 10_000 - 600 + 50
    assert len(replica) == 1 and len(primary) == before


def _session_settings() -> tuple[str, str]:
    with connections["replica"].cursor() as cursor:
        cursor.execute("SELECT current_setting('jit'), current_setting('max_parallel_workers_per_gather')")
        return cursor.fetchone()


def test_export_reads_the_alias_in_one_transaction_and_leaves_no_setting_behind(org_with_rows, both):
    primary, replica = both
    before = _session_settings()
    assert before != ("off", "0")
    body = b"".join(copy_csv(org_with_rows, TransactionFilter(), using="replica")).decode()
    reference = "".join(csv_chunks(iter_transactions(org_with_rows, TransactionFilter())))
    assert list(csv.reader(io.StringIO(body))) == list(csv.reader(io.StringIO(reference)))
    assert any("SET LOCAL jit = off" in q["sql"] for q in replica.captured_queries)
    assert not any("jit" in q["sql"] for q in primary.captured_queries)
    # The transaction ended with the export, and SET LOCAL with it: the connection is as it was.
    assert not connections["replica"].in_atomic_block
    assert _session_settings() == before
