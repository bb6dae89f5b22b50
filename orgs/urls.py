from django.urls import path

from orgs import member_views, views

urlpatterns = [
    path("", views.home, name="home"),
    path("accounts/login/", views.SignInView.as_view(), name="login"),
    path("accounts/logout/", views.SignOutView.as_view(), name="logout"),
    path("accounts/signup/", views.signup, name="signup"),
    path("workspace/switch/", views.workspace_switch, name="workspace_switch"),
]

urlpatterns += [path("invite/<str:token>/", member_views.invite_accept, name="invite_accept")]
