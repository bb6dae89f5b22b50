"""`manage.py clock`: enqueue the registered periodic tasks (core/periodic.py) when they are due.

`make run` starts it beside `manage.py db_worker`. `--once` enqueues every registered task once and exits
(for cron, or a test)."""

import signal
import time

from django.core.management.base import BaseCommand

from core.periodic import registered


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
        due = dict.fromkeys((p.name for p in tasks), 0.0)
        while running:
            now = time.monotonic()
            for periodic in tasks:
                if now >= due[periodic.name]:
                    periodic.task.enqueue()
                    due[periodic.name] = now + periodic.every_seconds
            time.sleep(1)
