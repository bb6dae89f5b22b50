"""Periodic work: features register tasks with core.periodic.every; `manage.py clock --once` enqueues each."""

import datetime
import io

import pytest
from django.core.management import call_command
from django.tasks import task

from core import periodic
from core.management.commands.clock import Command

RAN: list[str] = []


@task()
def tick() -> None:
    RAN.append("tick")


@pytest.fixture
def registry():
    saved = dict(periodic._registry)
    yield periodic._registry
    periodic._registry.clear()
    periodic._registry.update(saved)


def test_clock_once_enqueues_every_registered_task(registry, db):
    RAN.clear()
    periodic.every(60, tick)
    names = [p.name for p in periodic.registered()]
    assert "tests.core.test_periodic.tick" in names
    out = io.StringIO()
    call_command("clock", once=True, stdout=out)  # the immediate backend runs what is enqueued
    assert RAN == ["tick"]
    assert f"Enqueued {len(names)} periodic task(s)." in out.getvalue()


def test_registering_twice_keeps_one_entry_and_rejects_nonsense(registry):
    periodic.every(60, tick)
    periodic.every(30, tick)
    entries = [p for p in periodic.registered() if p.task is tick]
    assert [p.every_seconds for p in entries] == [30]
    with pytest.raises(ValueError):
        periodic.every(0, tick)


def test_next_due_is_the_next_multiple_of_the_interval_on_the_local_wall_clock():
    midnight = datetime.datetime(2026, 12, 3, tzinfo=datetime.UTC).timestamp()
    # hourly: the top of the next hour, whatever the minute; exactly on the hour, the hour after
    assert periodic.next_due(midnight - 1, 3600) == midnight
    assert periodic.next_due(midnight - 3599, 3600) == midnight
    assert periodic.next_due(midnight, 3600) == midnight + 3600
    assert periodic.next_due(midnight + 0.5, 60) == midnight + 60
    assert periodic.next_due(midnight + 301, 300) == midnight + 600
    # daily in a zone 5 h 30 ahead of UTC: local midnight is 18:30 UTC the day before
    ist = 5.5 * 3600
    assert periodic.next_due(midnight, 86400, ist) == midnight + 86400 - ist
    assert periodic.next_due(midnight - ist - 1, 86400, ist) == midnight - ist


def test_utc_offset_follows_time_zone(settings):
    settings.TIME_ZONE = "UTC"
    assert periodic.utc_offset_seconds(0) == 0
    settings.TIME_ZONE = "Asia/Kolkata"
    assert periodic.utc_offset_seconds(0) == 5.5 * 3600
    settings.TIME_ZONE = "America/New_York"  # DST: -5 h in January, -4 h in July
    assert periodic.utc_offset_seconds(datetime.datetime(2026, 1, 15, tzinfo=datetime.UTC).timestamp()) == -5 * 3600
    assert periodic.utc_offset_seconds(datetime.datetime(2026, 7, 15, tzinfo=datetime.UTC).timestamp()) == -4 * 3600


def test_the_clock_enqueues_at_start_then_on_the_hour_so_expiry_runs_at_midnight(registry, db):
    """The clock loop's step: every task at start, then an hourly one at the top of each hour (the daily expiry at
    midnight, not up to an hour after) and a minutely one each minute, never twice for one instant."""
    RAN.clear()
    periodic._registry.clear()
    periodic.every(3600, tick)
    tasks = periodic.registered()
    due = {p.name: 0.0 for p in tasks}
    start = datetime.datetime(2026, 12, 3, 23, 17, 42, tzinfo=datetime.UTC).timestamp()
    assert Command.tick(tasks, due, start) == ["tests.core.test_periodic.tick"]  # at start: catch up
    midnight = datetime.datetime(2026, 12, 4, tzinfo=datetime.UTC).timestamp()
    assert due["tests.core.test_periodic.tick"] == midnight
    assert Command.tick(tasks, due, midnight - 1) == []
    assert Command.tick(tasks, due, midnight + 0.3) == ["tests.core.test_periodic.tick"]
    assert Command.tick(tasks, due, midnight + 1.3) == []  # the next second of the loop: not again
    assert due["tests.core.test_periodic.tick"] == midnight + 3600
    assert RAN == ["tick", "tick"]
