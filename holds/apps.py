from django.apps import AppConfig

from core import periodic


class HoldsConfig(AppConfig):
    """Holds: credits reserved for a running job, then captured as usage or released (docs/holds.md). The clock
    enqueues the expiry task every minute."""

    name = "holds"
    verbose_name = "Holds"

    def ready(self) -> None:
        from holds.tasks import expire_holds

        periodic.every(60, expire_holds)
