from django.contrib import admin
from django.urls import include, path

from config.views import healthz

urlpatterns = [
    path("admin/", admin.site.urls),
    path("healthz", healthz, name="healthz"),
    path("", include("web.urls.accounts")),
    path("", include("web.urls.wallet")),
    path("", include("web.urls.billing")),
    path("", include("web.urls.members")),
]

from api.endpoints import api  # noqa: E402

urlpatterns += [path("api/v1/", api.urls)]

# The offline Stripe stand-in (only when STRIPE_STANDIN is on; never with real Stripe keys).
from django.conf import settings  # noqa: E402

if settings.STRIPE_STANDIN:
    urlpatterns += [path("stripe-standin/", include("devtools.stripe_standin.urls"))]
