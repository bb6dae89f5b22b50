"""Periodic work: features register tasks with core.periodic.every; `manage.py clock --once` enqueues each."""

import io

import pytest
from django.core.management import call_command
from django.tasks import task

from core import periodic

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
