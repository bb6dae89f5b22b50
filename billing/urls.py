from django.urls import path

from billing import transfer_views, views

app_name = "billing"

urlpatterns = [
    path("orgs/<slug:org_slug>/billing/", views.billing_page, name="page"),
    path("orgs/<slug:org_slug>/billing/requests/", views.billing_page, {"tab": "requests"}, name="requests"),
    path("orgs/<slug:org_slug>/billing/balance/", views.balance_card, name="balance_card"),
    # Transfer dialog (issue 4)
    path("orgs/<slug:org_slug>/billing/transfer/", transfer_views.transfer_dialog, name="transfer"),
    path("orgs/<slug:org_slug>/billing/transfer/submit/", transfer_views.transfer_submit, name="transfer_submit"),
    path("orgs/<slug:org_slug>/billing/transfer/preview/", transfer_views.transfer_preview, name="transfer_preview"),
    path("orgs/<slug:org_slug>/billing/transfer/members/", transfer_views.transfer_members, name="transfer_members"),
]

# Credit requests (issue 6): members ask from their wallet; owners/admins decide on the Credit Requests tab.
from billing import request_views  # noqa: E402

urlpatterns += [
    path("orgs/<slug:org_slug>/billing/requests/list/", request_views.requests_list, name="requests_list"),
    path("orgs/<slug:org_slug>/billing/requests/history/", request_views.requests_history, name="requests_history"),
    path(
        "orgs/<slug:org_slug>/billing/requests/<int:request_id>/approve/",
        request_views.request_approve,
        name="request_approve",
    ),
    path(
        "orgs/<slug:org_slug>/billing/requests/<int:request_id>/reject/",
        request_views.request_reject,
        name="request_reject",
    ),
    path("orgs/<slug:org_slug>/requests/new/", request_views.request_new, name="request_new"),
    path("orgs/<slug:org_slug>/requests/<int:request_id>/cancel/", request_views.request_cancel, name="request_cancel"),
    path("orgs/<slug:org_slug>/requests/panel/", request_views.member_panel, name="member_requests_panel"),
]

from billing import transactions_views  # noqa: E402

urlpatterns += [
    path("orgs/<slug:org_slug>/transactions/", transactions_views.transactions_page, name="transactions"),
    path(
        "orgs/<slug:org_slug>/transactions/export.csv",
        transactions_views.transactions_export,
        name="transactions_export",
    ),
    path(
        "orgs/<slug:org_slug>/transactions/<int:transfer_id>/",
        transactions_views.transfer_detail,
        name="transfer_detail",
    ),
    path(
        "orgs/<slug:org_slug>/transactions/<int:transfer_id>/recipients/",
        transactions_views.transfer_recipients,
        name="transfer_recipients",
    ),
    path("orgs/<slug:org_slug>/billing/balance-chart/", transactions_views.balance_chart, name="balance_chart"),
]

from billing import api_keys  # noqa: E402

urlpatterns += [
    path("orgs/<slug:org_slug>/settings/api-keys/", api_keys.api_keys_page, name="api_keys"),
    path("orgs/<slug:org_slug>/settings/api-keys/new/", api_keys.api_key_create_view, name="api_key_create"),
    path(
        "orgs/<slug:org_slug>/settings/api-keys/<int:key_id>/revoke/",
        api_keys.api_key_revoke_view,
        name="api_key_revoke",
    ),
]

# Buy Credits (Stripe Checkout) and the Stripe webhook.
from billing import purchase_views  # noqa: E402

urlpatterns += [
    path("orgs/<slug:org_slug>/billing/buy/", purchase_views.buy_credits, name="buy"),
    path("orgs/<slug:org_slug>/billing/buy/preview/", purchase_views.buy_preview, name="buy_preview"),
    path("orgs/<slug:org_slug>/billing/purchases/", purchase_views.purchase_list, name="purchases"),
    path("orgs/<slug:org_slug>/billing/purchases/<int:purchase_id>/", purchase_views.purchase_status, name="purchase"),
    path(
        "orgs/<slug:org_slug>/billing/purchases/<int:purchase_id>/cancelled/",
        purchase_views.purchase_cancel,
        name="purchase_cancel",
    ),
    path("stripe/webhook/", purchase_views.stripe_webhook, name="stripe_webhook"),
]
