from django.urls import path

from billing import views

app_name = "billing"

urlpatterns = [
    path("orgs/<slug:org_slug>/billing/", views.billing_page, name="page"),
    path("orgs/<slug:org_slug>/billing/requests/", views.billing_page, {"tab": "requests"}, name="requests"),
    path("orgs/<slug:org_slug>/billing/balance/", views.balance_card, name="balance_card"),
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
