from django.apps import AppConfig


class WalletsConfig(AppConfig):
    name = "wallets"
    verbose_name = "Wallets and ledger"

    def ready(self) -> None:
        from wallets import watches  # noqa: F401 - connects the balance-watch receiver to transfer_posted
