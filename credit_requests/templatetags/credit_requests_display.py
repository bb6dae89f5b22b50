"""Filters for the credit-request templates: `age` ("just now", "5 minutes ago"). Amounts: the `money` library."""

from django import template

from credit_requests import display

register = template.Library()

register.filter("age", display.age)
