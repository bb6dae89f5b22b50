"""`manage.py check --deploy`: Stripe must be configured for real before the app takes real money."""

from django.conf import settings
from django.core import checks


@checks.register(checks.Tags.security, deploy=True)
def stripe_configuration(app_configs=None, **kwargs):
    problems = []
    if settings.STRIPE_STANDIN:
        problems.append(
            checks.Warning(
                "The Stripe stand-in is on (no STRIPE_SECRET_KEY): anyone can 'pay' on its checkout page for credits.",
                hint="Set STRIPE_SECRET_KEY and STRIPE_WEBHOOK_SECRET (or STRIPE_STANDIN=false) in production.",
                id="billing.W001",
            )
        )
    elif not settings.STRIPE_WEBHOOK_SECRET:
        problems.append(
            checks.Error(
                "STRIPE_WEBHOOK_SECRET is empty: every Stripe webhook is refused, so no purchase gets its credits.",
                hint="Copy the endpoint's signing secret (whsec_...) from the Stripe dashboard.",
                id="billing.E001",
            )
        )
    return problems
