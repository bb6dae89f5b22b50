from django.apps import AppConfig

from core import periodic


class ExpiryConfig(AppConfig):
    """Credits that expire: the daily expiry run and the emails 7 days before (docs/expiry.md)."""

    name = "expiry"
    verbose_name = "Credit expiry"

    def ready(self) -> None:
        # Imported here: they import the models, which are loaded only now.
        from expiry.tasks import announce_expiring_credits, expire_due_credits

        # Hourly, on the hour (the clock keeps to the wall clock): the expiry runs at midnight; both are keyed by the
        # day, so the repeats in between are no-ops, and a clock or worker that was down catches up when it starts.
        periodic.every(60 * 60, expire_due_credits)
        periodic.every(60 * 60, announce_expiring_credits)
