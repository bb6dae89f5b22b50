"""Every URL in the URLconf x every role x GET/POST gets the status written here.

A URL added without an entry in MATRIX fails `test_every_url_has_an_entry`, so access rules are decided
on purpose, not by accident; so does a route without a name (the walk reverses names) or a name two routes
share. Statuses: 200 ok, 302 redirect (to sign-in for anonymous), 400 bad input, 401 no API key, 403 wrong
role, 404 not their org / no such object, 405 wrong method.
"""

from collections import defaultdict

import pytest
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver, reverse
from django.urls.resolvers import RegexPattern

from tests.factories import MembershipFactory, OrgFactory, UserFactory, fund
from tests.schedules.helpers import make_schedule

ROLES = ["anonymous", "member", "manager", "admin", "owner", "other_admin", "staff"]


def _all(status):
    return dict.fromkeys(ROLES, status)


def _signed_in(status, anonymous=302):
    return {**_all(status), "anonymous": anonymous}


BILLING_VIEW = {**_signed_in(200), "member": 403, "other_admin": 404, "staff": 404}
READ_ONLY = _signed_in(405)
# Acting on Billing: owner/admins; managers and members 403; outsiders 404.
DECIDE = {**_signed_in(200), "member": 403, "manager": 403, "other_admin": 404, "staff": 404}
# Acting with a redirect back on success (POST-only actions): 302 for owner/admins.
ACT = {**DECIDE, "admin": 302, "owner": 302}
BAD_INPUT = {**DECIDE, "admin": 400, "owner": 400}
# Any active member of the org; outsiders 404.
ORG_MEMBER = {**_signed_in(200), "other_admin": 404, "staff": 404}


def _purchase(c):
    return {"org_slug": c["org"].slug, "purchase_id": c["purchase"].pk}


def _target(c):
    return {"org_slug": c["org"].slug, "membership_id": c["target"].pk}


def _schedule(c):
    return {"org_slug": c["org"].slug, "schedule_id": c["schedule"].pk}


