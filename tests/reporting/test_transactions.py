"""Transactions: rows, filters, keyset pagination, CSV export, access, bad input, query counts."""

import csv
import io
from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from orgs.models import MembershipStatus
from reporting.chart import _nice_max, balance_chart
from reporting.export import CSV_COLUMNS, copy_csv, csv_chunks, csv_safe
from reporting.filters import TransactionFilter, parse_filter
from reporting.queries import iter_transactions, transactions_page
from tests.factories import MembershipFactory, UserFactory, bulk_members, fund, ledger_snapshot
from wallets.ledger import leg, post_transfer
from wallets.models import CreditType, ExternalCode, Transfer, TransferKind, Wallet
from wallets.services import org_bulk_transfer, org_grant_promo, org_transfer_to_member

pytestmark = pytest.mark.django_db


@pytest.fixture
def ct():
    return CreditType.objects.get(slug="org-allocated")


@pytest.fixture
def alice(funded_org):
    return MembershipFactory(org=funded_org, user=UserFactory(email="alice@example.com", name="Alice Liddell"))


def url(org, **params):
    from urllib.parse import urlencode

    base = reverse("billing:transactions", args=[org.slug])
    return base + ("?" + urlencode(params, doseq=True) if params else "")


def page_rows(org, **params):
    from django.http import QueryDict

    q = QueryDict(mutable=True)
    for k, v in params.items():
        q.setlist(k, v if isinstance(v, list) else [v])
    filt, errors = parse_filter(org, q)
    assert errors == []
    return transactions_page(org, filt).rows


# --- rows ------------------------------------------------------------------------------------------


def test_rows_newest_first_with_signed_amount_balance_actor_and_parties(funded_org, owner, alice, ct):
    org_transfer_to_member(org=funded_org, membership_id=alice.pk, credit_type=ct, amount=300, actor=owner, memo="Q3")
    rows = page_rows(funded_org)
    assert [r.kind_label for r in rows] == ["Transfer", "Purchase"]
    transfer, purchase = rows
    assert (transfer.from_label, transfer.to_label) == ("Org wallet", "Alice Liddell")
    assert transfer.amount == -300 and transfer.credits == 300
    assert transfer.balances_after == [("Org-allocated", 9_700)]
    assert transfer.actor == "owner@example.com" and transfer.memo == "Q3"
    assert transfer.credit_types == ["Org-allocated"]
    assert (purchase.from_label, purchase.to_label, purchase.amount) == ("Stripe", "Org wallet", 10_000)
    assert purchase.balances_after == [("Org-allocated", 10_000)]


def test_bulk_transfer_is_one_row_with_n_members_and_expandable_list(client, funded_org, owner, ct):
    bulk_members(funded_org, 4)
    transfer = org_bulk_transfer(org=funded_org, credit_type=ct, amount_per_member=10, actor=owner).transfer
    row = page_rows(funded_org)[0]
    assert row.kind_label == "Bulk transfer"
    assert row.to_label == "5 members" and row.to_count == 5  # 4 + the owner
    assert row.amount == -50
    client.force_login(owner)
    html = client.get(url(funded_org)).content.decode()
    rec_url = reverse("billing:transfer_recipients", args=[funded_org.slug, transfer.pk])
    assert f'hx-get="{rec_url}"' in html and ">5 members<" in html
    partial = client.get(rec_url, headers={"HX-Request": "true"}).content.decode()
    assert "<html" not in partial and partial.count("<li>") == 5 and "owner@example.com" in partial
    assert "<html" in client.get(rec_url).content.decode()  # works without JS too


def test_member_usage_row_does_not_touch_org_wallet(funded_org, alice, ct):
    org_transfer_to_member(org=funded_org, membership_id=alice.pk, credit_type=ct, amount=50)
    usage = Wallet.objects.external(ExternalCode.USAGE)
    post_transfer(
        kind=TransferKind.USAGE,
        org=funded_org,
        legs=[
            leg(Wallet.objects.for_user(alice.user), ct, -20, funding_org=funded_org),
            leg(usage, ct, 20, funding_org=funded_org),
        ],
    )
    row = page_rows(funded_org)[0]
    assert (row.kind_label, row.from_label, row.to_label) == ("Usage", "Alice Liddell", "Usage")
    assert row.amount is None and row.credits == 20 and row.balances_after == []


def test_other_orgs_transfers_are_not_listed(funded_org, other_org):
    fund(other_org, 77)
    assert [r.credits for r in page_rows(funded_org)] == [10_000]


