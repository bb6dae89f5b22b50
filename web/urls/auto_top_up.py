from django.urls import path

from web.views import auto_top_up as views

app_name = "auto_top_up"

urlpatterns = [
    path("orgs/<slug:org_slug>/billing/auto-top-up/", views.auto_top_up_page, name="page"),
    path("orgs/<slug:org_slug>/billing/auto-top-up/summary/", views.auto_top_up_summary, name="summary"),
    path("orgs/<slug:org_slug>/billing/auto-top-up/card/", views.card_setup, name="card_setup"),
    path("orgs/<slug:org_slug>/billing/auto-top-up/card/done/", views.card_done, name="card_done"),
]