# url name -> {"kwargs": callable(ctx) -> dict, "GET": {role: status}, "POST": {role: status}}
MATRIX = {
    "home": {"GET": {**_signed_in(302)}, "POST": {**_signed_in(302)}},
    "login": {"GET": _signed_in(302, anonymous=200), "POST": _signed_in(302, anonymous=200)},
    "logout": {"GET": _all(405), "POST": _all(302)},
    # Sign-up by emailed link: an empty POST is bad input (400); signed-in people go to their wallet.
    "signup": {"GET": {**_signed_in(302, anonymous=200)}, "POST": {**_signed_in(302, anonymous=400)}},
    "signup_confirm": {
        "kwargs": lambda c: {"token": c["signup_token"]},
        "GET": _signed_in(302, anonymous=200),
        "POST": _signed_in(302, anonymous=400),  # no password: refused, nothing created
    },
    # Django's password reset, open to anyone; its answers never depend on whether the address has an account.
    "password_reset": {"GET": _all(200), "POST": _all(200)},  # an empty form is shown again with its error
    "password_reset_done": {"GET": _all(200), "POST": _all(405)},
    # A made-up link: the page says it is not valid (Django answers 200 for GET and POST alike).
    "password_reset_confirm": {
        "kwargs": lambda c: {"uidb64": "MQ", "token": "set-password-matrix"},
        "GET": _all(200),
        "POST": _all(200),
    },
    "password_reset_complete": {"GET": _all(200), "POST": _all(405)},
    "workspace_switch": {"GET": _all(405), "POST": _signed_in(404)},
    "wallet": {"GET": _signed_in(200), "POST": _signed_in(405)},
    "healthz": {"GET": _all(200), "POST": _all(200)},
    # Any /api/ path no endpoint answers: a problem+json 404 for anyone, any method (no CSRF: API clients).
    "api_unknown": {"kwargs": lambda c: {"rest": "v1/no-such-endpoint"}, "GET": _all(404), "POST": _all(404)},
    # Old admin addresses of models that moved app: a redirect for anyone; the admin itself checks who asks.
    "admin_moved": {"kwargs": lambda c: {"model": "creditrequest", "rest": ""}, "GET": _all(301), "POST": _all(405)},
    "billing:page": {"kwargs": lambda c: {"org_slug": c["org"].slug}, "GET": BILLING_VIEW, "POST": READ_ONLY},
    "billing:requests": {"kwargs": lambda c: {"org_slug": c["org"].slug}, "GET": BILLING_VIEW, "POST": READ_ONLY},
    "billing:balance_card": {
        "kwargs": lambda c: {"org_slug": c["org"].slug},
        "GET": BILLING_VIEW,
        "POST": READ_ONLY,
    },
    # Credit expiry setting (issue 19): owner/admins; an empty POST is a valid "never" and goes back to Billing.
    "billing:expiry_settings": {"kwargs": lambda c: {"org_slug": c["org"].slug}, "GET": DECIDE, "POST": ACT},
    # Credit requests. Members ask; owner/admins decide; managers look.
    "billing:requests_list": {"kwargs": lambda c: {"org_slug": c["org"].slug}, "GET": BILLING_VIEW, "POST": _all(405)},
    "billing:requests_history": {
        "kwargs": lambda c: {"org_slug": c["org"].slug},
        "GET": BILLING_VIEW,
        "POST": _all(405),
    },
    "billing:request_approve": {
        "kwargs": lambda c: {"org_slug": c["org"].slug, "request_id": c["credit_request"].pk},
        "GET": DECIDE,
        "POST": DECIDE,
    },
    "billing:request_reject": {
        "kwargs": lambda c: {"org_slug": c["org"].slug, "request_id": c["credit_request"].pk},
        "GET": DECIDE,
        # The reason is optional, so the admin's empty POST rejects it (302); the owner then finds it decided.
        "POST": {**DECIDE, "admin": 302},
    },
    "billing:request_new": {"kwargs": lambda c: {"org_slug": c["org"].slug}, "GET": ORG_MEMBER, "POST": ORG_MEMBER},
    "billing:request_cancel": {
        "kwargs": lambda c: {"org_slug": c["org"].slug, "request_id": c["credit_request"].pk},
        "GET": _all(405),
        "POST": {**_signed_in(404), "member": 302},
    },
    "billing:member_requests_panel": {
        "kwargs": lambda c: {"org_slug": c["org"].slug},
        "GET": ORG_MEMBER,
        "POST": _all(405),
    },
    # Transfer dialog: owner/admins only.
    "billing:transfer": {"kwargs": lambda c: {"org_slug": c["org"].slug}, "GET": DECIDE, "POST": _all(405)},
    "billing:transfer_members": {"kwargs": lambda c: {"org_slug": c["org"].slug}, "GET": DECIDE, "POST": _all(405)},
    "billing:transfer_preview": {"kwargs": lambda c: {"org_slug": c["org"].slug}, "GET": DECIDE, "POST": _all(405)},
    "billing:transfer_submit": {"kwargs": lambda c: {"org_slug": c["org"].slug}, "GET": _all(405), "POST": DECIDE},
    # Transactions: owner, admins, managers read; members 403.
    "billing:transactions": {"kwargs": lambda c: {"org_slug": c["org"].slug}, "GET": BILLING_VIEW, "POST": READ_ONLY},
    "billing:transactions_export": {
        "kwargs": lambda c: {"org_slug": c["org"].slug},
        "GET": BILLING_VIEW,
        "POST": READ_ONLY,
    },
    "billing:transfer_detail": {
        "kwargs": lambda c: {"org_slug": c["org"].slug, "transfer_id": c["bulk_transfer"].pk},
        "GET": BILLING_VIEW,
        "POST": READ_ONLY,
    },
    "billing:transfer_recipients": {
        "kwargs": lambda c: {"org_slug": c["org"].slug, "transfer_id": c["bulk_transfer"].pk},
        "GET": BILLING_VIEW,
        "POST": READ_ONLY,
    },
    "billing:balance_chart": {"kwargs": lambda c: {"org_slug": c["org"].slug}, "GET": BILLING_VIEW, "POST": READ_ONLY},
    # Usage page (issue 19) and its CSV export: read-only, like Transactions.
    "usage:page": {"kwargs": lambda c: {"org_slug": c["org"].slug}, "GET": BILLING_VIEW, "POST": READ_ONLY},
    "usage:export": {"kwargs": lambda c: {"org_slug": c["org"].slug}, "GET": BILLING_VIEW, "POST": READ_ONLY},
    # Buy Credits: owner/admins buy; managers see purchases; Stripe signs the webhook.
    "billing:buy": {"kwargs": lambda c: {"org_slug": c["org"].slug}, "GET": DECIDE, "POST": BAD_INPUT},
    "billing:buy_preview": {"kwargs": lambda c: {"org_slug": c["org"].slug}, "GET": DECIDE, "POST": READ_ONLY},
    "billing:purchases": {"kwargs": lambda c: {"org_slug": c["org"].slug}, "GET": BILLING_VIEW, "POST": READ_ONLY},
    # The return page after checkout is for the buyers (owner/admins); the cancel page's GET only shows it, its
    # POST expires the checkout and goes back (302).
    "billing:purchase": {"kwargs": _purchase, "GET": DECIDE, "POST": READ_ONLY},
    "billing:purchase_cancel": {"kwargs": _purchase, "GET": DECIDE, "POST": ACT},
    # Receipts: whoever may view Billing (the matrix's purchase is unpaid: a page saying it has no receipt).
    "billing:purchase_receipt": {"kwargs": _purchase, "GET": BILLING_VIEW, "POST": READ_ONLY},
    "billing:stripe_webhook": {"GET": _all(405), "POST": _all(400)},  # unsigned: refused, nothing written
    # Auto top-up: owner/admins only, managers and members 403, other orgs 404. The settings form's empty POST is
    # bad input (400); "Save a card" sends them to Stripe's setup page (302); the return page without a session of
    # theirs is a 404.
    "auto_top_up:page": {"kwargs": lambda c: {"org_slug": c["org"].slug}, "GET": DECIDE, "POST": BAD_INPUT},
    "auto_top_up:summary": {"kwargs": lambda c: {"org_slug": c["org"].slug}, "GET": DECIDE, "POST": READ_ONLY},
    "auto_top_up:card_setup": {"kwargs": lambda c: {"org_slug": c["org"].slug}, "GET": READ_ONLY, "POST": ACT},
    "auto_top_up:card_done": {
        "kwargs": lambda c: {"org_slug": c["org"].slug},
        "GET": {**DECIDE, "admin": 404, "owner": 404},
        "POST": READ_ONLY,
    },
    # The offline Stripe stand-in: a dev tool, mounted only when STRIPE_STANDIN is on (never with real keys).
    # Its dashboard is open to anyone (the demo's Stripe; an empty POST re-shows it with "Unknown action."). Its
    # forms need the CSRF token, which the matrix's Client does not enforce (no cell here does): see
    # tests/devtools/test_stripe_standin.py::test_dashboard_actions_need_the_csrf_token for the 403.
    "stripe_standin:home": {"GET": _all(200), "POST": _all(400)},  # the matrix posts no action: a readable 400
    "stripe_standin:checkout": {
        "kwargs": lambda c: {"session_id": "cs_matrix_missing"},
        "GET": _all(404),
        "POST": _all(404),
    },
    # Its fake Stripe REST API answers only the configured secret key (Bearer settings.STRIPE_SECRET_KEY), like Stripe:
    # a browser session of any role gets Stripe's 401, whatever the method (see test_stripe_standin_api_...).
    "stripe_standin:api_sessions": {"GET": _all(401), "POST": _all(401)},
    "stripe_standin:api_session": {
        "kwargs": lambda c: {"session_id": "cs_matrix"},
        "GET": _all(401),
        "POST": _all(401),
    },
    "stripe_standin:api_session_expire": {
        "kwargs": lambda c: {"session_id": "cs_matrix"},
        "GET": _all(401),
        "POST": _all(401),
    },
    "stripe_standin:api_refunds": {"GET": _all(401), "POST": _all(401)},
    "stripe_standin:api_refund": {"kwargs": lambda c: {"obj_id": "re_matrix"}, "GET": _all(401), "POST": _all(401)},
    "stripe_standin:api_charge": {"kwargs": lambda c: {"obj_id": "ch_matrix"}, "GET": _all(401), "POST": _all(401)},
    "stripe_standin:api_payment_intent": {
        "kwargs": lambda c: {"obj_id": "pi_matrix"},
        "GET": _all(401),
        "POST": _all(401),
    },
    # Saved cards (auto top-up): the same Stripe 401 for a browser session.
    "stripe_standin:api_customers": {"GET": _all(401), "POST": _all(401)},
    "stripe_standin:api_customer": {"kwargs": lambda c: {"obj_id": "cus_matrix"}, "GET": _all(401), "POST": _all(401)},
    "stripe_standin:api_setup_intent": {
        "kwargs": lambda c: {"obj_id": "seti_matrix"},
        "GET": _all(401),
        "POST": _all(401),
    },
    "stripe_standin:api_payment_method": {
        "kwargs": lambda c: {"obj_id": "pm_matrix"},
        "GET": _all(401),
        "POST": _all(401),
    },
    "stripe_standin:api_payment_intents": {"GET": _all(401), "POST": _all(401)},
    "stripe_standin:api_dispute": {"kwargs": lambda c: {"obj_id": "dp_matrix"}, "GET": _all(401), "POST": _all(401)},
    # Any other /v1/ path: Stripe's "Unrecognized request URL" (404), key or not.
    "stripe_standin:api_not_found": {"kwargs": lambda c: {"rest": "v1/matrix"}, "GET": _all(404), "POST": _all(404)},
    # API keys page: owner/admins.
    "billing:api_keys": {"kwargs": lambda c: {"org_slug": c["org"].slug}, "GET": DECIDE, "POST": _all(405)},
    "billing:api_key_create": {
        "kwargs": lambda c: {"org_slug": c["org"].slug},
        "GET": _all(405),
        "POST": {**BAD_INPUT, "admin": 422, "owner": 422},
    },
    "billing:api_key_revoke": {
        "kwargs": lambda c: {"org_slug": c["org"].slug, "key_id": c["api_key"].pk},
        "GET": _all(405),
        "POST": ACT,
    },
    # REST API: Bearer keys only; a browser session is not enough (401). Schema and docs are public.
    "api-v1:api-root": {"GET": _all(404), "POST": _all(404)},
    # django-ninja's schema and docs views answer any method, read-only.
    "api-v1:openapi-json": {"GET": _all(200), "POST": _all(200)},
    "api-v1:openapi-view": {"GET": _all(200), "POST": _all(200)},
    "api-v1:me": {"GET": _all(401), "POST": _all(405)},
    "api-v1:org_balance": {"GET": _all(401), "POST": _all(405)},
    "api-v1:member_list": {"GET": _all(401), "POST": _all(405)},
    "api-v1:member_balance": {
        "kwargs": lambda c: {"member_id": c["target"].pk},
        "GET": _all(401),
        "POST": _all(405),
    },
    "api-v1:transaction_list": {"GET": _all(401), "POST": _all(405)},
    "api-v1:transfer_create": {"GET": _all(405), "POST": _all(401)},
    "api-v1:usage_charge": {"GET": _all(405), "POST": _all(401)},
    "api-v1:hold_create": {"GET": _all(405), "POST": _all(401)},
    "api-v1:hold_detail": {"kwargs": lambda c: {"hold_id": 1}, "GET": _all(401), "POST": _all(405)},
    "api-v1:hold_capture": {"kwargs": lambda c: {"hold_id": 1}, "GET": _all(405), "POST": _all(401)},
    "api-v1:hold_void": {"kwargs": lambda c: {"hold_id": 1}, "GET": _all(405), "POST": _all(401)},
    # Members, invitations, seats, member defaults: owner/admins; the invite link is public.
    "members:page": {"kwargs": lambda c: {"org_slug": c["org"].slug}, "GET": DECIDE, "POST": _all(405)},
    "members:seats": {"kwargs": lambda c: {"org_slug": c["org"].slug}, "GET": DECIDE, "POST": _all(405)},
    # An empty POST is bad input: 400 with the form's errors.
    "members:defaults": {"kwargs": lambda c: {"org_slug": c["org"].slug}, "GET": DECIDE, "POST": BAD_INPUT},
    "members:invite": {"kwargs": lambda c: {"org_slug": c["org"].slug}, "GET": _all(405), "POST": BAD_INPUT},
    "members:invite_bulk": {"kwargs": lambda c: {"org_slug": c["org"].slug}, "GET": _all(405), "POST": BAD_INPUT},
    "members:invite_cancel": {
        "kwargs": lambda c: {"org_slug": c["org"].slug, "invitation_id": c["invitation"].pk},
        "GET": _all(405),
        "POST": ACT,
    },
    "members:role": {"kwargs": _target, "GET": _all(405), "POST": ACT},
    "members:seat_assign": {"kwargs": _target, "GET": _all(405), "POST": ACT},
    "members:seat_revoke": {"kwargs": _target, "GET": _all(405), "POST": ACT},
    "members:remove": {"kwargs": _target, "GET": DECIDE, "POST": ACT},
    # Low-balance alerts: the org's thresholds are owner/admins' (an empty POST removes every alert: 302); a
    # person's own threshold on their Default wallet is theirs (there is no id to reach anyone else's).
    "alerts:org_settings": {"kwargs": lambda c: {"org_slug": c["org"].slug}, "GET": DECIDE, "POST": ACT},
    "alerts:member": {"GET": _signed_in(405), "POST": _signed_in(302)},
    # Scheduled allocations: owner/admins only (managers too are 403); another org's schedule is a 404.
    # Empty POSTs of the forms are bad input (400); the admin's delete goes first, so the owner finds none.
    "schedules:list": {"kwargs": lambda c: {"org_slug": c["org"].slug}, "GET": DECIDE, "POST": READ_ONLY},
    "schedules:new": {"kwargs": lambda c: {"org_slug": c["org"].slug}, "GET": DECIDE, "POST": BAD_INPUT},
    "schedules:detail": {"kwargs": _schedule, "GET": DECIDE, "POST": READ_ONLY},
    "schedules:edit": {"kwargs": _schedule, "GET": DECIDE, "POST": BAD_INPUT},
    "schedules:pause": {"kwargs": _schedule, "GET": READ_ONLY, "POST": ACT},
    "schedules:resume": {"kwargs": _schedule, "GET": READ_ONLY, "POST": ACT},
    "schedules:delete": {"kwargs": _schedule, "GET": READ_ONLY, "POST": {**ACT, "owner": 404}},
    "invite_accept": {
        "kwargs": lambda c: {"token": c["invite_token"]},
        "GET": _all(200),
        # Signed in as someone other than the invitee: refused (400); anonymous sees the sign-up form.
        "POST": {**_all(400), "anonymous": 200},
    },
}


