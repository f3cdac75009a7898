"""Rows rendered as JSON by PostgreSQL, for the hottest API pages.

Turning a page's rows into Python values (UUIDs, Decimals, datetimes, lists) and then into
JSON costs more Python than the rest of such a request's view. PostgreSQL's
`json_build_object` writes the same document in C: the view receives one text per row and
joins them. The expressions here give the values exactly as the API's Python renderers
write them (marketplace.api.serializers), which tests/api/test_json_sql.py checks value by
value; they apply only on PostgreSQL and when the current time zone is UTC
(`renders_in_database`), the Python renderers everywhere else.
"""

import re

from django.db import connection
from django.db.models import Expression, Func, TextField, Value
from django.db.models.functions import Cast
from django.http import HttpResponse
from django.utils import timezone


def renders_in_database() -> bool:
    """Whether the database can render rows as the API does: PostgreSQL, times in UTC."""
    return connection.vendor == "postgresql" and timezone.get_current_timezone_name() == "UTC"


class JsonObject(Func):
    """`json_build_object(key, value, ...)` as text: the keys in the order given (jsonb
    would sort them), each value as JSON (a jsonb value embedded as it is)."""

    function = "json_build_object"
    template = "%(function)s(%(expressions)s)::text"
    output_field = TextField()

    def __init__(self, **fields):
        arguments = []
        for key, value in fields.items():
            arguments += [Cast(Value(key), TextField()), value]
        super().__init__(*arguments)


class JsonRow(Expression):
    """A row as the compact JSON text DRF's JSONRenderer writes: the keys in the order given,
    no space after `:` or `,` (json_build_object puts spaces there, row_to_json does not).
    A value that is itself JSON (json, not jsonb: jsonb's text has spaces) goes in as it is.
    The keys are plain lower-case words, written into the SQL as column names."""

    output_field = TextField()

    def __init__(self, **fields):
        super().__init__()
        for key in fields:
            if not re.fullmatch(r"[a-z_]+", key):
                raise ValueError(f"not a plain key: {key!r}")
        self.keys = list(fields)
        self.values = self._parse_expressions(*fields.values())

    def get_source_expressions(self):
        return self.values

    def set_source_expressions(self, exprs):
        self.values = list(exprs)

    def as_sql(self, compiler, connection):
        columns, params = [], []
        for key, value in zip(self.keys, self.values, strict=True):
            sql, value_params = compiler.compile(value)
            columns.append(f'{sql} AS "{key}"')
            params.extend(value_params)
        # A subquery of one row whose columns are the keys: row_to_json names them so. The
        # keys are checked words and the values compiled expressions, never input.
        sql = f"(SELECT row_to_json(r)::text FROM (SELECT {', '.join(columns)}) AS r)"  # noqa: S608  # nosec B608
        return sql, params


class StringList(Func):
    """A jsonb list of strings (tags) as compact JSON, `["a","b"]`, in its order: jsonb's own
    text would be `["a", "b"]`."""

    template = (
        "array_to_json(ARRAY(SELECT e.value FROM jsonb_array_elements_text(%(expressions)s)"
        " WITH ORDINALITY AS e(value, n) ORDER BY e.n))"
    )
    output_field = TextField()


class Text(Cast):
    """A value as its text: a UUID in its hyphenated lower-case form, a numeric column with
    two decimal places as "12.50" (what DecimalField(decimal_places=2) writes)."""

    def __init__(self, expression):
        super().__init__(expression, TextField())


class UtcMoment(Func):
    """A timestamp as DRF's DateTimeField writes it in UTC: ISO 8601 ending in Z, with
    microseconds only when there are any (as datetime.isoformat() does); NULL stays null."""

    # The fraction is the only place ".000000" can appear in the text.
    template = (
        "replace(to_char(%(expressions)s AT TIME ZONE 'UTC',"
        " 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"'), '.000000Z', 'Z')"
    )
    output_field = TextField()


def json_array(texts) -> str:
    """The JSON array of rows already rendered as JSON texts."""
    return "[" + ",".join(texts) + "]"


def json_response(text: str, status: int = 200) -> HttpResponse:
    """A response of JSON already rendered, with the media type DRF's JSONRenderer gives, and
    U+2028 and U+2029 escaped as it escapes them (JSON allows them raw; JavaScript did not)."""
    if "\u2028" in text or "\u2029" in text:
        text = text.replace("\u2028", "\\u2028").replace("\u2029", "\\u2029")
    return HttpResponse(text, status=status, content_type="application/json")
