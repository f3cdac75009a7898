"""Hot read queries, compiled to SQL once per process and run again with new values.

Building a queryset and compiling it costs more Python per request than a warm database
needs to answer it. The hot API pages run a handful of query shapes over
and over, so each shape is compiled once (per key, in a bounded cache) and then executed
directly, with the model fields' converters applied as the ORM would. Parameters named as
placeholders (a listing's id, say) are put into the compiled parameters on each run.
"""

import re
import secrets
import threading
import uuid
from collections import OrderedDict
from collections.abc import Callable

import psycopg
from django.core.exceptions import EmptyResultSet
from django.db import connections, router
from django.db.models import Value

MAX_SHAPES = 256
# psycopg's own timestamptz loader, in C with psycopg[binary]. Django's replaces it on every
# connection with a Python subclass that parses each value in Python and then swaps in
# Django's UTC object; for rows that are rendered at once, an aware UTC datetime from C does
# as well, at half the cost of a page of reviews' rows.
_TIMESTAMPTZ = psycopg.adapters.get_loader(
    psycopg.adapters.types["timestamptz"].oid, psycopg.pq.Format.TEXT
)


class CompiledValues:
    """A values() queryset as SQL, parameters and converters."""

    def __init__(self, queryset, placeholders: dict):
        compiler = queryset.query.get_compiler(queryset.db)
        self.alias = queryset.db
        self.model = queryset.model
        query = queryset.query
        self.names = (
            list(query.selected)
            if query.selected
            else [
                *query.extra_select,
                *query.values_select,
                *query.annotation_select,
            ]
        )
        try:
            self.sql, params = compiler.as_sql()
        except EmptyResultSet:
            self.sql, params = None, ()
        self.params = list(params)
        fields = [selected[0] for selected in compiler.select[: compiler.col_count]]
        self.converters = list(compiler.get_converters(fields).items())
        # Where each placeholder's sentinel landed among the parameters, and its field.
        self.slots = {}
        connection = connections[self.alias]
        for name, (field, sentinel) in placeholders.items():
            prepared = field.get_db_prep_value(sentinel, connection)
            positions = [i for i, value in enumerate(self.params) if value == prepared]
            if not positions and self.sql is not None:
                raise ValueError(f"placeholder {name!r} is not among the query's parameters")
            self.slots[name] = (field, positions)

    def rows(self, **values) -> list[dict]:
        if self.sql is None:
            return []
        # Routed on each run, not where it was compiled: this request may read from a replica
        # (config/replicas.py), the next one from the primary. The SQL is the same on both.
        connection = connections[router.db_for_read(self.model)]
        params = self.params
        if values:
            params = list(params)
            for name, value in values.items():
                field, positions = self.slots[name]
                prepared = field.get_db_prep_value(field.to_python(value), connection)
                for position in positions:
                    params[position] = prepared
        with connection.cursor() as cursor:
            if connection.vendor == "postgresql":  # for this cursor only
                cursor.cursor.adapters.register_loader("timestamptz", _TIMESTAMPTZ)
            cursor.execute(self.sql, params)
            rows = cursor.fetchall()
        names, converters = self.names, self.converters
        result = []
        for row in rows:
            if converters:
                row = list(row)
                for position, (functions, expression) in converters:
                    value = row[position]
                    for convert in functions:
                        value = convert(value, expression, connection)
                    row[position] = value
            result.append(dict(zip(names, row, strict=True)))
        return result


class Constant(Value):
    """A word written into the SQL itself, not sent as a parameter. A prepared statement
    plans once (a generic plan) only when that plan is as good as one made for the values;
    with `status = $1`, PostgreSQL cannot use an index whose predicate says
    `status = 'active'`, so it plans the statement again on every run. Only plain lower-case
    words are accepted, so nothing can be quoted wrongly."""

    def __init__(self, value: str, output_field=None):
        if not isinstance(value, str) or not re.fullmatch(r"[a-z_]+", str(value)):
            raise ValueError(f"not a plain word: {value!r}")
        super().__init__(str(value), output_field=output_field)

    def as_sql(self, compiler, connection):
        return f"'{self.value}'", []


_local = threading.local()


def _sentinel(field):
    """A random value for a placeholder of this field: a UUID, for an integer field (an id) a
    random number far beyond any real id, for a text field a random word, so that it is found
    only where the placeholder went."""
    kind = field.get_internal_type()
    if kind == "UUIDField":
        return uuid.uuid4()
    if kind in ("AutoField", "BigAutoField", "IntegerField", "BigIntegerField"):
        return secrets.randbelow(2**61) + 2**61
    if kind == "CharField":
        return f"placeholder-{uuid.uuid4().hex}"
    raise ValueError(f"placeholders are UUID, integer or text fields, not {kind}")


def compiled_values(key, build: Callable, **placeholder_fields) -> CompiledValues:
    """The compiled form of `build(**sentinels)` for this key, built on first use.

    `key` must decide the SQL completely, apart from the placeholders: each placeholder names
    the field that prepares its values (a UUID, integer or text field), `build` receives a random
    value of that kind for each (_sentinel) and returns a values() queryset, and where those
    values land among the parameters is where later values go. Shapes are kept per thread (a
    compiled query is tied to nothing but its database alias), the least recently used dropped
    beyond MAX_SHAPES.
    """
    shapes = getattr(_local, "shapes", None)
    if shapes is None:
        shapes = _local.shapes = OrderedDict()
    found = shapes.get(key)
    if found is not None:
        shapes.move_to_end(key)
        return found
    placeholders = {name: (field, _sentinel(field)) for name, field in placeholder_fields.items()}
    found = CompiledValues(
        build(**{name: sentinel for name, (_, sentinel) in placeholders.items()}), placeholders
    )
    shapes[key] = found
    if len(shapes) > MAX_SHAPES:
        shapes.popitem(last=False)
    return found
