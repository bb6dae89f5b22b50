"""RFC 9457 problem details for the API: every error has a stable `code` and a human `message`."""

from __future__ import annotations

from django.http import HttpRequest, JsonResponse

from core.errors import DomainError
from wallets.errors import (
    IdempotencyConflict,
    InsufficientCredits,
    InvalidAmount,
    LedgerBusy,
    MemberNotActive,
)

PROBLEM_CONTENT_TYPE = "application/problem+json"

TITLES = {
    400: "Bad request",
    401: "Unauthorized",
    402: "Payment required",
    403: "Forbidden",
    404: "Not found",
    409: "Conflict",
    422: "Unprocessable content",
    429: "Too many requests",
    500: "Internal server error",
    503: "Service unavailable",
}


class ApiProblem(Exception):
    """Raise anywhere in an API operation to answer with a problem document."""

    def __init__(self, status: int, code: str, message: str, headers: dict | None = None, **extra):
        self.status = status
        self.code = code
        self.message = message
        self.headers = headers or {}
        self.extra = extra
        super().__init__(message)

    def body(self, instance: str = "") -> dict:
        body = {
            "type": f"urn:credits:problem:{self.code}",
            "title": TITLES.get(self.status, "Error"),
            "status": self.status,
            "detail": self.message,
            "code": self.code,
            "message": self.message,
        }
        if instance:
            body["instance"] = instance
        body.update(self.extra)
        return body


def problem_instance(request: HttpRequest) -> str:
    """The problem's `instance`: the path of the request that failed."""
    return request.path


def problem_response(problem: ApiProblem, instance: str = "") -> JsonResponse:
    response = JsonResponse(problem.body(instance), status=problem.status, content_type=PROBLEM_CONTENT_TYPE)
    for name, value in problem.headers.items():
        response[name] = value
    return response


def problem_from_domain_error(exc: DomainError) -> ApiProblem:
    """Domain errors keep their user-safe message; the status and code say what kind of failure it was."""
    if isinstance(exc, InsufficientCredits):
        return ApiProblem(
            402,
            "insufficient_credits",
            exc.message,
            shortfall=exc.shortfall,
            available=exc.available,
            requested=exc.requested,
        )
    if isinstance(exc, MemberNotActive):
        return ApiProblem(404, "member_not_found", exc.message)
    if isinstance(exc, InvalidAmount):
        return ApiProblem(422, "invalid_amount", exc.message)
    if isinstance(exc, IdempotencyConflict):
        return ApiProblem(
            409, "idempotency_key_reused", "This Idempotency-Key was already used with a different request."
        )
    if isinstance(exc, LedgerBusy):
        return ApiProblem(503, "ledger_busy", exc.message, headers={"Retry-After": "1"})
    return ApiProblem(422, "rejected", exc.message)
