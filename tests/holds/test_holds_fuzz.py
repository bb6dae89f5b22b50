"""The hold endpoints fuzzed from the OpenAPI schema (schemathesis, in-process), with more examples than the
whole-API fuzz (tests/api/test_api_fuzz.py, which covers them too): no 500s, every response matches the
schema, and the ledger and the holds stay consistent."""

import pytest
import schemathesis
from django.core.cache import cache
from django.core.signals import request_finished, request_started
from django.db import close_old_connections
from django.test import override_settings
from hypothesis import HealthCheck, settings
from schemathesis.config import SchemathesisConfig

from config.wsgi import application
from holds.selectors import holds_problems
from holds.services import create_hold
from tests.api.fuzzing import call_and_validate
from tests.api.helpers import give, issue_key
from tests.factories import MembershipFactory, fund
from wallets.selectors import ledger_problems

CONFIG = SchemathesisConfig.from_dict(
    {"checks": {"positive_data_acceptance": {"expected-statuses": ["2xx", "401", "402", "403", "404", "409", "429"]}}}
)
schema = schemathesis.openapi.from_wsgi("/api/v1/openapi.json", application, config=CONFIG).include(
    path_regex=r"^/api/v1/holds"
)


@pytest.fixture
def _keep_test_connection():
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    yield
    request_started.connect(close_old_connections)
    request_finished.connect(close_old_connections)


@pytest.fixture
def token(funded_org, owner, _keep_test_connection):
    cache.clear()
    fund(funded_org, 500, "promo")
    for _ in range(3):
        member = MembershipFactory(org=funded_org)
        give(funded_org, member, 100)
        create_hold(org=funded_org, membership_id=member.pk, amount=10)
    return issue_key(funded_org, "charge", created_by=owner)[1]


def test_the_fuzz_reaches_every_hold_operation():
    operations = {(op.ok().method.upper(), op.ok().path) for op in schema.get_all_operations()}
    assert operations == {
        ("POST", "/api/v1/holds"),
        ("POST", "/api/v1/holds/{hold_id}/capture"),
        ("POST", "/api/v1/holds/{hold_id}/void"),
        ("GET", "/api/v1/holds/{hold_id}"),
    }


@pytest.mark.django_db
@override_settings(API_RATE_LIMIT_PER_MINUTE=0)
@schema.parametrize()
@settings(
    max_examples=80,
    derandomize=True,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow, HealthCheck.filter_too_much],
)
def test_hold_endpoints_conform_to_their_schema(case, token):
    if case.operation.schema.is_security_param_negated(case):
        call_and_validate(case)
    else:
        call_and_validate(case, headers={"Authorization": f"Bearer {token}"})
    assert ledger_problems() == []
    assert holds_problems() == []
