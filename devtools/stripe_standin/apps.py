from django.apps import AppConfig


class StripeStandinConfig(AppConfig):
    name = "devtools.stripe_standin"
    label = "stripe_standin"
    verbose_name = "Stripe stand-in (offline demo and tests)"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self):
        # The app's SDK calls to this server's stand-in are answered in-process, never by another worker of
        # this server (which may all be busy waiting for the same kind of call): see transport.py.
        from devtools.stripe_standin import transport

        transport.install()
