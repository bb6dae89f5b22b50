"""Every table of the project's own apps is classified for sharding by org (docs/scaling.md).

A table holding an org's data carries a concrete `org_id` (a foreign key to orgs.Organization) that leads
an index: the key Citus would distribute it by. Every other table is on an explicit list below with its
reason, and docs/scaling.md names it. A new model that is on no list fails here, so whoever adds a table
decides where it lives.
"""

from io import StringIO
from pathlib import Path

import pytest
from django.apps import apps
from django.conf import settings
from django.core.management import call_command
from django.db import connection
from django.db.models import F

from apikeys.models import UsageCharge
from credit_requests.models import CreditRequest
from orgs.models import Membership, Organization
from purchases.models import Purchase
from tests.api.helpers import Api, issue_key
from wallets.models import Entry, Transfer

DOC = Path(settings.BASE_DIR) / "docs" / "scaling.md"

# Org data: distributed by org_id, co-located with the org.
ORG_TABLES = {
    "orgs_membership": "a user's membership of the org",
    "orgs_memberdefaults": "the org's Member defaults (org_id is its primary key)",
    "orgs_invitation": "invitations to the org",
    "wallets_pocket": "a balance: the funding org's, or the org wallet's org",
    "wallets_transfer": "a movement of the org's credits",
    "wallets_entry": "a leg of a movement, with its transfer's org",
    "billing_outstandingbalance": "what the org owes after a refund or dispute",
    "billing_purchase": "the org's purchases",
    "billing_creditrequest": "members' requests to the org",
    "billing_apikey": "the org's API keys",
    "billing_idempotencyrecord": "the API's stored responses, per org",
    "billing_usagecharge": "usage charged to a member's credits from the org",
    "billing_autotopup": "the org's auto top-up rule and saved card (one per org)",
    "billing_topupattempt": "the org's auto top-up attempts",
    "alerts_alertrule": "a low-balance alert on the org wallet, or a member's own on their wallet",
    "holds_hold": "credits held for a member's running job",
    "schedules_schedule": "the org's scheduled allocations",
    "expiry_expirynotice": "an email telling a person that the org's credits expire on a day",
    "reporting_usageday": "the org's usage rollup per member wallet and day",
    "reporting_usageweek": "the org's usage rollup per member wallet and ISO week",
    "reporting_usageorgday": "the org's usage total per day",
}

# The org itself: distributed by its own id, the value every org_id above holds.
ORG_ROOT = {"orgs_organization": "id"}

# org_id may be null only here: a person's own credits and movements (no org).
ORG_ID_NULLABLE = {
    "wallets_pocket": "a person's own credits in their Default wallet",
    "wallets_transfer": "a movement of a person's own credits",
    "wallets_entry": "a leg of a person's own movement",
    "alerts_alertrule": "a member's own alert on their Default wallet, which belongs to no org",
}

# org_id that leads no index, on purpose.
ORG_ID_UNINDEXED = {
    "wallets_entry": "entries are read through their pocket or wallet, whose indexes lead; each index is paid "
    "on every insert of the ledger's hottest table",
}

# Reference tables: small or global, copied to every node; distributed tables may point at them.
REFERENCE_TABLES = {
    "orgs_user": "people, each in any number of orgs; memberships, wallets and actors point at them",
    "orgs_user_groups": "Django admin groups of a user (staff)",
    "orgs_user_user_permissions": "Django admin permissions of a user (staff)",
    "wallets_credittype": "the few credit types every pocket points at",
    "wallets_wallet": "one row per org, per user and per external account, written once; any org's pockets "
    "point at a member's Default wallet and at the external wallets",
}

# Reference tables that have an org_id column all the same.
REFERENCE_WITH_ORG_ID = {"wallets_wallet": "org_id names an org wallet's org (null for the other kinds)"}

