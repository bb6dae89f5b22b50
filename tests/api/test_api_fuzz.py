"""Every endpoint fuzzed from its own OpenAPI schema (schemathesis, in-process through Django's WSGI app):
no 500s, and every response (status, content type, headers, body) matches the schema."""

import pytest
import schemathesis
from django.core.cache import cache
from django.core.signals import request_finished, request_started
from django.db import close_old_connections
from django.test import override_settings
from hypothesis import HealthCheck, settings
from schemathesis.config import SchemathesisConfig

from config.wsgi import application
from tests.api.fuzzing import call_and_validate
from tests.api.helpers import give, issue_key
from tests.factories import MembershipFactory, fund
from wallets.selectors import ledger_problems

# A schema-valid request may still be refused for what it refers to: 402 (not enough credits) and 404
# (no such member or credit type) are documented domain answers. 422 is not on the list: a schema-valid
# body that the validators reject would be a mismatch between schema and code.
CONFIG = SchemathesisConfig.from_dict(
    {"checks": {"positive_data_acceptance": {"expected-statuses": ["2xx", "401", "402", "403", "404", "409", "429"]}}}
)
schema = schemathesis.openapi.from_wsgi("/api/v1/openapi.json", application, config=CONFIG)

SCOPE_FOR = {"/api/v1/usage": "charge", "/api/v1/transfers": "transfer"}


@pytest.fixture
def _keep_test_connection():
    """Like Django's test Client: a request must not close the test's (transactional) connection."""
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    yield
    request_started.connect(close_old_connections)
    request_finished.connect(close_old_connections)


@pytest.fixture
def tokens(funded_org, owner, _keep_test_connection):
    cache.clear()
    fund(funded_org, 500, "promo")
    for _ in range(3):
        give(funded_org, MembershipFactory(org=funded_org), 100)
    return {scope: issue_key(funded_org, scope, created_by=owner)[1] for scope in ("read", "charge", "transfer")}


@pytest.mark.django_db
@override_settings(API_RATE_LIMIT_PER_MINUTE=0)
@schema.parametrize()
# derandomize: the same examples every run, so CI is stable (a rare false alarm was seen when an invalid
# value such as an empty object serialises to no query parameter at all, which is a valid request).
@settings(
    max_examples=40,
    derandomize=True,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow, HealthCheck.filter_too_much],
)
def test_api_conforms_to_its_schema(case, tokens):
    # A negative case may leave out or mangle the Authorization header on purpose (the schema requires a
    # bearer key): send it as generated, and the check expects the 401. Injecting a valid key there would
    # turn the case into a valid request that schemathesis still expects to be refused. Everywhere else
    # the key with the scope the operation needs. (Schemathesis skips its own registered auth the same
    # way; it is not registered here because schemathesis builds some cases at collection, before the
    # `tokens` fixture has issued the keys.)
    if case.operation.schema.is_security_param_negated(case):
        call_and_validate(case)
    else:
        token = tokens[SCOPE_FOR.get(case.path, "read")]
        call_and_validate(case, headers={"Authorization": f"Bearer {token}"})
    assert ledger_problems() == []
