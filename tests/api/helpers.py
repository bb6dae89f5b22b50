"""Helpers for API tests: issue keys, give members credits, call the API with a Bearer key."""

import json

from django.test import Client

from apikeys.models import ApiKey
from wallets.models import CreditType
from wallets.services import org_transfer_to_member


def issue_key(org, scope="charge", name="test key", created_by=None):
    return ApiKey.objects.issue(org=org, name=name, scope=scope, created_by=created_by)


def give(org, membership, amount, slug="org-allocated"):
    """Move credits from the org wallet to the member (the org must hold them)."""
    return org_transfer_to_member(
        org=org, membership_id=membership.pk, credit_type=CreditType.objects.get(slug=slug), amount=amount
    )


class Api:
    def __init__(self, token):
        self.client = Client(HTTP_AUTHORIZATION=f"Bearer {token}")

    def get(self, path, **params):
        return self.client.get(f"/api/v1{path}", params)

    def post(self, path, body, key="k-1", **headers):
        if key is not None:
            headers["HTTP_IDEMPOTENCY_KEY"] = key
        raw = body if isinstance(body, str) else json.dumps(body)
        return self.client.post(f"/api/v1{path}", raw, content_type="application/json", **headers)
