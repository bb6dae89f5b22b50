from django.apps import AppConfig


class StripeStandinConfig(AppConfig):
    name = "devtools.stripe_standin"
    label = "stripe_standin"
    verbose_name = "Stripe stand-in (offline demo and tests)"
    default_auto_field = "django.db.models.BigAutoField"
