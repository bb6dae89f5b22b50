"""Settings > API keys: org admins create keys (shown once) and revoke them."""

from __future__ import annotations

import uuid

from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.db import IntegrityError, transaction
from django.http import HttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_POST

from apikeys.models import ApiKey, ApiKeyScope
from orgs.models import Organization
from orgs.selectors import billing_admin_membership


class ApiKeyForm(forms.Form):
    request_key = forms.CharField(widget=forms.HiddenInput, max_length=64)
    name = forms.CharField(
        max_length=80,
        help_text="Where the key is used, e.g. “Job runner (production)”.",
        widget=forms.TextInput(attrs={"autocomplete": "off"}),
    )
    scope = forms.ChoiceField(
        choices=ApiKeyScope.choices,
        initial=ApiKeyScope.READ,
        help_text="Every key reads balances and transactions. Charge usage: also charges members for usage. "
        "Transfer: also moves org credits to members.",
    )

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if not self.is_bound:
            self.initial["request_key"] = uuid.uuid4().hex

    def clean_name(self) -> str:
        name = self.cleaned_data["name"].strip()
        if not name:
            raise forms.ValidationError("Give the key a name.")
        return name


def api_key_create(*, org: Organization, name: str, scope: str, actor, request_key: str) -> tuple[ApiKey, str]:
    """Issue a key; the plain token is returned once and never stored. A repeated form submission
    (same request_key) returns the existing key with an empty token: its secret cannot be shown again."""
    existing = ApiKey.objects.filter(org=org, request_key=request_key).first()
    if existing is not None:
        return existing, ""
    try:
        with transaction.atomic():
            return ApiKey.objects.issue(org=org, name=name, scope=scope, created_by=actor, request_key=request_key)
    except IntegrityError:
        return ApiKey.objects.get(org=org, request_key=request_key), ""


def api_key_revoke(*, org: Organization, key_id: int, actor) -> ApiKey | None:
    """Revoke now: the next request with the key fails (authentication reads the row every time)."""
    with transaction.atomic():
        key = ApiKey.objects.select_for_update().filter(org=org, pk=key_id).first()
        if key is None or key.revoked_at is not None:
            return key
        key.revoked_at, key.revoked_by = timezone.now(), actor
        key.save(update_fields=["revoked_at", "revoked_by"])
    return key


def _render(request, membership, form, new_token: str = "", new_key: ApiKey | None = None, status: int = 200):
    keys = list(ApiKey.objects.filter(org=membership.org).select_related("created_by").order_by("-created_at"))
    response = render(
        request,
        "billing/api_keys.html",
        {"org": membership.org, "form": form, "keys": keys, "new_token": new_token, "new_key": new_key},
        status=status,
    )
    return response


@require_GET
@login_required
@never_cache
def api_keys_page(request, org_slug: str) -> HttpResponse:
    membership = billing_admin_membership(user=request.user, org_slug=org_slug)
    return _render(request, membership, ApiKeyForm())


@require_POST
@login_required
@never_cache
def api_key_create_view(request, org_slug: str) -> HttpResponse:
    """Creates the key and shows its secret in this response only (no redirect, no cache)."""
    membership = billing_admin_membership(user=request.user, org_slug=org_slug)
    form = ApiKeyForm(request.POST)
    if not form.is_valid():
        return _render(request, membership, form, status=422)
    key, token = api_key_create(
        org=membership.org,
        name=form.cleaned_data["name"],
        scope=form.cleaned_data["scope"],
        actor=request.user,
        request_key=form.cleaned_data["request_key"],
    )
    if not token:
        messages.warning(
            request,
            f"“{key.name}” was already created by this form; its secret was shown once. "
            "If you did not copy it, revoke the key and create another.",
        )
        return redirect("billing:api_keys", org_slug=membership.org.slug)
    return _render(request, membership, ApiKeyForm(), new_token=token, new_key=key, status=201)


@require_POST
@login_required
def api_key_revoke_view(request, org_slug: str, key_id: int) -> HttpResponse:
    membership = billing_admin_membership(user=request.user, org_slug=org_slug)
    key = api_key_revoke(org=membership.org, key_id=key_id, actor=request.user)
    if key is None:
        messages.error(request, "No such API key.")
    else:
        messages.success(request, f"Revoked “{key.name}”. Requests with it now fail.")
    return redirect("billing:api_keys", org_slug=membership.org.slug)
