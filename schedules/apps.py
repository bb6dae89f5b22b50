from django.apps import AppConfig

from core import periodic


class SchedulesConfig(AppConfig):
    """Scheduled allocations: credits handed to members on a cadence (docs/schedules.md)."""

    name = "schedules"
    verbose_name = "Scheduled allocations"

    def ready(self) -> None:
        from schedules.tasks import run_due_schedules

        periodic.every(60, run_due_schedules)
