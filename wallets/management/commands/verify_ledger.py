import time

from django.core.management.base import BaseCommand, CommandError

from wallets.models import Entry, Pocket, Transfer
from wallets.selectors import ledger_problems


class Command(BaseCommand):
    help = (
        "Recompute every pocket balance from its entries, check that each transfer balances per credit type "
        "and the books sum to zero, and that expiry travels with the credits (docs/expiry.md). Exits non-zero with "
        "a report if anything is off."
    )

    def handle(self, *args, **options):
        started = time.monotonic()
        problems = ledger_problems()
        elapsed = time.monotonic() - started
        if problems:
            lines = [f"  [{p.kind}] {p.detail}" for p in problems]
            raise CommandError("The ledger does NOT balance:\n" + "\n".join(lines))
        self.stdout.write(
            self.style.SUCCESS(
                f"Ledger OK: {Transfer.objects.count():,} transfers, {Entry.objects.count():,} entries, "
                f"{Pocket.objects.count():,} pockets; every balance matches its entries and the books sum to "
                f"zero ({elapsed:.2f}s)."
            )
        )
