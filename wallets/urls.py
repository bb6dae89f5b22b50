from django.urls import path

from wallets import views

urlpatterns = [
    path("wallet/", views.wallet_page, name="wallet"),
]
