"""The versioned JSON API: /api/v1/ (django-ninja). OpenAPI at /api/v1/openapi.json, docs at /api/v1/docs.

Where things are:
- this module: the NinjaAPI instance `api` (mounted by config/urls.py), its description, and the exception
  handlers that turn every error into a problem+json response (api.errors);
- api.routers.<resource>: the endpoints, one Router per resource (me, balances, members, transactions,
  transfers, usage);
- api.schemas: request and response schemas, their validators, and READ_ERRORS/POST_ERRORS;
- api.auth: API-key auth, scopes, the per-key rate limit;
- api.idempotency: every POST runs through `idempotent`, which stores the first response per
  (org, Idempotency-Key);
- api.selectors: reads (balances, cursors); api/sql/: the SQL of more than one line.

Views stay thin: authenticate (api.auth), check the scope, call one domain verb or selector.
"""

from __future__ import annotations

from django.http import Http404
from django.views.decorators.csrf import csrf_exempt
from ninja import NinjaAPI
from ninja.errors import AuthenticationError, HttpError, ValidationError
from ninja.openapi.docs import Swagger

from api.auth import ApiKeyAuth
from api.errors import PROBLEM_CONTENT_TYPE, ApiProblem, problem_from_domain_error, problem_instance, problem_response
from api.routers import balances, holds, me, members, transactions, transfers, usage
from core.db_unavailable import INTERFACE_ERRORS, OPERATIONAL_ERRORS, RETRY_AFTER_SECONDS, is_connection_lost
from core.errors import DomainError

DESCRIPTION = """
Spend and move an organization's credits from code.

**Auth**: `Authorization: Bearer <API key>`; org admins create keys on Settings > API keys. Every key reads;
`charge` keys also charge usage, `transfer` keys also transfer org credits to members.

**Idempotency**: every POST needs an `Idempotency-Key` header (1-100 characters). The same key with the
same body returns the first response (status and body) and moves nothing; the same key with a different
body gets a 409 Conflict. Keys are kept at least 24 hours.

**Errors** are RFC 9457 problem details (`application/problem+json`) with a stable `code` and a human
`message`.
"""


class ProblemAwareAPI(NinjaAPI):
    def get_openapi_schema(self, **kwargs):
        """Error responses are documented as application/problem+json, as they are served."""
        schema = super().get_openapi_schema(**kwargs)
        for path_item in schema.get("paths", {}).values():
            for operation in path_item.values():
                for status, response in operation.get("responses", {}).items():
                    content = response.get("content", {})
                    if str(status).startswith(("4", "5")) and "application/json" in content:
                        response["content"] = {PROBLEM_CONTENT_TYPE: content.pop("application/json")}
        return schema

    def get_openapi_operation_id(self, operation) -> str:
        """The operation ids first published, when every endpoint lived in one module (api.endpoints):
        clients generated from the schema name their methods after them, so they stay."""
        return f"api_endpoints_{operation.view_func.__name__}"


api = ProblemAwareAPI(
    title="Credits API",
    version="1",
    description=DESCRIPTION,
    urls_namespace="api-v1",
    auth=ApiKeyAuth(),
    docs=Swagger(settings={"validatorUrl": None, "persistAuthorization": False}),
)

api.add_router("", me.router)
api.add_router("", balances.router)
api.add_router("", members.router)
api.add_router("", transactions.router)
api.add_router("", transfers.router)
api.add_router("", usage.router)
api.add_router("", holds.router)


# ---------------------------------------------------------------------------- error handling


@api.exception_handler(ApiProblem)
def _on_problem(request, exc: ApiProblem):
    return problem_response(exc, problem_instance(request))


@api.exception_handler(DomainError)
def _on_domain_error(request, exc: DomainError):
    return problem_response(problem_from_domain_error(exc), problem_instance(request))


@api.exception_handler(ValidationError)
def _on_validation(request, exc: ValidationError):
    errors = [
        {"loc": [str(p) for p in e.get("loc", [])], "msg": str(e.get("msg", "")), "type": str(e.get("type", ""))}
        for e in exc.errors
    ]
    fields = {e["loc"][-1] if e["loc"] else "" for e in errors}
    if "Idempotency-Key" in fields:
        code, message = "idempotency_key_required", "Send an Idempotency-Key header of 1-100 visible characters."
    elif "amount" in fields:
        code, message = "invalid_amount", "Amount must be a whole number of credits from 1 to 10^15."
    else:
        first = errors[0] if errors else {"loc": [], "msg": "Invalid request."}
        where = ".".join(first["loc"][1:]) or "request"
        code, message = "validation_error", f"{where}: {first['msg']}"
    return problem_response(ApiProblem(422, code, message, errors=errors), problem_instance(request))


@api.exception_handler(AuthenticationError)
def _on_auth(request, exc):
    problem = ApiProblem(401, "unauthenticated", "Send a valid API key.", headers={"WWW-Authenticate": "Bearer"})
    return problem_response(problem, problem_instance(request))


@api.exception_handler(HttpError)
def _on_http_error(request, exc: HttpError):
    code = {400: "malformed_request", 404: "not_found"}.get(exc.status_code, "error")
    return problem_response(ApiProblem(exc.status_code, code, str(exc)), problem_instance(request))


@api.exception_handler(Http404)
def _on_404(request, exc):
    return problem_response(ApiProblem(404, "not_found", "Not found."), problem_instance(request))


@csrf_exempt  # API clients send no CSRF token: a wrong path answers 404 for every method, not a CSRF 403
def unknown_endpoint(request, rest: str = ""):
    """Any /api/ path that no endpoint answers: a problem document, like every other API error, not the
    site's HTML 404 page (a client parsing JSON gets JSON). No authentication needed to learn a path is wrong."""
    problem = ApiProblem(404, "not_found", "No such API endpoint. The API is documented at /api/v1/docs.")
    return problem_response(problem, problem_instance(request))


def _on_database_error(request, exc):
    """The database connection dropped (core.db_unavailable): 503 with Retry-After; a POST is retried with
    the same Idempotency-Key. Any other database error (a failed statement) is a bug and stays a 500."""
    if not is_connection_lost(exc):
        raise exc
    problem = ApiProblem(
        503,
        "database_unavailable",
        "The database is unreachable right now. Retry later (a POST with the same Idempotency-Key).",
        headers={"Retry-After": str(RETRY_AFTER_SECONDS)},
    )
    return problem_response(problem, problem_instance(request))


for _error in (*OPERATIONAL_ERRORS, *INTERFACE_ERRORS):
    api.add_exception_handler(_error, _on_database_error)
