from django.urls import path, re_path

from billing.stripe_standin import views

app_name = "stripe_standin"

urlpatterns = [
    path("", views.dashboard, name="home"),
    path("checkout/<str:session_id>/", views.checkout_page, name="checkout"),
    path("v1/checkout/sessions", views.sessions),
    path("v1/checkout/sessions/<str:session_id>", views.session_detail),
    path("v1/checkout/sessions/<str:session_id>/expire", views.session_expire),
    path("v1/refunds", views.refunds),
    path("v1/refunds/<str:obj_id>", views.refund_detail),
    path("v1/charges/<str:obj_id>", views.charge_detail),
    path("v1/payment_intents/<str:obj_id>", views.payment_intent_detail),
    path("v1/disputes/<str:obj_id>", views.dispute_detail),
    re_path(r"^(?P<rest>v1/.*)$", views.not_found),
]
