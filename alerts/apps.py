from django.apps import AppConfig


class AlertsConfig(AppConfig):
    """Low-balance alerts on org and member wallets (docs/alerts.md)."""

    name = "alerts"
    verbose_name = "Low-balance alerts"