# --- filters --------------------------------------------------------------------------------------


@pytest.fixture
def mixed(funded_org, alice, owner, ct):
    bob = MembershipFactory(org=funded_org, user=UserFactory(email="bob@example.com"))
    fund(funded_org, 500, "promo")
    promo = CreditType.objects.get(slug="promo")
    org_transfer_to_member(org=funded_org, membership_id=alice.pk, credit_type=ct, amount=100, actor=owner)
    org_transfer_to_member(org=funded_org, membership_id=bob.pk, credit_type=promo, amount=40, actor=owner)
    org_transfer_to_member(org=funded_org, membership_id=alice.pk, credit_type=promo, amount=5, actor=owner)
    return funded_org


def test_filter_by_kind_member_credit_type_and_amount_combine(mixed):
    assert [r.credits for r in page_rows(mixed, kind="transfer")] == [5, 40, 100]
    assert [r.credits for r in page_rows(mixed, kind=["purchase", "promo_grant"])] == [500, 10_000]
    assert [r.credits for r in page_rows(mixed, member="ALICE@example.com")] == [5, 100]
    assert [r.credits for r in page_rows(mixed, credit_type="promo")] == [5, 40, 500]
    assert [r.credits for r in page_rows(mixed, credit_type="promo", member="alice@example.com")] == [5]
    assert [r.credits for r in page_rows(mixed, min="40", max="500")] == [40, 100, 500]
    assert [r.credits for r in page_rows(mixed, kind="transfer", min="6")] == [40, 100]


def test_filter_by_date_range_is_inclusive(mixed):
    today = timezone.localdate()
    assert len(page_rows(mixed, **{"from": today.isoformat(), "to": today.isoformat()})) == 5
    assert page_rows(mixed, **{"from": (today + timedelta(days=1)).isoformat()}) == []
    assert page_rows(mixed, to=(today - timedelta(days=1)).isoformat()) == []


def test_removed_members_history_is_still_searchable(mixed, alice):
    alice.status = MembershipStatus.REMOVED
    alice.save()
    assert len(page_rows(mixed, member="alice@example.com")) == 2


@pytest.mark.parametrize(
    "params, message",
    [
        ({"from": "yesterday"}, "is not a date"),
        ({"to": "2026-02-30"}, "is not a date"),
        ({"from": "2026-05-02", "to": "2026-05-01"}, "start date is after the end date"),
        ({"kind": "robbery"}, "is not a kind of transaction"),
        ({"min": "-5"}, "is not an amount"),
        ({"max": "1e9"}, "is not an amount"),
        ({"min": "1" * 20}, "at most"),
        ({"min": "9", "max": "3"}, "minimum amount is larger"),
        ({"credit_type": "gold"}, "is not a credit type"),
        ({"member": "nobody@example.com"}, "No member of Acme Quantum"),
        ({"cursor": "not-a-cursor"}, "page link is not valid"),
        ({"cursor": "bzx8MjAyNnwx"}, "page link is not valid"),
    ],
)
def test_malformed_filters_give_a_message_and_an_unfiltered_page(client, mixed, owner, params, message):
    client.force_login(owner)
    response = client.get(url(mixed, **params))
    assert response.status_code == 200
    html = response.content.decode()
    assert message in html
    assert 'role="alert"' in html
    assert html.count('<tr data-kind="') == 5  # everything, unfiltered


def test_other_orgs_member_is_not_a_member_here(mixed, other_org):
    outsider = MembershipFactory(org=other_org, user=UserFactory(email="outsider@example.com"))
    filt, errors = parse_filter(mixed, {"member": outsider.user.email} and _qd(member=outsider.user.email))
    assert filt.is_empty and errors


def _qd(**params):
    from django.http import QueryDict

    q = QueryDict(mutable=True)
    q.update(params)
    return q


def test_filter_round_trips_through_url_params(mixed):
    filt, errors = parse_filter(mixed, _qd(kind="transfer", member="alice@example.com", min="1", to="2030-01-01"))
    assert not errors
    again, _ = parse_filter(mixed, _qd(**{k: v if isinstance(v, str) else v[0] for k, v in filt.as_params().items()}))
    assert again == filt


# --- keyset pagination ------------------------------------------------------------------------------


