"""How every page, email and message says an amount: credits with their dollar value at CREDITS_PER_USD
("1,250 credits ($12.50)"). One place, so no two pages can round or sign differently. Templates use the
`money` library (core/templatetags/money.py): `{{ amount|credits_usd }}`, `{{ amount|usd }}`."""

from decimal import ROUND_HALF_UP, Decimal

from django.conf import settings


def dollars(credits: int | None) -> str:
    """ "$12.50" for 1,250 credits at 100 credits per dollar; "-$3.00" for -300; cents rounded half up."""
    value = (Decimal(credits or 0) / Decimal(settings.CREDITS_PER_USD)).quantize(Decimal("0.01"), ROUND_HALF_UP)
    return f"-${-value:,.2f}" if value < 0 else f"${value:,.2f}"


def credits_and_dollars(credits: int | None) -> str:
    """ "1,250 credits ($12.50)"; "1 credit ($0.01)"."""
    amount = credits or 0
    return f"{amount:,} credit{'' if abs(amount) == 1 else 's'} ({dollars(amount)})"