# Neither org data nor reference data.
OTHER_TABLES = {
    "billing_stripeevent": "Stripe's webhook receipts, unique by Stripe's event id, recorded before the org is known",
    "stripe_standin_standinobject": "the Stripe stand-in's own objects (devtools, never in production)",
    "reporting_usagerollup": "one row: how far the usage rollup has gone (global, tiny)",
    "schedules_schedulerun": "a run of a schedule, reached through its schedule: gains org_id before the move",
    "schedules_schedule_members": "the members a schedule picked (Django's many-to-many table): gains org_id "
    "before the move",
    "wallets_balancewatch": "a threshold on a wallet (alerts, auto top-up), read by the ledger statement by "
    "wallet: a member's watch is on their personal wallet, so it lives with the wallet rows",
}

# Tables no model describes, made by migrations in SQL (or by Django itself).
SQL_TABLES = {
    "credits_cache": "Django's database cache (core's migration)",
    "core_ratelimit_counter": "rate-limit counters, one row per caller (core's migration, UNLOGGED)",
    "django_migrations": "Django's record of applied migrations",
}


def _project_models():
    """The concrete, managed models of the apps that live in this repository (not Django's, not third parties'),
    with the many-to-many tables Django creates for them."""
    root = Path(settings.BASE_DIR).resolve()
    found = {}
    for config in apps.get_app_configs():
        path = Path(config.path).resolve()
        if not path.is_relative_to(root) or ".venv" in path.relative_to(root).parts:
            continue
        for model in config.get_models(include_auto_created=True):
            opts = model._meta
            if opts.proxy or not opts.managed:
                continue
            found[opts.db_table] = model
    return found


def _org_field(model):
    return next((f for f in model._meta.concrete_fields if f.column == "org_id"), None)


def _classified() -> set[str]:
    return set(ORG_TABLES) | set(ORG_ROOT) | set(REFERENCE_TABLES) | set(OTHER_TABLES)


def test_every_project_table_is_classified():
    tables = set(_project_models())
    assert "orgs_membership" in tables and "wallets_entry" in tables  # the walk found the project's apps
    unclassified = sorted(tables - _classified())
    assert not unclassified, (
        f"tables on no list in {__name__}: {unclassified}; add each to ORG_TABLES (with an org_id) or to an "
        "allowlist with its reason, and describe it in docs/scaling.md"
    )
    gone = sorted(_classified() - tables)
    assert not gone, f"listed tables that no longer exist: {gone}"
    lists = [ORG_TABLES, ORG_ROOT, REFERENCE_TABLES, OTHER_TABLES]
    twice = sorted(t for t in _classified() if sum(t in lst for lst in lists) > 1)
    assert not twice, f"tables on more than one list: {twice}"


@pytest.mark.django_db
def test_every_database_table_has_a_model_or_is_listed():
    """A table made by a migration in SQL is classified too: the walk over models cannot see it."""
    with connection.cursor() as cursor:
        tables = set(connection.introspection.table_names(cursor))
    modelled = {m._meta.db_table for m in apps.get_models(include_auto_created=True)}
    unlisted = sorted(tables - modelled - set(SQL_TABLES))
    assert not unlisted, f"tables without a model on no list: {unlisted}; add each to SQL_TABLES with its reason"
    gone = sorted(set(SQL_TABLES) - tables)
    assert not gone, f"SQL_TABLES lists tables the database does not have: {gone}"


def test_org_tables_carry_the_orgs_id():
    models = _project_models()
    missing, wrong_target, nullable = [], [], []
    for table in ORG_TABLES:
        field = _org_field(models[table])
        if field is None:
            missing.append(table)
            continue
        if not field.is_relation or field.related_model is not Organization:
            wrong_target.append(table)
        if field.null:
            nullable.append(table)
    assert not missing, f"org data without an org_id column: {sorted(missing)}"
    assert not wrong_target, f"org_id that is not a foreign key to orgs.Organization: {sorted(wrong_target)}"
    assert sorted(nullable) == sorted(ORG_ID_NULLABLE), (
        f"org_id nullable in {sorted(nullable)}, allowed in {sorted(ORG_ID_NULLABLE)}: "
        "a null org_id cannot be a Citus distribution key, so each one needs a reason (or NOT NULL)"
    )
    for table, column in ORG_ROOT.items():
        assert models[table]._meta.pk.column == column


