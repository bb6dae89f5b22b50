from django.contrib import admin
from django.urls import include, path

urlpatterns = [
    path("admin/", admin.site.urls),
    path("", include("orgs.urls")),
    path("", include("wallets.urls")),
    path("", include("billing.urls")),
    path("", include("orgs.member_urls")),
]