def test_keyset_pages_cover_everything_once_and_are_stable_under_inserts(funded_org, alice, ct):
    for i in range(11):
        org_transfer_to_member(org=funded_org, membership_id=alice.pk, credit_type=ct, amount=i + 1)
    filt = TransactionFilter()
    first = transactions_page(funded_org, filt, limit=5)
    assert first.newer_cursor is None and first.older_cursor
    # New movements arrive while the user reads page 1: page 2 is unchanged by them.
    org_transfer_to_member(org=funded_org, membership_id=alice.pk, credit_type=ct, amount=999)
    second = transactions_page(funded_org, filt, cursor=first.older_cursor, limit=5)
    third = transactions_page(funded_org, filt, cursor=second.older_cursor, limit=5)
    assert third.older_cursor is None
    seen = [r.id for r in first.rows + second.rows + third.rows]
    assert len(seen) == len(set(seen)) == 12  # 11 transfers + the purchase, none twice, none missing
    assert [r.credits for r in second.rows] == [6, 5, 4, 3, 2]
    # Going back to newer rows from page 2 gives page 1 as it was (the new row is before it).
    back = transactions_page(funded_org, filt, cursor=second.newer_cursor, limit=5)
    assert [r.id for r in back.rows] == [r.id for r in first.rows]
    assert back.newer_cursor  # the new 999 row is newer still


def test_same_timestamp_rows_are_ordered_by_id_without_gaps(funded_org, alice, ct):
    # Transfers written in the same microsecond (a clock that does not move) still page correctly.
    stamp = timezone.now()
    from unittest import mock

    with mock.patch("wallets.ledger.timezone.now", return_value=stamp):
        for i in range(7):
            org_transfer_to_member(org=funded_org, membership_id=alice.pk, credit_type=ct, amount=i + 1)
    filt = TransactionFilter(kinds=("transfer",))
    ids, cursor = [], None
    while True:
        page = transactions_page(funded_org, filt, cursor=cursor, limit=3)
        ids += [r.id for r in page.rows]
        if not page.older_cursor:
            break
        cursor = page.older_cursor
    assert ids == sorted(Transfer.objects.filter(kind="transfer").values_list("pk", flat=True), reverse=True)


def test_pager_links_keep_the_filter(client, funded_org, owner, alice, ct):
    for i in range(55):
        org_transfer_to_member(org=funded_org, membership_id=alice.pk, credit_type=ct, amount=i + 1)
    client.force_login(owner)
    html = client.get(url(funded_org, kind="transfer")).content.decode()
    assert html.count('<tr data-kind="transfer"') == 50
    assert 'rel="next" href="?kind=transfer&amp;cursor=' in html
    start = html.index('rel="next" href="?') + len('rel="next" href="?')
    query = html[start : html.index('"', start)].replace("&amp;", "&")
    html2 = client.get(url(funded_org) + "?" + query).content.decode()
    assert html2.count('<tr data-kind="transfer"') == 5 and 'rel="next"' not in html2 and 'rel="prev"' in html2


# --- htmx, access, query counts ------------------------------------------------------------------


def test_htmx_request_gets_only_the_list(client, mixed, owner):
    client.force_login(owner)
    html = client.get(
        url(mixed, kind="transfer"), headers={"HX-Request": "true", "HX-Target": "transactions-list"}
    ).content.decode()
    assert "<html" not in html and html.strip().startswith('<section id="transactions-list"')
    assert html.count('<tr data-kind="transfer"') == 3
    assert "export.csv?kind=transfer" in html  # the export follows the filter
    restore = client.get(
        url(mixed, kind="transfer"), headers={"HX-Request": "true", "HX-History-Restore-Request": "true"}
    )
    assert "<html" in restore.content.decode()


def test_owner_admin_manager_see_it_members_403_other_org_404(client, funded_org, owner, other_org):
    for role in ("admin", "manager"):
        m = MembershipFactory(org=funded_org, role=role)
        client.force_login(m.user)
        assert client.get(url(funded_org)).status_code == 200
        assert client.get(reverse("billing:transactions_export", args=[funded_org.slug])).status_code == 200
    member = MembershipFactory(org=funded_org, role="member")
    client.force_login(member.user)
    assert client.get(url(funded_org)).status_code == 403
    assert client.get(reverse("billing:transactions_export", args=[funded_org.slug])).status_code == 403
    outsider = MembershipFactory(org=other_org, role="admin")
    client.force_login(outsider.user)
    assert client.get(url(funded_org)).status_code == 404
    assert client.get(reverse("billing:transactions_export", args=[funded_org.slug])).status_code == 404
    transfer = Transfer.objects.filter(org=funded_org).first()
    assert client.get(reverse("billing:transfer_recipients", args=[funded_org.slug, transfer.pk])).status_code == 404
    # An org's own admin cannot read another org's transfer through their own org's URL.
    client.force_login(owner)
    foreign = fund(other_org, 5)
    assert client.get(reverse("billing:transfer_recipients", args=[funded_org.slug, foreign.pk])).status_code == 404


