from django.urls import path

from web.views import wallet as views

urlpatterns = [
    path("wallet/", views.wallet_page, name="wallet"),
]
