from django.urls import path

from billing import views

app_name = "billing"

urlpatterns = [
    path("orgs/<slug:org_slug>/billing/", views.billing_page, name="page"),
    path("orgs/<slug:org_slug>/billing/requests/", views.billing_page, {"tab": "requests"}, name="requests"),
    path("orgs/<slug:org_slug>/billing/balance/", views.balance_card, name="balance_card"),
]
