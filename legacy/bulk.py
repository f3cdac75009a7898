"""Loading an empty PostgreSQL table without its secondary indexes and foreign keys.

PostgreSQL's manual ("Populating a Database") recommends it: maintaining a dozen indexes row by
row and checking every foreign key row by row at commit costs far more than building each
index once and checking each foreign key with one query. Everything happens inside the
import's transaction, so other sessions never see a table without them, and creating them
again checks every row (a duplicate or a dangling reference fails the import).
"""

import contextlib
import time

import psycopg
from django.db import connection
from django.db.models.sql import UpdateQuery
from psycopg import pq

from projects.models import Project
from projects.services import SEARCH_VECTOR

_CONSTRAINTS = """
    SELECT c.conname, pg_get_constraintdef(c.oid), c.contype
    FROM pg_constraint c
    WHERE c.conrelid = %s::regclass
      AND (c.contype = 'f' OR (c.contype = 'u' AND NOT EXISTS (
            SELECT 1 FROM pg_constraint f WHERE f.contype = 'f' AND f.conindid = c.conindid)))
    ORDER BY c.contype = 'f' DESC, c.conname
"""
# Indexes that back no constraint (those of unique constraints go with their constraint).
_INDEXES = """
    SELECT x.indexrelid::regclass::text, pg_get_indexdef(x.indexrelid)
    FROM pg_index x
    WHERE x.indrelid = %s::regclass AND NOT x.indisprimary
      AND NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conindid = x.indexrelid)
    ORDER BY 1
"""


def drop_for_load(tables: list[str]) -> list[tuple[str, str]]:
    """Drop the tables' secondary indexes, unique constraints and foreign keys (primary keys
    stay); (table, statement) to create them again, in order."""
    quote = connection.ops.quote_name
    indexes, uniques, foreign_keys = [], [], []
    with connection.cursor() as cursor:
        if tables:
            # ALTER TABLE refuses a table with checks still pending from earlier in the
            # transaction (a test's, or a caller's): run them now.
            cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
            cursor.execute("SET CONSTRAINTS ALL DEFERRED")
        for table in tables:
            cursor.execute(_CONSTRAINTS, [table])
            for name, definition, kind in cursor.fetchall():
                cursor.execute(f"ALTER TABLE {quote(table)} DROP CONSTRAINT {quote(name)}")
                restore = (
                    table,
                    f"ALTER TABLE {quote(table)} ADD CONSTRAINT {quote(name)} {definition}",
                )
                (foreign_keys if kind == "f" else uniques).append(restore)
            cursor.execute(_INDEXES, [table])
            for name, definition in cursor.fetchall():
                cursor.execute(f"DROP INDEX {name}")
                indexes.append((table, definition))
    return indexes + uniques + foreign_keys


def restore_after_load(statements: list[str]) -> None:
    if not statements:
        return
    with connection.cursor() as cursor:
        cursor.execute("SET LOCAL maintenance_work_mem = '256MB'")
        for statement in statements:
            cursor.execute(statement)


def search_vector_sql() -> str:
    """projects.services.project_refresh_search_vector() for every project, as SQL text."""
    query = UpdateQuery(Project)
    query.add_update_values({"search_vector": SEARCH_VECTOR})
    sql, params = query.get_compiler(connection=connection).as_sql()
    return psycopg.ClientCursor(connection.connection).mogrify(sql, params)


class Background:
    """SQL statements the server runs while this process goes on without the database; the
    connection must not be used until wait()."""

    def __init__(self, statements: list[str]):
        connection.ensure_connection()
        self.pgconn = connection.connection.pgconn
        settings = [
            "SET LOCAL maintenance_work_mem = '256MB'",
            # One core for the server, the other for this process.
            "SET LOCAL max_parallel_maintenance_workers = 0",
        ]
        self.pgconn.send_query(";\n".join([*settings, *statements]).encode())

    def wait(self) -> float:
        """Seconds spent waiting; raises the first error as Django's exception."""
        started = time.monotonic()
        error = None
        if self.pgconn is None:
            return 0.0
        self.pgconn, pgconn = None, self.pgconn
        while (result := pgconn.get_result()) is not None:
            if error is None and result.status not in (
                pq.ExecStatus.COMMAND_OK,
                pq.ExecStatus.TUPLES_OK,
            ):
                error = psycopg.errors.lookup(
                    (result.error_field(pq.DiagnosticField.SQLSTATE) or b"XX000").decode()
                )(result.error_message.decode(errors="replace"))
        if error is not None:
            with connection.wrap_database_errors:
                raise error
        return time.monotonic() - started

    def close(self) -> None:
        """Wait, ignoring errors: something else failed and the transaction rolls back."""
        with contextlib.suppress(Exception):  # the first failure is the one to report
            self.wait()
