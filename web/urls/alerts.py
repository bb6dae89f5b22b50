from django.urls import path

from web.views import alerts as views

app_name = "alerts"

urlpatterns = [
    path("orgs/<slug:org_slug>/billing/alerts/", views.org_settings, name="org_settings"),
    path("wallet/alert/", views.member_alert, name="member"),
]
