from django.urls import path

from billing import views

app_name = "billing"

urlpatterns = [
    path("orgs/<slug:org_slug>/billing/", views.billing_page, name="page"),
    path("orgs/<slug:org_slug>/billing/requests/", views.billing_page, {"tab": "requests"}, name="requests"),
    path("orgs/<slug:org_slug>/billing/balance/", views.balance_card, name="balance_card"),
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
        "orgs/<slug:org_slug>/transactions/<int:transfer_id>/recipients/",
        transactions_views.transfer_recipients,
        name="transfer_recipients",
    ),
    path("orgs/<slug:org_slug>/billing/balance-chart/", transactions_views.balance_chart, name="balance_chart"),
]
