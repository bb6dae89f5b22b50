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
