"""`manage.py check --deploy`: Stripe must be configured for real before the app takes real money."""

from django.conf import settings
from django.core import checks


@checks.register(checks.Tags.security, deploy=True)
def stripe_configuration(app_configs=None, **kwargs):
    problems = []
    if settings.STRIPE_STANDIN:
        problems.append(
            checks.Error(
                "The Stripe stand-in is on: /stripe-standin/ is mounted, and anyone can 'pay', refund or dispute "
                "on it, and get credits for nothing.",
                hint="Set STRIPE_SECRET_KEY and STRIPE_WEBHOOK_SECRET, and leave STRIPE_STANDIN unset (or false).",
                id="billing.E002",
            )
        )
        return problems
    if not settings.STRIPE_SECRET_KEY:
        problems.append(
            checks.Error(
                "STRIPE_SECRET_KEY is empty: Buy Credits cannot start a checkout.",
                hint="Set STRIPE_SECRET_KEY to the account's secret key (sk_live_...).",
                id="billing.E003",
            )
        )
    if not settings.STRIPE_WEBHOOK_SECRET:
        problems.append(
            checks.Error(
                "STRIPE_WEBHOOK_SECRET is empty: every Stripe webhook is refused, so no purchase gets its credits.",
                hint="Copy the endpoint's signing secret (whsec_...) from the Stripe dashboard.",
                id="billing.E001",
            )
        )
    return problems
