from django.apps import AppConfig


class HoldsConfig(AppConfig):
    """Holds: credits reserved for a running job, then captured as usage or released (docs/holds.md)."""

    name = "holds"
    verbose_name = "Holds"
