"""`{% load money %}`: `{{ amount|credits_usd }}` → "1,250 credits ($12.50)", `{{ amount|usd }}` → "$12.50"."""

from django import template

from core import money

register = template.Library()

register.filter("credits_usd", money.credits_and_dollars)
register.filter("usd", money.dollars)
