"""Fast batch writes for the legacy import: COPY on PostgreSQL, executemany on SQLite.

Rows are tuples of Python values aligned with the given columns. Raw SQL keeps the dump's
timestamps (the ORM would overwrite auto_now fields) and keeps two million rows cheap.
"""

import datetime as dt
import json
import uuid

from django.db import connection


def _sqlite_value(value):
    if isinstance(value, uuid.UUID):
        return value.hex
    if isinstance(value, dt.datetime):
        return value.astimezone(dt.UTC).replace(tzinfo=None).isoformat(" ")
    if isinstance(value, dict | list):
        return json.dumps(value)
    return value


def _quote(name: str) -> str:
    return connection.ops.quote_name(name)


def _postgres_value(value):
    return json.dumps(value) if isinstance(value, dict | list) else value


def _json_positions(model, columns: list[str]) -> list[int]:
    json_columns = {
        f.column for f in model._meta.concrete_fields if f.get_internal_type() == "JSONField"
    }
    return [index for index, column in enumerate(columns) if column in json_columns]


def insert_rows(model, columns: list[str], rows: list[tuple]) -> None:
    if not rows:
        return
    table = _quote(model._meta.db_table)
    names = ", ".join(_quote(column) for column in columns)
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            positions = _json_positions(model, columns)
            # The raw psycopg cursor: wrap its errors as Django's (IntegrityError ...).
            with (
                connection.wrap_database_errors,
                cursor.cursor.copy(f"COPY {table} ({names}) FROM STDIN") as copy,
            ):
                for row in rows:
                    if positions:
                        row = list(row)
                        for index in positions:
                            row[index] = json.dumps(row[index])
                    copy.write_row(row)
            return
        marks = ", ".join(["%s"] * len(columns))
        cursor.executemany(
            f"INSERT INTO {table} ({names}) VALUES ({marks})",  # noqa: S608 - names from _meta
            [[_sqlite_value(value) for value in row] for row in rows],
        )


def update_rows(model, key_column: str, columns: list[str], rows: list[tuple]) -> None:
    """Each row is (*values of columns, key)."""
    if not rows:
        return
    table = _quote(model._meta.db_table)
    assignments = ", ".join(f"{_quote(column)} = %s" for column in columns)
    adapt = _postgres_value if connection.vendor == "postgresql" else _sqlite_value
    with connection.cursor() as cursor:
        cursor.executemany(
            f"UPDATE {table} SET {assignments} WHERE {_quote(key_column)} = %s",  # noqa: S608
            [[adapt(value) for value in row] for row in rows],
        )


def reset_sequence(model) -> None:
    """After explicit ids were written: the next id the database hands out follows the largest."""
    if connection.vendor != "postgresql":
        return  # SQLite's AUTOINCREMENT follows explicit ids itself
    table = model._meta.db_table
    pk = model._meta.pk.column
    largest = f"SELECT COALESCE(MAX({_quote(pk)}), 0) + 1 FROM {_quote(table)}"  # noqa: S608
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT setval(pg_get_serial_sequence(%s, %s), ({largest}), false)", [table, pk]
        )
