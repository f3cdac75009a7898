"""One text per row: the line COPY writes on PostgreSQL, and what the verification hashes.

The verification hashes each imported row's key fields as this text on the Python side, and
builds the same text from the stored values in SQL (or, on SQLite, from the values read back),
so the two sums match only if every row holds what the import meant to write. Each value is
written the way PostgreSQL prints it back: text with COPY's escapes, timestamps in UTC with
microseconds, decimals with their two places, JSON as jsonb prints it (keys by length, then
bytes; ", " and ": " between items).
"""

import datetime as dt
import hashlib
import json
import uuid
from decimal import Decimal

from django.db import connection

NULL = "\\N"
_ESCAPES = str.maketrans({"\\": "\\\\", "\n": "\\n", "\r": "\\r", "\t": "\\t"})
_json_string = json.encoder.encode_basestring  # escapes like PostgreSQL's json output


def text(value: str | None) -> str:
    if value is None:
        return NULL
    if "\\" in value or "\n" in value or "\r" in value or "\t" in value:
        return value.translate(_ESCAPES)
    return value


def plain(value) -> str:
    """Ids and whole numbers."""
    return NULL if value is None else str(value)


def money(value: Decimal | None) -> str:
    if value is None:
        return NULL
    return str(value) if value else "0.00"  # PostgreSQL has no -0.00


def moment(value: dt.datetime | None) -> str:
    """In UTC, as ISO 8601 with a "T" (the import's timestamps are all in UTC already)."""
    if value is None:
        return NULL
    return value.astimezone(dt.UTC).isoformat()


def flag(value: bool | None) -> str:
    if value is None:
        return NULL
    return "t" if value else "f"


def jsonb_text(value) -> str:
    """A JSON value as PostgreSQL prints it back from a jsonb column."""
    kind = type(value)
    if kind is str:
        return _json_string(value)
    if kind is dict:
        if not value:
            return "{}"
        keys = sorted(value)  # then by length (in bytes) with a stable sort
        if all(key.isascii() for key in keys):
            keys.sort(key=len)
        else:
            keys.sort(key=lambda key: len(key.encode()))
        return "{" + ", ".join([f"{_json_string(key)}: {_item(value[key])}" for key in keys]) + "}"
    if kind is list:
        return "[" + ", ".join([_item(item) for item in value]) + "]"
    if kind is int:
        return str(value)
    if value is None:
        return "null"
    if value is True:
        return "true"
    if value is False:
        return "false"
    if kind is float:
        # jsonb keeps numbers as numeric: no exponent, no negative zero.
        return format(Decimal(repr(value)) + 0, "f")
    raise TypeError(f"not a JSON value: {kind.__name__}")


def _item(value) -> str:
    kind = type(value)
    if kind is str:
        return _json_string(value)
    if kind is int:
        return str(value)
    return jsonb_text(value)


def json_value(value) -> str:
    return NULL if value is None else text(jsonb_text(value))


def any_value(value) -> str:
    """A value of any of the above types, by its Python type."""
    if value is None:
        return NULL
    if isinstance(value, bool):
        return flag(value)
    if isinstance(value, str):
        return text(value)
    if isinstance(value, dt.datetime):
        return moment(value)
    if isinstance(value, Decimal):
        return money(value)
    if isinstance(value, dict | list):
        return json_value(value)
    if isinstance(value, int | uuid.UUID):
        return str(value)
    raise TypeError(f"no COPY text for {type(value).__name__}")


# What each kind of column is written as, in Python and in SQL ({} is the column).
_TEXT_SQL = (
    "replace(replace(replace(replace({0}, E'\\\\', E'\\\\\\\\'), E'\\n', E'\\\\n'), "
    "E'\\r', E'\\\\r'), E'\\t', E'\\\\t')"
)
KINDS = {
    "plain": (plain, "{0}::text"),
    "text": (text, _TEXT_SQL),
    "money": (money, "{0}::text"),
    "moment": (
        moment,
        "to_char({0} AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS') || CASE "
        "to_char({0} AT TIME ZONE 'UTC', 'US') WHEN '000000' THEN '' "
        "ELSE '.' || to_char({0} AT TIME ZONE 'UTC', 'US') END || '+00:00'",
    ),
    "flag": (flag, "CASE {0} WHEN true THEN 't' WHEN false THEN 'f' END"),
    "json": (json_value, _TEXT_SQL.replace("{0}", "{0}::text")),
}


def kind_of(model_field) -> str:
    internal = model_field.get_internal_type()
    if internal in ("CharField", "TextField", "SlugField", "EmailField", "URLField"):
        return "text"
    if internal == "DateTimeField":
        return "moment"
    if internal == "DecimalField":
        return "money"
    if internal == "BooleanField":
        return "flag"
    if internal == "JSONField":
        return "json"
    return "plain"  # UUIDs, integers, foreign keys


# How a value is written inside the f-string of RowText.line, when the column is NOT NULL.
_INLINE = {
    "plain": "{{v[{0}]}}",
    "moment": "{{v[{0}].isoformat()}}",
    "flag": "{{'t' if v[{0}] else 'f'}}",
}


class RowText:
    """The line of one map's key fields, in Python and as an SQL expression."""

    def __init__(self, model, columns: tuple[str, ...]):
        quote = connection.ops.quote_name
        by_column = {f.column: f for f in model._meta.concrete_fields}
        kinds = [kind_of(by_column[column]) for column in columns]
        self.sql = "concat_ws(E'\\t', {})".format(
            ", ".join(
                f"coalesce({KINDS[kind][1].format(quote(column))}, E'\\\\N')"
                for kind, column in zip(kinds, columns, strict=True)
            )
        )
        # One f-string for the whole row: a function call per value would double the time
        # of a million rows.
        parts = []
        names = {}
        for index, (kind, column) in enumerate(zip(kinds, columns, strict=True)):
            if kind in _INLINE and not by_column[column].null:
                parts.append(_INLINE[kind].format(index))
            else:
                names[f"convert_{kind}"] = KINDS[kind][0]
                parts.append(f"{{convert_{kind}(v[{index}])}}")
        source = 'def line(v):\n    return f"' + "\\t".join(parts) + '"\n'
        namespace = dict(names)
        exec(source, namespace)  # noqa: S102 - built above from the kinds, no outside text
        self.line = namespace["line"]


def digest(line: str) -> int:
    """The first 8 bytes of the line's MD5 as a signed 64-bit number, as SQL computes it."""
    return int.from_bytes(
        hashlib.md5(line.encode(), usedforsecurity=False).digest()[:8], "big", signed=True
    )


# The same in SQL, for an expression built by RowText.sql.
DIGEST_SQL = "('x' || left(md5({}), 16))::bit(64)::bigint"
