"""Periodic work: a feature package registers a task to be enqueued every N seconds, and `manage.py clock`
(started by `make run` beside the task worker) enqueues each one when it is due; the worker runs it.

core sits below the features, so it never imports them: each feature registers its own tasks in its
AppConfig.ready(). A periodic task must be safe to run twice at once and late (exactly-once comes from the
task's own keys and unique constraints, never from there being one clock): two clocks, a slow worker or a
clock restarted mid-minute only enqueue it more often.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.tasks import Task


@dataclass(frozen=True, slots=True)
class PeriodicTask:
    task: Task
    every_seconds: int

    @property
    def name(self) -> str:
        return self.task.module_path


_registry: dict[str, PeriodicTask] = {}


def every(seconds: int, task: Task) -> None:
    """Enqueue `task` (no arguments) every `seconds` seconds from `manage.py clock`."""
    if seconds < 1:
        raise ValueError("A periodic task runs at most every second.")
    periodic = PeriodicTask(task, seconds)
    _registry[periodic.name] = periodic


def registered() -> list[PeriodicTask]:
    return sorted(_registry.values(), key=lambda p: p.name)
