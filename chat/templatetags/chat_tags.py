import json

from django import template

register = template.Library()


@register.filter
def as_json(value) -> str:
    """Tool arguments as readable JSON (autoescaped by the template like any text)."""
    return json.dumps(value, indent=2, ensure_ascii=False, sort_keys=True)
