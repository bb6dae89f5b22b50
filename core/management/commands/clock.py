"""`manage.py clock`: enqueue the registered periodic tasks (core/periodic.py) when they are due: each once at
start, then at the wall clock's multiples of its interval (`periodic.next_due`: hourly tasks on the hour).

`make run` starts it beside `manage.py db_worker`. `--once` enqueues every registered task once and exits
(for cron, or a test)."""

import signal
import time

from django.core.management.base import BaseCommand

from core.periodic import next_due, registered, utc_offset_seconds


class Command(BaseCommand):
    help = "Enqueue the periodic tasks (alerts, schedules, hold expiry...) when they are due; the worker runs them."

    def add_arguments(self, parser):
        parser.add_argument("--once", action="store_true", help="Enqueue every periodic task once, then exit.")

    def handle(self, *args, once: bool = False, **options):
        tasks = registered()
        if once:
            for periodic in tasks:
                periodic.task.enqueue()
            self.stdout.write(f"Enqueued {len(tasks)} periodic task(s).")
            return
        running = True

        def stop(*_):
            nonlocal running
            running = False

        signal.signal(signal.SIGTERM, stop)
        signal.signal(signal.SIGINT, stop)
        self.stdout.write("Clock: " + ", ".join(f"{p.name} every {p.every_seconds}s" for p in tasks))
        due = dict.fromkeys((p.name for p in tasks), 0.0)  # each once now, to catch up
        while running:
            self.tick(tasks, due, time.time())
            time.sleep(1)

    @staticmethod
    def tick(tasks, due: dict[str, float], now: float) -> list[str]:
        """Enqueue the tasks due at `now` (a Unix time) and set their next instant; returns their names. The wall
        clock, not a monotonic one: the instants are the local clock's (a clock stopped by a suspended machine
        enqueues once on waking, then keeps to the hour)."""
        enqueued = []
        for periodic in tasks:
            if now >= due[periodic.name]:
                periodic.task.enqueue()
                enqueued.append(periodic.name)
                due[periodic.name] = next_due(now, periodic.every_seconds, utc_offset_seconds(now))
        return enqueued
