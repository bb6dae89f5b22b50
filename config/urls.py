from django.conf import settings
from django.contrib import admin
from django.urls import include, path, re_path

from api.app import api, unknown_endpoint
from config.views import MOVED_ADMIN, healthz, moved_admin

urlpatterns = [
    # The API first: its paths are the hottest, and no page's path starts with api/ (resolving /api/v1/usage past
    # every page's pattern took 0.15 ms of each request).
    path("api/v1/", api.urls),
    # After the API, so it gets only the /api/ paths that no endpoint matched.
    re_path(r"^api/(?P<rest>.*)$", unknown_endpoint, name="api_unknown"),
    re_path(rf"^admin/billing/(?P<model>{'|'.join(MOVED_ADMIN)})/(?P<rest>.*)$", moved_admin, name="admin_moved"),
    path("admin/", admin.site.urls),
    path("healthz", healthz, name="healthz"),
    path("", include("web.urls.accounts")),
    path("", include("web.urls.wallet")),
    path("", include("web.urls.billing")),
    path("", include("web.urls.auto_top_up")),
    path("", include("web.urls.members")),
    path("", include("web.urls.schedules")),
    path("", include("web.urls.usage")),
    path("", include("web.urls.alerts")),
]

# The offline Stripe stand-in (only when STRIPE_STANDIN is on; never with real Stripe keys).
if settings.STRIPE_STANDIN:
    urlpatterns += [path("stripe-standin/", include("devtools.stripe_standin.urls"))]
