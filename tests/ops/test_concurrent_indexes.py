"""The review index migration keeps the table writable on PostgreSQL, and runs on SQLite."""

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

BEFORE = [("marketplace", "0003_cache_generation")]
AFTER = [("marketplace", "0004_review_page_index")]


def review_indexes() -> set[str]:
    with connection.cursor() as cursor:
        constraints = connection.introspection.get_constraints(cursor, "marketplace_review")
    return {name for name, details in constraints.items() if details["index"]}


def migrate(target) -> list[str]:
    """Migrate to target; the SQL statements run."""
    statements = []

    def record(execute, sql, params, many, context):
        statements.append(sql)
        return execute(sql, params, many, context)

    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    with connection.execute_wrapper(record):
        executor.migrate(target)
    return statements


@pytest.mark.django_db(transaction=True)
def test_the_review_page_index_migrates_both_ways():
    try:
        backwards = migrate(BEFORE)
        assert "review_project_newest_idx" in review_indexes()
        assert "review_project_page_idx" not in review_indexes()
    finally:
        forwards = migrate(AFTER)
    assert "review_project_page_idx" in review_indexes()
    assert "review_project_newest_idx" not in review_indexes()
    index_statements = [
        sql for sql in backwards + forwards if "INDEX" in sql and "review_project" in sql
    ]
    assert len(index_statements) == 4
    if connection.vendor == "postgresql":
        assert all("CONCURRENTLY" in sql for sql in index_statements)
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT bool_and(indisvalid) FROM pg_index"
                " WHERE indrelid = 'marketplace_review'::regclass"
            )
            assert cursor.fetchone()[0] is True
