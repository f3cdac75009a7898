"""Fast batch writes for the legacy import: COPY on PostgreSQL, executemany on SQLite.

Rows are tuples of Python values aligned with the given columns. Raw SQL keeps the dump's
timestamps (the ORM would overwrite auto_now fields) and keeps two million rows cheap.
"""

import datetime as dt
import json
import uuid

from django.db import connection

from legacy.canonical import any_value


def sqlite_value(value):
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


def insert_rows(
    model, columns: list[str], rows: list[tuple], *, lines: list[str] | None = None
) -> None:
    """Rows aligned with columns; on PostgreSQL `lines` may give the COPY text of each row's
    first values (legacy.canonical), so only the rest is converted here."""
    if not rows:
        return
    if connection.vendor == "postgresql":
        copy_lines(model, columns, _copy_text(rows, lines))
        return
    table = _quote(model._meta.db_table)
    names = ", ".join(_quote(column) for column in columns)
    marks = ", ".join(["%s"] * len(columns))
    with connection.cursor() as cursor:
        cursor.executemany(
            f"INSERT INTO {table} ({names}) VALUES ({marks})",  # noqa: S608 - names from _meta
            [[sqlite_value(value) for value in row] for row in rows],
        )


def _copy_text(rows: list[tuple], lines: list[str] | None):
    """Each row's COPY line: its given start, then the rest of its values converted."""
    if lines is None:
        for row in rows:
            yield "\t".join([any_value(value) for value in row]) + "\n"
        return
    done = lines[0].count("\t") + 1
    for line, row in zip(lines, rows, strict=True):
        if len(row) > done:
            yield f"{line}\t" + "\t".join([any_value(value) for value in row[done:]]) + "\n"
        else:
            yield f"{line}\n"


def copy_lines(model, columns: list[str], lines) -> None:
    """COPY finished lines (legacy.canonical text, tab-separated, newline-terminated)."""
    table = _quote(model._meta.db_table)
    names = ", ".join(_quote(column) for column in columns)
    # The raw psycopg cursor: wrap its errors as Django's (IntegrityError ...).
    with (
        connection.cursor() as cursor,
        connection.wrap_database_errors,
        cursor.cursor.copy(f"COPY {table} ({names}) FROM STDIN") as copy,
    ):
        block = []
        for line in lines:
            block.append(line)
            if len(block) >= 2000:
                copy.write("".join(block))
                block.clear()
        copy.write("".join(block))


def update_rows(model, key_column: str, columns: list[str], rows: list[tuple]) -> None:
    """Each row is (*values of columns, key)."""
    if not rows:
        return
    table = _quote(model._meta.db_table)
    assignments = ", ".join(f"{_quote(column)} = %s" for column in columns)
    adapt = _postgres_value if connection.vendor == "postgresql" else sqlite_value
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
