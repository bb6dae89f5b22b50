"""Periodic work: a feature package registers a task to be enqueued every N seconds, and `manage.py clock`
(started by `make run` beside the task worker) enqueues each one when it is due; the worker runs it.

core sits below the features, so it never imports them: each feature registers its own tasks in its
AppConfig.ready(). A periodic task must be safe to run twice at once and late (exactly-once comes from the
task's own keys and unique constraints, never from there being one clock): two clocks, a slow worker or a
clock restarted mid-minute only enqueue it more often.

The clock enqueues every task once when it starts (to catch up), then on the wall clock's multiples of its
interval in `TIME_ZONE` (`next_due`): an hourly task at the top of each hour, so the daily expiry runs at
midnight, not up to an hour later, and two clocks enqueue at the same instants.
"""

from __future__ import annotations

import datetime
import math
from dataclasses import dataclass

from django.tasks import Task
from django.utils import timezone


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


def next_due(now: float, every_seconds: int, utc_offset_seconds: float = 0.0) -> float:
    """The first instant strictly after `now` (a Unix time) that is a whole multiple of `every_seconds` on the local
    wall clock (UTC shifted by `utc_offset_seconds`): every 3600 s is the top of each local hour, every 86400 s is
    local midnight, every 300 s is :00, :05, :10..."""
    local = now + utc_offset_seconds
    return (math.floor(local / every_seconds) + 1) * every_seconds - utc_offset_seconds


def utc_offset_seconds(at: float) -> float:
    """`TIME_ZONE`'s offset from UTC at the Unix time `at`, in seconds (0 for UTC)."""
    moment = datetime.datetime.fromtimestamp(at, tz=datetime.UTC)
    offset = timezone.localtime(moment).utcoffset()
    return offset.total_seconds() if offset else 0.0
