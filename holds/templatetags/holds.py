"""`{% load holds %}{% held_credits user as held %}`: credits reserved from this user's wallet by open holds,
for the wallet page's "N held" line (templates/wallets/_held.html): ONE query, whatever the number of holds."""

from django import template

from holds.selectors import held_for_user

register = template.Library()


@register.simple_tag
def held_credits(user) -> int:
    if not getattr(user, "is_authenticated", False):
        return 0
    return held_for_user(user.pk)
