"""Running totals for the marketplace stats, kept by PostgreSQL triggers.

Each write statement to purchases, reviews, downloads or revenue events adds what it changed
(its transition tables: the rows it inserted, minus the rows it deleted, both for an update)
to `StatsTally` and, for revenue, to `ProjectRevenueTally` -- in the same transaction, so the
totals are exactly as current as the rows, whoever wrote them (services, admin, import, bulk
loads). One upsert per statement, locking tally rows in a fixed order.

`rebuild()` recomputes every total from the rows (`manage.py rebuild_stats_tallies`): after
a load that bypassed triggers (`session_replication_role = replica`), and when the triggers
are installed. Call it inside a transaction (the lock is held until it ends).
"""

from django.db import connection

from marketplace.models import (
    Download,
    ProjectRevenueTally,
    Purchase,
    RevenueEvent,
    Review,
    StatsTally,
)

SHARDS = 32
COUNTS = (
    "revenue_events",
    "gross",
    "platform_fee",
    "seller_net",
    "completed_purchases",
    "downloads",
    "reviews",
    "rating_sum",
)
# What one row of each table adds to its tally: (currency, {count: expression}); `r` is the row.
CONTRIBUTIONS = {
    RevenueEvent: (
        "r.currency",
        {
            "revenue_events": "1",
            "gross": "r.gross",
            "platform_fee": "r.platform_fee",
            "seller_net": "r.seller_net",
        },
    ),
    Purchase: ("''", {"completed_purchases": "(r.status = 'completed')::int"}),
    Download: ("''", {"downloads": "1"}),
    # A review counts while its author keeps the purchase (Review.purchase_refunded): the
    # stats' review count and average are the listing ratings' own reviews.
    Review: (
        "''",
        {
            "reviews": "(NOT r.purchase_refunded)::int",
            "rating_sum": "CASE WHEN r.purchase_refunded THEN 0 ELSE r.rating END",
        },
    ),
}


def _table(model) -> str:
    return connection.ops.quote_name(model._meta.db_table)


def _deltas(model, source: str, sign: str) -> str:
    currency, counts = CONTRIBUTIONS[model]
    values = ", ".join(f"{sign}({counts.get(name, '0')}) AS {name}" for name in COUNTS)
    shard = f"hashtext(r.project_id::text) & {SHARDS - 1}"
    # Names from _meta and constants.
    return f"SELECT {shard} AS shard, {currency} AS currency, {values} FROM {source} r"  # noqa: S608  # nosec B608


def _upsert_tally(parts: list[str], *, skip_zero: bool) -> str:
    sums = ", ".join(f"sum({name})" for name in COUNTS)
    having = " OR ".join(f"sum({name}) <> 0" for name in COUNTS)
    updates = ", ".join(f"{name} = t.{name} + excluded.{name}" for name in COUNTS)
    return f"""
        INSERT INTO {_table(StatsTally)} AS t (shard, currency, {", ".join(COUNTS)})
        SELECT shard, currency, {sums} FROM ({" UNION ALL ".join(parts)}) deltas
        GROUP BY shard, currency {f"HAVING {having}" if skip_zero else ""}
        ORDER BY shard, currency
        ON CONFLICT (shard, currency) DO UPDATE SET {updates}
    """  # noqa: S608  # nosec B608 - names from _meta and constants


def _upsert_project_revenue(parts: list[str], *, skip_zero: bool) -> str:
    return f"""
        INSERT INTO {_table(ProjectRevenueTally)} AS t (project_id, events, gross)
        SELECT project_id, sum(events), sum(gross) FROM ({" UNION ALL ".join(parts)}) deltas
        GROUP BY project_id {"HAVING sum(events) <> 0 OR sum(gross) <> 0" if skip_zero else ""}
        ORDER BY project_id
        ON CONFLICT (project_id) DO UPDATE
        SET events = t.events + excluded.events, gross = t.gross + excluded.gross
    """  # noqa: S608  # nosec B608 - names from _meta


def _statements(model, sources: list[tuple[str, str]]) -> list[str]:
    """What a statement that inserted (`new_rows`, +) and/or deleted (`old_rows`, -) does."""
    statements = [
        _upsert_tally([_deltas(model, source, sign) for source, sign in sources], skip_zero=True)
    ]
    if model is RevenueEvent:
        parts = [
            f"SELECT project_id, {sign}1 AS events, {sign}gross AS gross FROM {source}"  # noqa: S608  # nosec B608
            for source, sign in sources
        ]
        statements.append(_upsert_project_revenue(parts, skip_zero=True))
        if any(source == "old_rows" for source, _ in sources):
            statements.append(
                f"DELETE FROM {_table(ProjectRevenueTally)} WHERE events = 0 "  # noqa: S608  # nosec B608
                "AND project_id IN (SELECT project_id FROM old_rows)"
            )
    return statements


def _function_name(model) -> str:
    return f"{model._meta.db_table}_tally"


def install_sql() -> list[str]:
    """The trigger functions and their triggers: one per table, fired once per statement."""
    statements = []
    for model in CONTRIBUTIONS:
        branches = {
            "INSERT": _statements(model, [("new_rows", "+")]),
            "DELETE": _statements(model, [("old_rows", "-")]),
            "UPDATE": _statements(model, [("new_rows", "+"), ("old_rows", "-")]),
        }
        body = "\n".join(
            f"{'IF' if index == 0 else 'ELSIF'} TG_OP = '{operation}' THEN\n"
            + "".join(f"{statement};\n" for statement in branch)
            for index, (operation, branch) in enumerate(branches.items())
        )
        function, table = _function_name(model), _table(model)
        statements.append(
            f"CREATE OR REPLACE FUNCTION {function}() RETURNS trigger LANGUAGE plpgsql AS $$\n"
            f"BEGIN\n{body}END IF;\nRETURN NULL;\nEND $$"
        )
        transitions = {
            "INSERT": "NEW TABLE AS new_rows",
            "DELETE": "OLD TABLE AS old_rows",
            "UPDATE": "OLD TABLE AS old_rows NEW TABLE AS new_rows",
        }
        for operation, referencing in transitions.items():
            statements.append(
                f"CREATE TRIGGER {function}_{operation.lower()} AFTER {operation} ON {table} "
                f"REFERENCING {referencing} FOR EACH STATEMENT EXECUTE FUNCTION {function}()"
            )
    return statements


def uninstall_sql() -> list[str]:
    return [f"DROP FUNCTION IF EXISTS {_function_name(model)}() CASCADE" for model in CONTRIBUTIONS]


def rebuild() -> None:
    """Every total recomputed from the rows (PostgreSQL)."""
    tally = [_deltas(model, _table(model), "+") for model in CONTRIBUTIONS]
    revenue = f"SELECT project_id, 1 AS events, gross FROM {_table(RevenueEvent)}"  # noqa: S608  # nosec B608
    with connection.cursor() as cursor:
        # Writers' triggers wait until this commits, so none is counted twice or lost.
        cursor.execute(
            f"LOCK TABLE {_table(StatsTally)}, {_table(ProjectRevenueTally)} IN EXCLUSIVE MODE"
        )
        cursor.execute(f"DELETE FROM {_table(StatsTally)}")  # noqa: S608  # nosec B608
        cursor.execute(f"DELETE FROM {_table(ProjectRevenueTally)}")  # noqa: S608  # nosec B608
        cursor.execute(_upsert_tally(tally, skip_zero=False))
        cursor.execute(_upsert_project_revenue([revenue], skip_zero=False))
