"""Models behind the JSON API: org API keys, stored idempotent responses, and usage charges.

The tables keep the names they had in the `billing` app (see each Meta.db_table).
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import secrets
from typing import Any

from django.core.exceptions import ImproperlyConfigured
from django.db import connection, models
from django.db.models import F, Q
from django.db.models.signals import post_save
from django.utils import timezone
from psycopg import sql

from core.ratelimit import HIT_CTE, Count
from orgs.models import Membership, MembershipStatus, Organization, User
from wallets.ledger import execute_prepared
from wallets.models import Transfer

TOKEN_PREFIX = "crd_"  # noqa: S105 (a public marker, not a secret)


class ApiKeyScope(models.TextChoices):
    """Every key reads; `charge` also charges usage, `transfer` also transfers org credits to members."""

    READ = "read", "Read"
    CHARGE = "charge", "Charge usage"
    TRANSFER = "transfer", "Transfer"


def _hash_secret(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


class ApiKeyManager(models.Manager["ApiKey"]):
    def issue(
        self, *, org: Organization, name: str, scope: str, created_by: User | None, request_key: str | None = None
    ) -> tuple[ApiKey, str]:
        """Create a key; returns it with the one-time plain token (never stored, only its hash)."""
        lookup = secrets.token_hex(6)
        secret = secrets.token_urlsafe(32)
        key = self.create(
            org=org,
            name=name,
            scope=scope,
            lookup=lookup,
            secret_hash=_hash_secret(secret),
            created_by=created_by,
            request_key=request_key,
        )
        return key, f"{TOKEN_PREFIX}{lookup}_{secret}"

    def find_by_token(self, token: str) -> ApiKey | None:
        """The key whose secret matches the token (revoked or not), or None. Constant-time comparison."""
        parsed = parse_token(token)
        return None if parsed is None else self.authenticate(*parsed)[0]

    def authenticate(self, lookup: str, secret: str, count: Count | None = None) -> tuple[ApiKey | None, int | None]:
        """The key of a parsed token (`parse_token`) whose secret matches, revoked or not, or None; with `count`, the
        same statement counts the request against the key's rate limit when the key is active and its secret
        matches (nothing is counted for a wrong secret or a revoked key), and the count comes second (None when
        nothing was counted). Constant-time comparison of the secret's hash."""
        secret_hash = _hash_secret(secret)
        key, used = _key_with_org(lookup, secret_hash, count)
        if key is None or not hmac.compare_digest(key.secret_hash, secret_hash):
            return None, None
        return key, used


def parse_token(token: str) -> tuple[str, str] | None:
    """A token's public lookup and its secret, or None for a string that cannot be a key's token."""
    if not token.startswith(TOKEN_PREFIX):
        return None
    lookup, sep, secret = token[len(TOKEN_PREFIX) :].partition("_")
    if not sep or len(lookup) != 12 or not secret or len(secret) > 100:
        return None
    return lookup, secret


@functools.cache
def _key_with_org_sql(counting: bool) -> tuple[str, list[str], list[str]]:
    """The statement and the field names its row fills. Rows are used as they come, so no field of
    either model may need one of the ORM's converters: a new field that does fails here, in the tests.
    Counting, the statement also makes a rate-limit count (core/sql/ratelimit_hit.sql) when the key is active
    (`ApiKey.is_active`: not revoked) and the secret's hash is the key's, and reads the count as its last column."""
    fields: list[tuple[type[models.Model], Any]] = [(ApiKey, f) for f in ApiKey._meta.concrete_fields]
    fields += [(Organization, f) for f in Organization._meta.concrete_fields]
    for model, f in fields:
        if connection.ops.get_db_converters(f.get_col(model._meta.db_table)) or f.get_db_converters(connection):
            raise ImproperlyConfigured(f"{model.__name__}.{f.name} needs a converter: read it through the ORM.")
    columns = sql.SQL(", ").join([sql.Identifier("k" if model is ApiKey else "o", f.column) for model, f in fields])
    prefix: sql.Composable = sql.SQL("")
    count_column = sql.SQL("")
    if counting:
        prefix = sql.SQL(
            "WITH counted AS (SELECT 1 FROM {} WHERE lookup = %(lookup)s AND revoked_at IS NULL "
            "AND secret_hash = %(secret_hash)s), "
        ).format(sql.Identifier(ApiKey._meta.db_table)) + sql.SQL(HIT_CTE)
        count_column = sql.SQL(", (SELECT hits FROM hit)")
    statement = (
        sql.SQL("{}SELECT {}{} FROM {} k JOIN {} o ON o.id = k.org_id WHERE k.lookup = %(lookup)s")
        .format(
            prefix,
            columns,
            count_column,
            sql.Identifier(ApiKey._meta.db_table),
            sql.Identifier(Organization._meta.db_table),
        )
        .as_string()
    )
    return (
        statement,
        [f.attname for m, f in fields if m is ApiKey],
        [f.attname for m, f in fields if m is Organization],
    )


