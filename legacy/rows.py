"""Checking one row of the dump against the rules of DATA_MODEL.md, collecting every problem."""

import datetime as dt
import json
import math
from decimal import Decimal, InvalidOperation

from legacy.dump import parse_timestamp

CENT = Decimal("0.01")
MAX_MONEY = Decimal("99999999.99")  # decimal(10, 2)


def ref_key(value) -> str | None:
    """A row id as a dictionary key: UUID-shaped ids in lower case, numbers as text."""
    if isinstance(value, str) and value:
        return value.lower() if len(value) == 36 and value[8] == "-" else value
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    return None


class RowCheck:
    """Reads the fields of one row; each failing rule is recorded and the field read as None."""

    __slots__ = ("errors", "row")

    def __init__(self, row):
        self.errors: list[tuple[str, str]] = []
        if isinstance(row, dict):
            self.row = row
        else:
            self.row = {}
            self.errors.append(("", "a row must be a JSON object"))

    def fail(self, field: str, reason: str) -> None:
        self.errors.append((field, reason))

    def ref(self, key: str, *, required: bool = True) -> str | None:
        value = self.row.get(key)
        if value is None:
            if required:
                self.fail(key, "is required")
            return None
        found = ref_key(value)
        if found is None:
            self.fail(key, "must be a non-empty string id")
        return found

    def text(
        self,
        key: str,
        *,
        required: bool = False,
        max_length: int | None = None,
        min_length: int = 0,
        strip: bool = False,
    ) -> str | None:
        value = self.row.get(key)
        if value is None:
            if required:
                self.fail(key, "is required")
                return None
            return ""
        if not isinstance(value, str):
            self.fail(key, "must be a string")
            return None
        if strip:
            value = value.strip()
        if len(value) < min_length:
            self.fail(key, "must not be blank")
            return None
        if max_length is not None and len(value) > max_length:
            self.fail(key, f"must be at most {max_length} characters")
            return None
        return value

    def timestamp(self, key: str, default: dt.datetime | None) -> dt.datetime | None:
        value = self.row.get(key)
        if value is None:
            return default
        try:
            return parse_timestamp(value)
        except ValueError:
            self.fail(key, f"is not an ISO 8601 timestamp: {str(value)[:40]!r}")
            return None

    def boolean(self, key: str, default: bool) -> bool | None:
        value = self.row.get(key)
        if value is None:
            return default
        if not isinstance(value, bool):
            self.fail(key, "must be true or false")
            return None
        return value

    def choice(self, key: str, choices, default: str | None) -> str | None:
        value = self.row.get(key)
        if value is None:
            if default is None:
                self.fail(key, "is required")
            return default
        if value not in choices:
            self.fail(key, f"must be one of {', '.join(choices)}, not {str(value)[:40]!r}")
            return None
        return value

    def money(self, key: str, default: Decimal | None, *, minimum=None, maximum=MAX_MONEY):
        value = self.row.get(key)
        if value is None:
            return default
        if isinstance(value, bool) or not isinstance(value, int | float | str):
            self.fail(key, "must be a decimal number or string")
            return None
        if isinstance(value, float) and not math.isfinite(value):
            self.fail(key, "must be a finite number")
            return None
        try:
            amount = Decimal(str(value).strip())
        except InvalidOperation:
            self.fail(key, f"is not a number: {str(value)[:40]!r}")
            return None
        if not amount.is_finite():
            self.fail(key, "must be a finite number")
            return None
        amount = amount.quantize(CENT)
        if minimum is not None and amount < minimum:
            self.fail(key, f"must be at least {minimum}" if minimum else "must not be negative")
            return None
        if amount > maximum or amount < -MAX_MONEY:
            self.fail(key, f"must be at most {maximum}")
            return None
        return amount

    def json_object(self, key: str, *, max_bytes: int | None = None) -> dict | None:
        value = self.row.get(key)
        if value is None:
            return {}
        if not isinstance(value, dict):
            self.fail(key, "must be a JSON object")
            return None
        if max_bytes is not None and value:
            size = len(json.dumps(value).encode())
            if size > max_bytes:
                self.fail(key, f"must be at most {max_bytes // 1024} KiB, not {size} bytes")
                return None
        return value

    def string_list(self, key: str) -> list | None:
        value = self.row.get(key)
        if value is None:
            return []
        if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
            self.fail(key, "must be a list of strings")
            return None
        return value