def test_sidebar_and_billing_page_link_to_transactions(client, funded_org, owner, member_membership):
    client.force_login(owner)
    client.post(reverse("workspace_switch"), {"workspace": funded_org.slug})
    html = client.get(reverse("billing:page", args=[funded_org.slug])).content.decode()
    assert html.count(f'href="{url(funded_org)}"') == 2  # sidebar + Credits tab
    client.force_login(member_membership.user)
    client.post(reverse("workspace_switch"), {"workspace": funded_org.slug})
    # No link to the org's Transactions page (the wallet's own card is titled "Transactions" too: one word).
    assert f'href="{url(funded_org)}"' not in client.get(reverse("wallet")).content.decode()


def test_page_query_count_is_constant_for_small_and_large_data(client, funded_org, owner, ct):
    client.force_login(owner)
    members = bulk_members(funded_org, 3)
    for m in members:
        org_transfer_to_member(org=funded_org, membership_id=m.pk, credit_type=ct, amount=1)
    with CaptureQueriesContext(connection) as small:
        assert client.get(url(funded_org, kind="transfer", member=members[0].user.email)).status_code == 200
    more = bulk_members(funded_org, 300)
    org_bulk_transfer(org=funded_org, credit_type=ct, amount_per_member=1)
    for m in more[:60]:
        org_transfer_to_member(org=funded_org, membership_id=m.pk, credit_type=ct, amount=1)
    with CaptureQueriesContext(connection) as large:
        response = client.get(url(funded_org, kind="transfer", member=members[0].user.email))
        assert response.status_code == 200
    assert len(small) == len(large) <= 12, [q["sql"][:90] for q in large]
    # Unfiltered, deep page with a 304-leg bulk transfer on it: the same count as the first page.
    with CaptureQueriesContext(connection) as first:
        html = client.get(url(funded_org)).content.decode()
    start = html.index('rel="next" href="?') + len('rel="next" href="?')
    with CaptureQueriesContext(connection) as second:
        client.get(url(funded_org) + "?" + html[start : html.index('"', start)].replace("&amp;", "&"))
    assert len(first) == len(second) <= 12


# --- CSV ---------------------------------------------------------------------------------------------


def _csv(response) -> list[list[str]]:
    assert response.streaming
    body = b"".join(response.streaming_content).decode()
    return list(csv.reader(io.StringIO(body)))


def test_csv_export_of_the_current_filter(client, mixed, owner):
    client.force_login(owner)
    response = client.get(reverse("billing:transactions_export", args=[mixed.slug]) + "?kind=transfer")
    assert response.status_code == 200
    assert response["Content-Type"] == "text/csv"
    assert "attachment;" in response["Content-Disposition"]
    rows = _csv(response)
    assert rows[0] == CSV_COLUMNS
    assert [r[2] for r in rows[1:]] == ["Transfer"] * 3
    assert [r[6] for r in rows[1:]] == ["-5", "-40", "-100"]  # numbers stay numbers, negatives not escaped
    assert rows[1][3:6] == ["Org wallet", "Alice Liddell", "Promo"]
    everything = _csv(client.get(reverse("billing:transactions_export", args=[mixed.slug])))
    assert len(everything) == 1 + 5


def test_csv_escapes_formula_injection(client, funded_org, owner, ct):
    evil = MembershipFactory(org=funded_org, user=UserFactory(email="evil@example.com", name="=cmd|' /C calc'!A0"))
    for memo in ('=HYPERLINK("http://x")', "+1+1", "-2+3", "@SUM(A1)", "plain - text"):
        org_transfer_to_member(org=funded_org, membership_id=evil.pk, credit_type=ct, amount=1, memo=memo)
    client.force_login(owner)
    rows = _csv(client.get(reverse("billing:transactions_export", args=[funded_org.slug]) + "?kind=transfer"))
    memos = [r[10] for r in rows[1:]]
    assert memos == ["plain - text", "'@SUM(A1)", "'-2+3", "'+1+1", '\'=HYPERLINK("http://x")']
    assert {r[4] for r in rows[1:]} == {"'=cmd|' /C calc'!A0"}
    assert csv_safe("\tx") == "'\tx" and csv_safe("\rx") == "'\rx" and csv_safe("a=b") == "a=b"