def _key_with_org(lookup: str, secret_hash: str, count: Count | None) -> tuple[ApiKey | None, int | None]:
    """The key and its org in one prepared statement (and, with `count`, the request's rate-limit count): every API
    request starts here, and compiling the equivalent `select_related("org")` query cost more than running it."""
    statement, key_fields, org_fields = _key_with_org_sql(count is not None)
    params: dict[str, object] = {"lookup": lookup}
    if count is not None:
        params |= {"secret_hash": secret_hash, **count.params}
    rows = execute_prepared(statement, params)
    if not rows:
        return None, None
    row = rows[0]
    key = ApiKey.from_db(ApiKey.objects.db, key_fields, row[: len(key_fields)])
    org_end = len(key_fields) + len(org_fields)
    key.org = Organization.from_db(Organization.objects.db, org_fields, row[len(key_fields) : org_end])
    return key, (row[org_end] if count is not None else None)


class ApiKey(models.Model):
    """An org's credential for the API. Only a SHA-256 of the high-entropy secret is kept.

    A key acts for its creator (a transfer made with it names them as actor), and its creator saw its secret.
    So it lives as long as its creator's membership: removing the creator from the org revokes their keys in
    the same transaction (`revoke_keys_of_removed_member`, below), and the API keys page says why.
    """

    REVOKED_CREATOR_REMOVED = "creator_removed"
    REVOKED_REASONS = [("", "Revoked by an admin"), (REVOKED_CREATOR_REMOVED, "Its creator was removed from the org")]

    org = models.ForeignKey(Organization, models.CASCADE, related_name="api_keys")
    name = models.CharField(max_length=80)
    scope = models.CharField(max_length=16, choices=ApiKeyScope.choices, default=ApiKeyScope.READ)
    lookup = models.CharField(max_length=12, unique=True, editable=False, help_text="Public part of the token.")
    secret_hash = models.CharField(max_length=64, editable=False)
    created_by = models.ForeignKey(User, models.SET_NULL, null=True, blank=True, related_name="+")
    created_at = models.DateTimeField(default=timezone.now)
    last_used_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)
    revoked_by = models.ForeignKey(User, models.SET_NULL, null=True, blank=True, related_name="+")
    revoked_reason = models.CharField(max_length=32, blank=True, default="", choices=REVOKED_REASONS)
    # The create form's idempotency key: a reload or double-click of "Create key" makes one key, not two.
    request_key = models.CharField(max_length=64, null=True, blank=True, editable=False)

    objects = ApiKeyManager()

    class Meta:
        db_table = "billing_apikey"  # the table keeps the name it had in the billing app
        verbose_name = "API key"
        constraints = [
            models.UniqueConstraint(
                fields=["org", "request_key"],
                condition=Q(request_key__isnull=False),
                name="billing_apikey_one_per_form",
            )
        ]
        indexes = [models.Index(F("org"), F("created_at").desc(), name="billing_apikey_org_recent")]

    def __str__(self) -> str:
        return f"{self.name} ({self.display_prefix}…)"

    @property
    def display_prefix(self) -> str:
        return f"{TOKEN_PREFIX}{self.lookup}"

    @property
    def is_active(self) -> bool:
        return self.revoked_at is None

    def allows(self, scope: str) -> bool:
        return scope == ApiKeyScope.READ or self.scope == scope


