"""Rating stars with halves: 4.5 shows four and a half stars, not five."""

import math
from decimal import Decimal, InvalidOperation

from django import template

register = template.Library()


@register.filter
def star_parts(rating) -> list[str]:
    """Five of "full", "half" and "empty" for a rating from 1 to 5, rounded to the nearest
    half star; five "empty" for no rating."""
    try:
        value = Decimal(str(rating)) if rating not in (None, "") else Decimal(0)
    except InvalidOperation:
        value = Decimal(0)
    halves = min(max(math.floor(value * 2 + Decimal("0.5")), 0), 10)
    full, half = divmod(halves, 2)
    return ["full"] * full + ["half"] * half + ["empty"] * (5 - full - half)