def test_csv_streams_in_keyset_chunks(funded_org, alice, ct):
    for i in range(7):
        org_transfer_to_member(org=funded_org, membership_id=alice.pk, credit_type=ct, amount=i + 1)
    rows = list(iter_transactions(funded_org, TransactionFilter(), chunk_size=3))
    assert [r.credits for r in rows] == [7, 6, 5, 4, 3, 2, 1, 10_000]
    chunks = list(csv_chunks(iter(rows), rows_per_chunk=3))
    assert len(chunks) == 3 and chunks[0].startswith("id,date,kind")
    with CaptureQueriesContext(connection) as queries:
        list(iter_transactions(funded_org, TransactionFilter(), chunk_size=3))
    # org wallet + credit types + per chunk (transfers + entry summary + the types' balances after) + wallet labels
    assert len(queries) <= 2 + 3 * 3 + 3


def test_csv_with_malformed_filter_redirects_to_the_explained_page(client, funded_org, owner):
    client.force_login(owner)
    response = client.get(reverse("billing:transactions_export", args=[funded_org.slug]) + "?from=nope")
    assert response.status_code == 302 and response.url == url(funded_org) + "?from=nope"


def test_reading_changes_nothing(client, mixed, owner):
    before = ledger_snapshot()
    client.force_login(owner)
    client.get(url(mixed, kind="bogus"))
    b"".join(client.get(reverse("billing:transactions_export", args=[mixed.slug])).streaming_content)
    assert ledger_snapshot() == before


@pytest.mark.postgres
def test_postgres_copy_export_writes_the_same_cells_as_the_python_rows(funded_org, owner, alice, ct):
    """The COPY export (PostgreSQL) and the keyset/Python export must agree cell for cell."""
    fund(funded_org, 300, "promo")
    promo = CreditType.objects.get(slug="promo")
    bulk_members(funded_org, 3)
    org_bulk_transfer(org=funded_org, credit_type=ct, amount_per_member=2, actor=owner, memo="=1+2")
    org_transfer_to_member(org=funded_org, membership_id=alice.pk, credit_type=promo, amount=9, memo="@x")
    org_transfer_to_member(org=funded_org, membership_id=alice.pk, credit_type=ct, amount=11, memo="-3")
    usage = Wallet.objects.external(ExternalCode.USAGE)
    alice_wallet = Wallet.objects.for_user(alice.user)
    post_transfer(  # two credit types in one transfer, not touching the org wallet
        kind=TransferKind.USAGE,
        org=funded_org,
        legs=[
            leg(alice_wallet, promo, -4, funding_org=funded_org),
            leg(usage, promo, 4, funding_org=funded_org),
            leg(alice_wallet, ct, -6, funding_org=funded_org),
            leg(usage, ct, 6, funding_org=funded_org),
        ],
    )
    post_transfer(  # the org wallet on both credit types at once
        kind=TransferKind.RETURN,
        org=funded_org,
        legs=[
            leg(Wallet.objects.for_org(funded_org), promo, 1),
            leg(alice_wallet, promo, -1, funding_org=funded_org),
            leg(Wallet.objects.for_org(funded_org), ct, 2),
            leg(alice_wallet, ct, -2, funding_org=funded_org),
        ],
    )
    for filt in (TransactionFilter(), TransactionFilter(kinds=("transfer",), amount_min=10)):
        python = list(csv.reader(io.StringIO("".join(csv_chunks(iter_transactions(funded_org, filt))))))
        copied = list(csv.reader(io.StringIO(b"".join(copy_csv(funded_org, filt)).decode())))
        assert copied == python
    assert len(python) == 2 and python[1][10] == "'-3"
    rows = list(csv.reader(io.StringIO(b"".join(copy_csv(funded_org, TransactionFilter())).decode())))
    by_kind = {r[2]: r for r in rows[1:]}
    assert by_kind["Bulk transfer"][4] == "5 members" and by_kind["Bulk transfer"][10] == "'=1+2"
    assert by_kind["Usage"][5] == "Org-allocated + Promo" and by_kind["Usage"][6] == ""
    assert by_kind["Return"][6] == "3" and by_kind["Return"][8] == "Org-allocated 9981; Promo 292"


# --- balance over time ----------------------------------------------------------------------------


