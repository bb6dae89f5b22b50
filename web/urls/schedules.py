from django.urls import path

from web.views import schedules as views

app_name = "schedules"

urlpatterns = [
    path("orgs/<slug:org_slug>/billing/schedules/", views.schedules_page, name="list"),
    path("orgs/<slug:org_slug>/billing/schedules/new/", views.schedule_new, name="new"),
    path("orgs/<slug:org_slug>/billing/schedules/<int:schedule_id>/", views.schedule_detail, name="detail"),
    path("orgs/<slug:org_slug>/billing/schedules/<int:schedule_id>/edit/", views.schedule_edit, name="edit"),
    path("orgs/<slug:org_slug>/billing/schedules/<int:schedule_id>/pause/", views.schedule_pause_view, name="pause"),
    path("orgs/<slug:org_slug>/billing/schedules/<int:schedule_id>/resume/", views.schedule_resume_view, name="resume"),
    path("orgs/<slug:org_slug>/billing/schedules/<int:schedule_id>/delete/", views.schedule_delete_view, name="delete"),
]
