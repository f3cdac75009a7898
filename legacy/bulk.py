"""Loading an empty PostgreSQL table without its secondary indexes and foreign keys.

PostgreSQL's manual ("Populating a Database") recommends it: maintaining a dozen indexes row by
row and checking every foreign key row by row at commit costs far more than building each
index once and checking each foreign key with one query. Everything happens inside the
import's transaction, so other sessions never see a table without them, and creating them
again checks every row (a duplicate or a dangling reference fails the import).
"""

from django.db import connection

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


def drop_for_load(tables: list[str]) -> list[str]:
    """Drop the tables' secondary indexes, unique constraints and foreign keys (primary keys
    stay); the statements that create them again, in order."""
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
                restore = f"ALTER TABLE {quote(table)} ADD CONSTRAINT {quote(name)} {definition}"
                (foreign_keys if kind == "f" else uniques).append(restore)
            cursor.execute(_INDEXES, [table])
            for name, definition in cursor.fetchall():
                cursor.execute(f"DROP INDEX {name}")
                indexes.append(definition)
    return indexes + uniques + foreign_keys


def restore_after_load(statements: list[str]) -> None:
    if not statements:
        return
    with connection.cursor() as cursor:
        cursor.execute("SET LOCAL maintenance_work_mem = '256MB'")
        for statement in statements:
            cursor.execute(statement)
