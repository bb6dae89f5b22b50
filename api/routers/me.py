"""GET /me: the key making the call, its org and what it may do (no query beyond authenticating the key)."""

from __future__ import annotations

from ninja import Router

from api.schemas import READ_ERRORS, MeOut
from apikeys.models import ApiKey

router = Router(tags=["me"])


@router.get("/me", response={200: MeOut, **READ_ERRORS}, summary="This API key")
def me(request):
    """The calling key's org (slug and name), the key's name, public prefix and scope: a cheap way to check a
    key works and what it may do."""
    key: ApiKey = request.auth
    return {
        "org": key.org.slug,
        "org_name": key.org.name,
        "key_name": key.name,
        "key_prefix": key.display_prefix,
        "scope": key.scope,
    }
