from django.contrib import admin
from django.urls import include, path

urlpatterns = [
    path("admin/", admin.site.urls),
    path("", include("orgs.urls")),
    path("", include("wallets.urls")),
    path("", include("billing.urls")),
]

# The offline Stripe stand-in (only when STRIPE_STANDIN is on; never with real Stripe keys).
from django.conf import settings  # noqa: E402

if settings.STRIPE_STANDIN:
    urlpatterns += [path("stripe-standin/", include("billing.stripe_standin.urls"))]
