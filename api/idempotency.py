"""Idempotent POSTs: the first response per (org, Idempotency-Key) is stored and replayed.

A POST endpoint hands its work to `idempotent(request, idempotency_key, run)`. The request is hashed, the
IdempotencyRecord (apikeys.models) is claimed and locked in one statement (sql/claim_idempotency_record.sql),
`run()` moves the credits in the same transaction, and its response is stored beside the record, so either
both commit or neither does. An endpoint that writes a row of its own beside the response (POST /usage: the
usage charge) can have its id reserved by the claim and hand the row back as a `Write`, stored in the same
statement as the response: one round trip fewer per request. Records are purged by
`manage.py purge_idempotency_records`.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from django.core.serializers.json import DjangoJSONEncoder
from django.db import transaction
from django.http import HttpRequest, HttpResponse
from django.utils import timezone

from api.errors import PROBLEM_CONTENT_TYPE, ApiProblem, problem_from_domain_error, problem_instance
from apikeys.models import ApiKey, IdempotencyRecord
from core.errors import DomainError
from core.sql import load_sql
from wallets.errors import IdempotencyConflict, LedgerBusy
from wallets.ledger import fetch_hot

_CLAIM_SQL = load_sql(__file__, "claim_idempotency_record.sql")
_STORE_RESPONSE_SQL = (
    "UPDATE billing_idempotencyrecord SET status_code = %s, response_body = %s WHERE id = %s RETURNING id"
)


@dataclass(frozen=True, slots=True)
class Write:
    """A row an endpoint writes beside its stored response, in the same statement: `sql` is one INSERT (a
    data-modifying CTE of the store's UPDATE), `params` its positional parameters."""

    sql: str
    params: list


def _claim_sql(reserve: str | None) -> str:
    """The claim, returning also a fresh id of table `reserve` (its identity sequence) when given."""
    if reserve is None:
        return _CLAIM_SQL
    return f"{_CLAIM_SQL.rstrip()}, nextval(pg_get_serial_sequence('{reserve}', 'id'))"


def _request_hash(request: HttpRequest) -> str:
    """Method, path and the JSON body in canonical form (key order and spacing do not matter)."""
    try:
        body: Any = json.loads(request.body or b"null")
        canonical = json.dumps(body, sort_keys=True, separators=(",", ":")).encode()
    except ValueError:
        canonical = request.body
    return hashlib.sha256(request.method.encode() + b" " + request.path.encode() + b"\n" + canonical).hexdigest()


def _json(status: int, content: str, replayed: bool = False) -> HttpResponse:
    content_type = PROBLEM_CONTENT_TYPE if status >= 400 else "application/json"
    response = HttpResponse(content, status=status, content_type=content_type)
    if replayed:
        response["Idempotent-Replayed"] = "true"
    return response


def _claim_idempotency_record(
    key: ApiKey, idempotency_key: str, request, request_hash: str, reserve: str | None = None
) -> tuple[IdempotencyRecord, int | None]:
    """Insert the record, or lock the one that exists, in one statement (one round trip); with `reserve` (a
    table), also a fresh id for the row the endpoint will write (unused on a replay: ids may have gaps).

    ON CONFLICT DO UPDATE waits for a racer that holds the same key to commit, then locks and returns
    its row, so the caller sees either its own fresh row or the racer's finished response."""
    params = [key.org_id, key.pk, idempotency_key, request.method, request.path[:200], request_hash, timezone.now()]
    ((pk, stored_hash, status_code, body, *reserved),) = fetch_hot(_claim_sql(reserve), params)
    record = IdempotencyRecord(
        pk=pk,
        org_id=key.org_id,
        key=idempotency_key,
        request_hash=stored_hash,
        status_code=status_code,
        response_body=body,
    )
    return record, (reserved[0] if reserved else None)


def idempotent(
    request: HttpRequest, idempotency_key: str, run: Callable[..., tuple], *, reserve: str | None = None
) -> HttpResponse:
    """Run `run() -> (status, body)` once per (org, Idempotency-Key).

    With `reserve` (a table name), `run(reserved_id)` gets a fresh id of that table from the claim and may answer
    `(status, body, Write | None)`: the row is inserted in the statement that stores the response.

    The record is inserted (or, if a racer holds it, waited for on the unique index) and locked in the
    same transaction as the movement, so either both commit or neither does. As with Stripe, what `run`
    answers is stored and replayed: the success and the refusals it decides (402, 404, and 422 such as a
    bulk total above 10^15 or `rejected` for an org that owes credits). Transient outcomes (409, 503,
    a lost database connection) are not; neither is anything refused before `run` (auth, scope, request
    validation). docs/api.md, "Idempotency", says why.
    """
    key: ApiKey = request.auth
    request_hash = _request_hash(request)
    instance = problem_instance(request)
    with transaction.atomic():
        record, reserved = _claim_idempotency_record(key, idempotency_key, request, request_hash, reserve)
        if record.request_hash != request_hash:
            raise ApiProblem(
                409,
                "idempotency_key_reused",
                "This Idempotency-Key was already used with a different request. Use a new key.",
            )
        if record.status_code is not None:
            return _json(record.status_code, record.response_body, replayed=True)
        try:
            # No savepoint of its own: the services roll their own writes back (atomic blocks) when they
            # refuse, and anything else unexpected rolls the whole request back, record included.
            status, body, *extra = run() if reserve is None else run(reserved)
            write: Write | None = extra[0] if extra else None
        except (LedgerBusy, IdempotencyConflict):
            raise
        except DomainError as exc:
            problem = problem_from_domain_error(exc)
            status, body, write = problem.status, problem.body(instance), None
        except ApiProblem as exc:
            if exc.status not in (402, 404, 422):
                raise
            status, body, write = exc.status, exc.body(instance), None
        content = json.dumps(body, cls=DjangoJSONEncoder)
        if write is not None:
            fetch_hot(
                f"WITH w AS ({write.sql.strip()}) {_STORE_RESPONSE_SQL}", [*write.params, status, content, record.pk]
            )
        else:
            fetch_hot(_STORE_RESPONSE_SQL, [status, content, record.pk])
    return _json(status, content)
