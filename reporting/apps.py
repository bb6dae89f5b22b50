from django.apps import AppConfig

from core import periodic


class ReportingConfig(AppConfig):
    """Reports on the ledger (Transactions, charts, usage). Its one table is the daily usage rollup that
    the Usage page reads (docs/usage.md#the-usage-page); the clock rolls finished days up every 15 minutes."""

    name = "reporting"
    verbose_name = "Reporting"

    def ready(self) -> None:
        from reporting.tasks import roll_up_usage

        periodic.every(15 * 60, roll_up_usage)
