from django.apps import AppConfig


class SchedulesConfig(AppConfig):
    """Scheduled allocations: credits handed to members on a cadence (docs/schedules.md)."""

    name = "schedules"
    verbose_name = "Scheduled allocations"