def _patterns(resolver=None, prefix="", route=""):
    """(name or None, route) for every URL pattern outside Django admin."""
    resolver = resolver or get_resolver()
    for p in resolver.url_patterns:
        if isinstance(p, URLResolver):
            ns = f"{p.namespace}:" if p.namespace else ""
            if p.namespace == "admin":
                continue  # Django admin: covered by test_django_admin_requires_staff
            yield from _patterns(p, prefix + ns, route + str(p.pattern))
        elif isinstance(p, URLPattern):
            yield (prefix + p.name if p.name else None), route + str(p.pattern)


def test_every_url_has_an_entry():
    patterns = list(_patterns())
    unnamed = sorted(route for name, route in patterns if name is None)
    assert not unnamed, f"URL patterns without a name (the matrix can only walk named ones; name them): {unnamed}"
    routes_by_name = defaultdict(set)
    for name, route in patterns:
        routes_by_name[name].add(route)
    shared = {name: sorted(routes) for name, routes in routes_by_name.items() if len(routes) > 1}
    assert not shared, f"Names shared by several routes (only one of them would be walked): {shared}"
    missing = sorted(set(routes_by_name) - set(MATRIX))
    assert not missing, f"URLs without an access-matrix entry: {missing}"
    stale = sorted(set(MATRIX) - set(routes_by_name))
    assert not stale, f"Access-matrix entries for URLs that no longer exist: {stale}"


