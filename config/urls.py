from django.contrib import admin
from django.urls import include, path

urlpatterns = [
    path("admin/", admin.site.urls),
    path("", include("orgs.urls")),
    path("", include("wallets.urls")),
    path("", include("billing.urls")),
]

from billing.api import api  # noqa: E402

urlpatterns += [path("api/v1/", api.urls)]
