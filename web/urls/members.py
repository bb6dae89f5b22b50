from django.urls import path

from web.views import members as views

app_name = "members"

urlpatterns = [
    path("orgs/<slug:org_slug>/members/", views.members_page, name="page"),
    path("orgs/<slug:org_slug>/members/invite/", views.member_invite, name="invite"),
    path("orgs/<slug:org_slug>/members/invite/bulk/", views.member_invite_bulk, name="invite_bulk"),
    path("orgs/<slug:org_slug>/members/<int:membership_id>/role/", views.member_role, name="role"),
    path("orgs/<slug:org_slug>/members/<int:membership_id>/remove/", views.member_remove, name="remove"),
    path("orgs/<slug:org_slug>/members/<int:membership_id>/seat/assign/", views.seat_assign, name="seat_assign"),
    path("orgs/<slug:org_slug>/members/<int:membership_id>/seat/revoke/", views.seat_revoke, name="seat_revoke"),
    path("orgs/<slug:org_slug>/invitations/<int:invitation_id>/cancel/", views.invitation_cancel, name="invite_cancel"),
    path("orgs/<slug:org_slug>/seats/", views.seats_page, name="seats"),
    path("orgs/<slug:org_slug>/settings/member-defaults/", views.member_defaults, name="defaults"),
]