def test_the_url_walk_sees_unnamed_patterns():
    """The check above can fail: an unnamed route in a nested, namespaced URLconf is reported, not skipped."""
    from django.http import HttpResponse
    from django.urls import include, path

    def view(request):
        return HttpResponse()

    nested = ([path("named/", view, name="named"), path("unnamed/<int:pk>/", view)], "probe")
    resolver = URLResolver(RegexPattern(r"^"), [path("probe/", include(nested))])
    assert list(_patterns(resolver)) == [("probe:named", "probe/named/"), (None, "probe/unnamed/<int:pk>/")]


@pytest.fixture
def ctx(db):
    owner = UserFactory(email="matrix-owner@example.com")
    org = OrgFactory(name="Matrix Org", owner=owner)
    fund(org, 1_000)
    other = OrgFactory(name="Matrix Other", owner=UserFactory(email="matrix-other-owner@example.com"))
    users = {
        "owner": owner,
        "admin": MembershipFactory(org=org, role="admin").user,
        "manager": MembershipFactory(org=org, role="manager").user,
        "member": MembershipFactory(org=org, role="member").user,
        "other_admin": MembershipFactory(org=other, role="admin").user,
        "staff": UserFactory(email="matrix-staff@example.com", is_staff=True),
    }
    from credit_requests.services import credit_request_create

    credit_request = credit_request_create(org=org, user=users["member"], amount=50, reason="matrix").request
    from members.services import invitation_create, invitation_token
    from purchases.models import Purchase
    from wallets.models import CreditType
    from wallets.services import org_bulk_transfer
    from web.views.accounts import signup_token
    from web.views.api_keys import api_key_create

    target = MembershipFactory(org=org, role="member")
    bulk = org_bulk_transfer(
        org=org, credit_type=CreditType.objects.get(slug="org-allocated"), amount_per_member=1
    ).transfer
    invitation = invitation_create(org=org, email="matrix-invitee@example.com", role="member", actor=owner)
    return {
        "org": org,
        "other_org": other,
        "users": users,
        "credit_request": credit_request,
        "target": target,
        "bulk_transfer": bulk,
        "invitation": invitation,
        "purchase": Purchase.objects.create(org=org, created_by=owner, amount_cents=2500, credits=2500),
        "api_key": api_key_create(org=org, name="matrix", scope="read", actor=owner, request_key="matrix")[0],
        "invite_token": invitation_token(
            invitation_create(org=org, email="matrix-accept@example.com", role="member", actor=owner)
        ),
        "signup_token": signup_token(email="matrix-signup@example.com"),
        "schedule": make_schedule(org),
    }


