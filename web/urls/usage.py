from django.urls import path

from web.views import usage as views

app_name = "usage"

urlpatterns = [
    path("orgs/<slug:org_slug>/billing/usage/", views.usage_view, name="page"),
    path("orgs/<slug:org_slug>/billing/usage/export.csv", views.usage_export, name="export"),
]
