from django.apps import AppConfig


class HoldsConfig(AppConfig):
    """Holds: credits reserved for a running job, then captured as usage or released (docs/holds.md). The clock
    enqueues the expiry task every minute."""

    name = "holds"
    verbose_name = "Holds"

    def ready(self) -> None:
        from core import periodic
        from holds.tasks import expire_holds

        periodic.every(60, expire_holds)
