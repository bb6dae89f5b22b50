"""The scheduler: `manage.py clock` enqueues `run_due_schedules` every minute (SchedulesConfig.ready)."""

from dataclasses import asdict

from django.tasks import task

from schedules.services import run_due


@task()
def run_due_schedules() -> dict:
    """Apply every due period of every active schedule once, and the returns whose period has ended.
    Safe to run twice at once or late: each (schedule, period) is applied exactly once."""
    return asdict(run_due())
