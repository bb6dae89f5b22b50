from django.apps import AppConfig


class ExpiryConfig(AppConfig):
    """Credits that expire: the daily expiry run and the emails 7 days before (docs/expiry.md)."""

    name = "expiry"
    verbose_name = "Credit expiry"

    def ready(self) -> None:
        # Imported here: they import the models, which are loaded only now.
        from core import periodic
        from expiry.tasks import announce_expiring_credits, expire_due_credits

        # Hourly: both are keyed by the day, so the repeats in between are no-ops, and a clock or worker that was
        # down at midnight catches up within the hour.
        periodic.every(60 * 60, expire_due_credits)
        periodic.every(60 * 60, announce_expiring_credits)
