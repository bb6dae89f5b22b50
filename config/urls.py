from django.contrib import admin
from django.urls import include, path

from config.views import healthz

urlpatterns = [
    path("admin/", admin.site.urls),
    path("healthz", healthz, name="healthz"),
    path("", include("orgs.urls")),
    path("", include("wallets.urls")),
    path("", include("billing.urls")),
    path("", include("orgs.member_urls")),
]

from billing.api import api  # noqa: E402

urlpatterns += [path("api/v1/", api.urls)]

# The offline Stripe stand-in (only when STRIPE_STANDIN is on; never with real Stripe keys).
from django.conf import settings  # noqa: E402

if settings.STRIPE_STANDIN:
    urlpatterns += [path("stripe-standin/", include("billing.stripe_standin.urls"))]
