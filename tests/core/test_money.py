"""Every page, email and message says amounts the same way: credits, then dollars at CREDITS_PER_USD."""

from django.template import Context, Template

from core.money import credits_and_dollars, dollars


def test_dollars_at_credits_per_usd(settings):
    assert dollars(1_250) == "$12.50"
    assert dollars(123_456_789) == "$1,234,567.89"
    assert dollars(-300) == "-$3.00"
    assert dollars(0) == dollars(None) == "$0.00"
    assert dollars(1) == "$0.01"
    settings.CREDITS_PER_USD = 1_000
    assert dollars(1_250) == "$1.25"
    assert dollars(5) == "$0.01"  # half a cent rounds up
    assert dollars(4) == "$0.00"


def test_credits_and_dollars():
    assert credits_and_dollars(12_500) == "12,500 credits ($125.00)"
    assert credits_and_dollars(1) == "1 credit ($0.01)"
    assert credits_and_dollars(-300) == "-300 credits (-$3.00)"


def test_template_filters():
    html = Template("{% load money %}{{ n|credits_usd }} · {{ n|usd }}").render(Context({"n": 1250}))
    assert html == "1,250 credits ($12.50) · $12.50"