@pytest.mark.django_db
def test_org_id_leads_an_index():
    """Read from the migrated database, not the models: what counts is the schema that runs."""
    unindexed = []
    with connection.cursor() as cursor:
        for table in ORG_TABLES:
            constraints = connection.introspection.get_constraints(cursor, table)
            leading = [
                name
                for name, c in constraints.items()
                if (c["index"] or c["unique"] or c["primary_key"]) and c["columns"] and c["columns"][0] == "org_id"
            ]
            if not leading:
                unindexed.append(table)
    assert sorted(unindexed) == sorted(ORG_ID_UNINDEXED), (
        f"no index leads with org_id on {sorted(set(unindexed) - set(ORG_ID_UNINDEXED))}; "
        f"listed as unindexed but indexed: {sorted(set(ORG_ID_UNINDEXED) - set(unindexed))}"
    )


def test_allowlisted_tables_have_no_org_id():
    """A table that gains an org_id holds org data: it moves to ORG_TABLES."""
    models = _project_models()
    with_org = sorted(t for t in [*REFERENCE_TABLES, *OTHER_TABLES] if _org_field(models[t]) is not None)
    assert with_org == sorted(REFERENCE_WITH_ORG_ID), (
        f"allowlisted tables with an org_id: {with_org}; move them to ORG_TABLES, or say why in REFERENCE_WITH_ORG_ID"
    )


def test_scaling_doc_names_every_table():
    """The lists here and the tables in docs/scaling.md cannot drift apart."""
    text = DOC.read_text()
    absent = sorted(t for t in _classified() | set(SQL_TABLES) if f"`{t}`" not in text)
    assert not absent, f"docs/scaling.md does not name {absent}"


@pytest.mark.django_db
def test_scaling_doc_names_unique_constraints_without_org_id():
    """Citus enforces a unique constraint on a distributed table only when it includes the distribution column;
    the doc lists every one that would have to gain org_id (primary keys aside: the doc covers them at once)."""
    text = DOC.read_text()
    lacking = []
    with connection.cursor() as cursor:
        for table in ORG_TABLES:
            for name, c in connection.introspection.get_constraints(cursor, table).items():
                if c["unique"] and not c["primary_key"] and "org_id" not in c["columns"]:
                    lacking.append(name)
    absent = sorted(name for name in lacking if f"`{name}`" not in text)
    assert not absent, f"docs/scaling.md does not name these unique constraints without org_id: {absent}"


@pytest.mark.django_db
def test_a_movement_and_its_rows_share_one_org():
    """The demo org's history has a movement of each kind made through the real services (purchases, a promo
    grant, transfers, bulk, requests, seat and invite credits, usage, a Return); one usage charge through the API
    adds its UsageCharge row. Every row of a movement carries
    the same org: its entries, the pockets they touch (the org wallet's, the member's org-funded ones, the
    external ones), and the purchase, request or usage charge it belongs to; sharded by org, each movement
    runs on one node."""
    call_command("seed_demo", stdout=StringIO())
    carol = Membership.objects.get(user__email="carol@example.com")
    charged = Api(issue_key(carol.org, "charge")[1]).post("/usage", {"member_id": carol.pk, "amount": 10})
    assert charged.status_code == 201, charged.content
    entries = Entry.objects.all()
    assert entries.count() > 20 and Transfer.objects.values("kind").distinct().count() >= 10
    assert not entries.filter(org__isnull=True).exists()
    assert not entries.exclude(org_id=F("transfer__org_id")).exists()
    assert not entries.exclude(org_id=F("pocket__org_id")).exists()
    for model in (Purchase, CreditRequest, UsageCharge):
        linked = model.objects.filter(transfer__isnull=False)
        assert linked.exists(), model
        assert not linked.exclude(org_id=F("transfer__org_id")).exists(), model
