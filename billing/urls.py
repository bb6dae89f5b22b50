from django.urls import path

from billing import views

app_name = "billing"

urlpatterns = [
    path("orgs/<slug:org_slug>/billing/", views.billing_page, name="page"),
    path("orgs/<slug:org_slug>/billing/requests/", views.billing_page, {"tab": "requests"}, name="requests"),
    path("orgs/<slug:org_slug>/billing/balance/", views.balance_card, name="balance_card"),
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
