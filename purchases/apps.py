from django.apps import AppConfig

from purchases import checks  # noqa: F401 - registers the Stripe configuration checks (no models imported)


class PurchasesConfig(AppConfig):
    name = "purchases"
    # The label this app had as `billing`: its tables (billing_purchase…) and migration history keep it.
    label = "billing"
    verbose_name = "Purchases (Stripe)"