def test_access_matrix(ctx):
    """One pass over the whole matrix; reports every mismatch at once."""
    from django.core.cache import cache

    mismatches = []
    for name, entry in MATRIX.items():
        url = reverse(name, kwargs=entry.get("kwargs", lambda c: {})(ctx))
        for method in ("GET", "POST"):
            for role in ROLES:
                cache.clear()  # rate limits must not leak between cells
                client = Client()
                if role != "anonymous":
                    client.force_login(ctx["users"][role])
                response = client.get(url) if method == "GET" else client.post(url, {})
                expected = entry[method][role]
                if response.status_code != expected:
                    mismatches.append(f"{method} {name} as {role}: {response.status_code}, expected {expected}")
    assert not mismatches, "\n".join(mismatches)


def test_django_admin_requires_staff(ctx):
    url = reverse("admin:index")
    assert Client().get(url).status_code == 302
    member = Client()
    member.force_login(ctx["users"]["member"])
    assert member.get(url).status_code == 302
    staff = Client()
    superuser = UserFactory(email="matrix-super@example.com", is_staff=True)
    superuser.is_superuser = True
    superuser.save()
    staff.force_login(superuser)
    assert staff.get(url).status_code == 200


def test_stripe_standin_api_answers_its_secret_key_not_a_browser_session(ctx):
    """The 401s above are the stand-in's auth, not a broken route: with the secret key the same URL answers."""
    from django.conf import settings

    url = reverse("stripe_standin:api_charge", kwargs={"obj_id": "ch_matrix"})
    staff = Client()
    staff.force_login(ctx["users"]["staff"])
    assert staff.get(url).status_code == 401
    assert Client().get(url, headers={"Authorization": "Bearer sk_live_not_a_test_key"}).status_code == 401
    assert Client().get(url, headers={"Authorization": "Bearer sk_test_not_the_configured_key"}).status_code == 401
    response = Client().get(url, headers={"Authorization": f"Bearer {settings.STRIPE_SECRET_KEY}"})
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "resource_missing"
