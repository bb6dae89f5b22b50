from django.apps import AppConfig

from core import periodic


class AlertsConfig(AppConfig):
    """Low-balance alerts on org and member wallets (docs/alerts.md)."""

    name = "alerts"
    verbose_name = "Low-balance alerts"

    def ready(self) -> None:
        # Imported here: they import the models, which are loaded only now.
        from alerts import receivers
        from alerts.tasks import sweep_alerts

        receivers.connect()
        periodic.every(5 * 60, sweep_alerts)