def test_balance_chart_end_of_day_balances_stacked_by_credit_type(org, owner, ct):
    from unittest import mock

    from wallets.selectors import wallet_balance

    now = timezone.now()
    alice = MembershipFactory(org=org)
    with mock.patch("wallets.ledger.timezone.now", return_value=now - timedelta(days=2)):
        fund(org, 1_000)
    with mock.patch("wallets.ledger.timezone.now", return_value=now - timedelta(days=1)):
        org_transfer_to_member(org=org, membership_id=alice.pk, credit_type=ct, amount=300)
    fund(org, 50, "promo")
    balance = wallet_balance(Wallet.objects.for_org(org))
    with CaptureQueriesContext(connection) as queries:
        chart = balance_chart(balance.wallet, balance.by_type, days=30)
    assert len(queries) == 1
    by_slug = {s.credit_type.slug: s.values for s in chart.series}
    assert len(chart.days) == 30 and chart.days[-1] == timezone.localdate()
    assert by_slug["org-allocated"][-4:] == [0, 1_000, 700, 700]
    assert by_slug["promo"][-3:] == [0, 0, 50]
    assert chart.totals[-1] == 750 and chart.max_total >= 1_000
    assert all(s.path.count(",") == 60 for s in chart.series)  # 30 upper + 30 lower points


def test_billing_page_shows_chart_and_switches_range(client, funded_org, owner):
    client.force_login(owner)
    html = client.get(reverse("billing:page", args=[funded_org.slug])).content.decode()
    assert 'data-testid="balance-chart"' in html and "last 30 days" in html and "<polygon" in html
    assert "cdn" not in html.lower()
    partial = client.get(
        reverse("billing:balance_chart", args=[funded_org.slug]) + "?chart=90", headers={"HX-Request": "true"}
    ).content.decode()
    assert partial.strip().startswith('<section id="balance-chart"') and "last 90 days" in partial
    assert "last 30 days" in client.get(reverse("billing:page", args=[funded_org.slug]) + "?chart=7").content.decode()


def test_chart_axis_has_four_equal_whole_number_steps():
    for value, top in [(0, 4), (7, 8), (10, 20), (99, 100), (750, 800), (1_000, 1_000), (54_700, 80_000)]:
        assert _nice_max(value) == top
    for value in range(0, 5_000, 7):
        top = _nice_max(value)
        assert top >= value and top % 4 == 0  # four equal, whole-number steps


def test_an_org_wallet_that_never_held_credits_shows_a_sentence_not_an_empty_chart(client, org, owner):
    client.force_login(owner)
    html = client.get(reverse("billing:page", args=[org.slug])).content.decode()
    assert 'data-testid="chart-empty"' in html and 'data-testid="balance-chart"' not in html


def test_balance_after_is_the_credit_types_balance_over_every_pocket_of_it(client, funded_org, owner, alice, ct):
    """Promo granted in two batches that expire on different days sits in two org wallet pockets; "Balance after"
    is the org wallet's Promo balance (both pockets), on the page, in the CSV export (COPY and Python alike), on
    the Billing tab and, for a member given Promo from both, on their wallet: not the one pocket's balance."""
    today = timezone.localdate()
    org_grant_promo(org=funded_org, amount=1_500, expires_on=today + timedelta(days=20))
    org_grant_promo(org=funded_org, amount=3_500, expires_on=today + timedelta(days=40))
    promo = CreditType.objects.get(slug="promo")
    org_transfer_to_member(org=funded_org, membership_id=alice.pk, credit_type=promo, amount=2_000)  # both pockets
    rows = page_rows(funded_org)
    assert [(r.kind, r.balances_after) for r in rows[:3]] == [
        ("transfer", [("Promo", 3_000)]),
        ("promo_grant", [("Promo", 5_000)]),
        ("promo_grant", [("Promo", 1_500)]),
    ]
    python = list(csv.reader(io.StringIO("".join(csv_chunks(iter_transactions(funded_org, TransactionFilter()))))))
    copied = list(csv.reader(io.StringIO(b"".join(copy_csv(funded_org, TransactionFilter())).decode())))
    assert copied == python and [r[8] for r in copied[1:4]] == ["3000", "5000", "1500"]
    client.force_login(owner)
    billing = client.get(reverse("billing:page", args=[funded_org.slug])).content.decode()
    # The transfer took 1,500 and 500 from the two pockets: both of its rows say what was left after it
    assert billing.count('3,000 <span class="muted">($30.00)</span>') == 2 and "5,000 <span" in billing
    client.force_login(alice.user)
    wallet = client.get(reverse("wallet")).content.decode()
    assert wallet.count('2,000 <span class="muted">($20.00)</span>') == 2  # her two Promo pockets, both rows
