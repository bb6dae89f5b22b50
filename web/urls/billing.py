from django.urls import path

from web.views import api_keys, expiry, purchases, transactions
from web.views import billing as views
from web.views import credit_requests as request_views
from web.views import transfers as transfer_views

app_name = "billing"

urlpatterns = [
    path("orgs/<slug:org_slug>/billing/", views.billing_page, name="page"),
    path("orgs/<slug:org_slug>/billing/requests/", views.billing_page, {"tab": "requests"}, name="requests"),
    path("orgs/<slug:org_slug>/billing/balance/", views.balance_card, name="balance_card"),
    path("orgs/<slug:org_slug>/billing/expiry/", expiry.expiry_settings, name="expiry_settings"),
    path("orgs/<slug:org_slug>/billing/transfer/", transfer_views.transfer_dialog, name="transfer"),
    path("orgs/<slug:org_slug>/billing/transfer/submit/", transfer_views.transfer_submit, name="transfer_submit"),
    path("orgs/<slug:org_slug>/billing/transfer/preview/", transfer_views.transfer_preview, name="transfer_preview"),
    path("orgs/<slug:org_slug>/billing/transfer/members/", transfer_views.transfer_members, name="transfer_members"),
]


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


urlpatterns += [
    path("orgs/<slug:org_slug>/transactions/", transactions.transactions_page, name="transactions"),
    path(
        "orgs/<slug:org_slug>/transactions/export.csv",
        transactions.transactions_export,
        name="transactions_export",
    ),
    path(
        "orgs/<slug:org_slug>/transactions/<int:transfer_id>/",
        transactions.transfer_detail,
        name="transfer_detail",
    ),
    path(
        "orgs/<slug:org_slug>/transactions/<int:transfer_id>/recipients/",
        transactions.transfer_recipients,
        name="transfer_recipients",
    ),
    path("orgs/<slug:org_slug>/billing/balance-chart/", transactions.balance_chart, name="balance_chart"),
]


urlpatterns += [
    path("orgs/<slug:org_slug>/settings/api-keys/", api_keys.api_keys_page, name="api_keys"),
    path("orgs/<slug:org_slug>/settings/api-keys/new/", api_keys.api_key_create_view, name="api_key_create"),
    path(
        "orgs/<slug:org_slug>/settings/api-keys/<int:key_id>/revoke/",
        api_keys.api_key_revoke_view,
        name="api_key_revoke",
    ),
]


urlpatterns += [
    path("orgs/<slug:org_slug>/billing/buy/", purchases.buy_credits, name="buy"),
    path("orgs/<slug:org_slug>/billing/buy/preview/", purchases.buy_preview, name="buy_preview"),
    path("orgs/<slug:org_slug>/billing/purchases/", purchases.purchase_list, name="purchases"),
    path("orgs/<slug:org_slug>/billing/purchases/<int:purchase_id>/", purchases.purchase_status, name="purchase"),
    path(
        "orgs/<slug:org_slug>/billing/purchases/<int:purchase_id>/cancelled/",
        purchases.purchase_cancel,
        name="purchase_cancel",
    ),
    path("stripe/webhook/", purchases.stripe_webhook, name="stripe_webhook"),
    path(
        "orgs/<slug:org_slug>/billing/purchases/<int:purchase_id>/receipt/",
        purchases.purchase_receipt,
        name="purchase_receipt",
    ),
]
