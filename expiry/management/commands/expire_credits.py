import datetime

from django.core.management.base import BaseCommand, CommandError

from expiry.services import InvalidExpiryDay, run_expiry


class Command(BaseCommand):
    help = (
        "Expire the credits whose expiry day is today (or --day, a past day) or earlier: one Expiry transfer per "
        "org into the Expired account. Safe to run again: what expired is gone, a repeat finds nothing."
    )

    def add_arguments(self, parser):
        parser.add_argument("--day", help="the day to expire up to, YYYY-MM-DD (default today; not after today)")

    def handle(self, *args, **options):
        day = None
        if options["day"]:
            try:
                day = datetime.date.fromisoformat(options["day"])
            except ValueError:
                raise CommandError(f"--day {options['day']!r} is not a date (YYYY-MM-DD).") from None
        try:
            run = run_expiry(day)
        except InvalidExpiryDay as exc:
            raise CommandError(exc.message) from None
        self.stdout.write(
            f"Expired {run.credits:,} credits in {run.pockets:,} pockets of {run.orgs:,} orgs "
            f"({run.transfers:,} transfers) for {run.day:%Y-%m-%d}."
            + (f" {run.busy} org(s) busy, left for the next run." if run.busy else "")
        )
