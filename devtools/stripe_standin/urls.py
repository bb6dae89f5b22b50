from django.urls import path, re_path

from devtools.stripe_standin import views

app_name = "stripe_standin"

# Every route has a name, so the access matrix (tests/test_access_matrix.py) walks it.
urlpatterns = [
    path("", views.dashboard, name="home"),
    path("checkout/<str:session_id>/", views.checkout_page, name="checkout"),
    path("v1/checkout/sessions", views.sessions, name="api_sessions"),
    path("v1/checkout/sessions/<str:session_id>", views.session_detail, name="api_session"),
    path("v1/checkout/sessions/<str:session_id>/expire", views.session_expire, name="api_session_expire"),
    path("v1/refunds", views.refunds, name="api_refunds"),
    path("v1/refunds/<str:obj_id>", views.refund_detail, name="api_refund"),
    path("v1/charges/<str:obj_id>", views.charge_detail, name="api_charge"),
    path("v1/payment_intents/<str:obj_id>", views.payment_intent_detail, name="api_payment_intent"),
    path("v1/disputes/<str:obj_id>", views.dispute_detail, name="api_dispute"),
    # Saved cards (auto top-up): customers, setup intents, payment methods, off-session payment intents.
    path("v1/customers", views.customers, name="api_customers"),
    path("v1/customers/<str:obj_id>", views.customer_detail, name="api_customer"),
    path("v1/setup_intents/<str:obj_id>", views.setup_intent_detail, name="api_setup_intent"),
    path("v1/payment_methods/<str:obj_id>", views.payment_method_detail, name="api_payment_method"),
    path("v1/payment_intents", views.payment_intents, name="api_payment_intents"),
    re_path(r"^(?P<rest>v1/.*)$", views.not_found, name="api_not_found"),
]
