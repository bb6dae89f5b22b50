from django.apps import AppConfig

from core import periodic
from purchases import checks  # noqa: F401 - registers the Stripe configuration checks (no models imported)


class PurchasesConfig(AppConfig):
    name = "purchases"
    # The label this app had as `billing`: its tables (billing_purchase…) and migration history keep it.
    label = "billing"
    verbose_name = "Purchases (Stripe)"

    def ready(self) -> None:
        # AppConfig.ready: models (and so these modules) can be imported only now.
        from purchases.auto_top_up import on_balance_crossed, sweep_auto_top_ups
        from wallets.watches import balance_crossed

        balance_crossed.connect(on_balance_crossed, dispatch_uid="purchases.auto_top_up")
        periodic.every(5 * 60, sweep_auto_top_ups)
