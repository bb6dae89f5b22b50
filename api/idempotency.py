"""Idempotent POSTs: the first response per (org, Idempotency-Key) is stored and replayed.

A POST endpoint hands its work to `idempotent(request, idempotency_key, run)`. The request is hashed, the
IdempotencyRecord (apikeys.models) is claimed and locked in one statement (sql/claim_idempotency_record.sql),
`run()` moves the credits in the same transaction, and its response is stored beside the record, so either
both commit or neither does. POST /usage, the hottest path, writes its record and answer inside the ledger's own
statement instead and has no transaction of its own (the helpers at the end of this module). Records are purged by
`manage.py purge_idempotency_records`.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
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
_STORE_FIRST_SQL = load_sql(__file__, "store_first_answer.sql")


def request_hash(request: HttpRequest) -> str:
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


def _claim_idempotency_record(key: ApiKey, idempotency_key: str, request, request_hash: str) -> IdempotencyRecord:
    """Insert the record, or lock the one that exists, in one statement (one round trip).

    ON CONFLICT DO UPDATE waits for a racer that holds the same key to commit, then locks and returns
    its row, so the caller sees either its own fresh row or the racer's finished response."""
    params = [key.org_id, key.pk, idempotency_key, request.method, request.path[:200], request_hash, timezone.now()]
    ((pk, stored_hash, status_code, body),) = fetch_hot(_CLAIM_SQL, params)
    record = IdempotencyRecord(
        pk=pk,
        org_id=key.org_id,
        key=idempotency_key,
        request_hash=stored_hash,
        status_code=status_code,
        response_body=body,
    )
    return record


def idempotent(request: HttpRequest, idempotency_key: str, run: Callable[..., tuple]) -> HttpResponse:
    """Run `run() -> (status, body)` once per (org, Idempotency-Key).

    The record is inserted (or, if a racer holds it, waited for on the unique index) and locked in the
    same transaction as the movement, so either both commit or neither does. As with Stripe, what `run`
    answers is stored and replayed: the success and the refusals it decides (402, 404, and 422 such as a
    bulk total above 10^15 or `rejected` for an org that owes credits). Transient outcomes (409, 503,
    a lost database connection) are not; neither is anything refused before `run` (auth, scope, request
    validation). docs/api.md, "Idempotency", says why.
    """
    key: ApiKey = request.auth
    hashed = request_hash(request)
    instance = problem_instance(request)
    with transaction.atomic():
        record = _claim_idempotency_record(key, idempotency_key, request, hashed)
        if record.request_hash != hashed:
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
            status, body = run()
        except (LedgerBusy, IdempotencyConflict):
            raise
        except DomainError as exc:
            problem = problem_from_domain_error(exc)
            status, body = problem.status, problem.body(instance)
        except ApiProblem as exc:
            if exc.status not in (402, 404, 422):
                raise
            status, body = exc.status, exc.body(instance)
        content = json.dumps(body, cls=DjangoJSONEncoder)
        fetch_hot(_STORE_RESPONSE_SQL, [status, content, record.pk])
    return _json(status, content)


# ------------------------------------------------------------------------ the answer inside the ledger's statement
#
# POST /usage does not open a transaction: its record, answer included, is written by the ledger's statement
# itself, with the charge (api/sql/idempotency_answer_row.sql), in autocommit: one round trip where BEGIN, claim,
# ledger, store and COMMIT were five. What keeps the promises (docs/api.md, "Idempotency"): the record's unique
# (org, key) is written by the statement that charges, so a charge and a stored answer for another request (or a
# stored 402) cannot both commit; the charge and its answer commit together, so every caller with the key gets
# that answer; a charge whose record is gone (purged after its retention) is answered from the ledger and that
# answer stored.


def reused_key() -> ApiProblem:
    return ApiProblem(
        409, "idempotency_key_reused", "This Idempotency-Key was already used with a different request. Use a new key."
    )


def answer_stored(org_id: int, idempotency_key: str, hashed: str) -> HttpResponse | None:
    """The key's stored answer, replayed; 409 when the key was used for another request; None when it has no
    answer yet (no record, or one without an answer: only a charge's written before its answer was)."""
    row = (
        IdempotencyRecord.objects.filter(org_id=org_id, key=idempotency_key)
        .values_list("request_hash", "status_code", "response_body")
        .first()
    )
    if row is None:
        return None
    if row[0] != hashed:
        raise reused_key()
    if row[1] is None:
        return None
    return _json(row[1], row[2], replayed=True)


def store_first_answer(request: HttpRequest, idempotency_key: str, hashed: str, status: int, body) -> HttpResponse:
    """Store `body` as the key's answer unless the key has one (one statement), and answer whatever is stored."""
    key: ApiKey = request.auth
    content = json.dumps(body, cls=DjangoJSONEncoder)
    params = [key.org_id, key.pk, idempotency_key, request.method, request.path[:200], hashed, status, content]
    if fetch_hot(_STORE_FIRST_SQL, [*params, timezone.now()]):
        return _json(status, content)
    return answer_stored(key.org_id, idempotency_key, hashed) or busy()


def answered(status: int, content: str) -> HttpResponse:
    """The answer a statement stored as it moved the credits (POST /usage), as stored."""
    return _json(status, content)


def busy() -> HttpResponse:
    """A record that has no answer where one must be: not reached by the flows above and POST /usage's (a charge's
    record is written with its answer); if it were, a retry finds the answer."""
    raise LedgerBusy()