def revoke_keys_created_by(*, org_id: int, user_id: int) -> int:
    """Revoke every active key this person created in this org; how many were revoked."""
    return ApiKey.objects.filter(org_id=org_id, created_by_id=user_id, revoked_at__isnull=True).update(
        revoked_at=timezone.now(), revoked_reason=ApiKey.REVOKED_CREATOR_REMOVED
    )


def revoke_keys_of_removed_member(sender, instance: Membership, update_fields=None, **kwargs) -> None:
    """post_save of a Membership: once it is removed, its person's keys in that org stop working.

    A receiver because `apikeys` and `members` are features side by side (neither imports the other): it runs
    inside the save, so inside the removal's transaction (members.services.member_remove, from the Members
    page or Django admin) — a removal that rolls back revokes nothing, and one that commits leaves no key of
    the departed person working, not even for one request.
    """
    if instance.status != MembershipStatus.REMOVED:
        return
    if update_fields is not None and "status" not in update_fields:
        return
    revoke_keys_created_by(org_id=instance.org_id, user_id=instance.user_id)


post_save.connect(revoke_keys_of_removed_member, sender=Membership, dispatch_uid="apikeys.revoke_on_removal")


class IdempotencyRecord(models.Model):
    """The first response to a POST with a given Idempotency-Key, per org. Kept at least 24 hours.

    Claimed in the same database transaction as the movement it describes (POST /usage: by the ledger's statement
    itself, its answer stored by the next statement), so a stored response always matches what happened; a
    concurrent request with the same key waits on the unique index, then replays (docs/api.md, "Idempotency").
    """

    # No database foreign keys on org and api_key: each was checked at COMMIT with a KEY SHARE lock on a row every
    # API charge of the org (of the key) shares, a multixact per request, as on the ledger's tables
    # (docs/ledger.md). The ORM still cascades; the org index is the unique one's leading column.
    org = models.ForeignKey(Organization, models.CASCADE, related_name="+", db_index=False, db_constraint=False)
    api_key = models.ForeignKey(ApiKey, models.CASCADE, related_name="+", db_constraint=False)
    key = models.CharField(max_length=100)
    method = models.CharField(max_length=8)
    path = models.CharField(max_length=200)
    request_hash = models.CharField(max_length=64)
    status_code = models.PositiveSmallIntegerField(null=True)
    response_body = models.TextField(blank=True, help_text="The exact JSON bytes first sent back.")
    created_at = models.DateTimeField(default=timezone.now, db_index=True)

    class Meta:
        db_table = "billing_idempotencyrecord"  # the table keeps the name it had in the billing app
        constraints = [models.UniqueConstraint(fields=["org", "key"], name="billing_idempotency_one_per_org")]

    def __str__(self) -> str:
        return f"{self.method} {self.path} [{self.key}] -> {self.status_code}"


class UsageCharge(models.Model):
    """What a member's usage charge was for (description, metadata); the money is its Usage transfer."""

    # org and api_key: no database foreign key (a KEY SHARE lock at COMMIT on rows every API charge shares; see
    # IdempotencyRecord). membership keeps its own (the charge holds that row locked already); its index is
    # billing_usage_member_recent's leading column.
    org = models.ForeignKey(Organization, models.PROTECT, related_name="+", db_constraint=False)
    membership = models.ForeignKey(Membership, models.PROTECT, related_name="usage_charges", db_index=False)
    transfer = models.OneToOneField(Transfer, models.PROTECT, related_name="usage_charge")
    api_key = models.ForeignKey(ApiKey, models.SET_NULL, null=True, blank=True, related_name="+", db_constraint=False)
    amount = models.BigIntegerField()
    description = models.CharField(max_length=500, blank=True)
    metadata = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        db_table = "billing_usagecharge"  # the table keeps the name it had in the billing app
        constraints = [models.CheckConstraint(condition=Q(amount__gt=0), name="billing_usagecharge_amount_positive")]
        indexes = [models.Index(fields=["membership", "created_at"], name="billing_usage_member_recent")]

    def __str__(self) -> str:
        return f"Usage {self.amount:,} by {self.membership_id}"
