from django.db import migrations

# The marketplace stats' review count and average leave out reviews whose purchase was
# refunded (Review.purchase_refunded), as the listings' ratings do. This replaces the review
# table's trigger function and recomputes the review tallies from the rows; backwards, it puts
# back the function of 0002_stats_tallies and recomputes likewise.
#
# A frozen copy of what marketplace/tallies.py generated when this migration was written, with
# the table names written out: it must not import the live module (see 0002_stats_tallies).
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
REVIEW = "marketplace_review"
STATS_TALLY = '"marketplace_statstally"'
# What one review `r` adds to its tally: before (0002) and after this migration.
COUNTED_BEFORE = {"reviews": "1", "rating_sum": "r.rating"}
COUNTED_AFTER = {
    "reviews": "(NOT r.purchase_refunded)::int",
    "rating_sum": "CASE WHEN r.purchase_refunded THEN 0 ELSE r.rating END",
}


def _deltas(counts, source, sign):
    values = ", ".join(f"{sign}({counts.get(name, '0')}) AS {name}" for name in COUNTS)
    shard = f"hashtext(r.project_id::text) & {SHARDS - 1}"
    return f"SELECT {shard} AS shard, '' AS currency, {values} FROM {source} r"


def _upsert_tally(parts, *, skip_zero):
    sums = ", ".join(f"sum({name})" for name in COUNTS)
    having = " OR ".join(f"sum({name}) <> 0" for name in COUNTS)
    updates = ", ".join(f"{name} = t.{name} + excluded.{name}" for name in COUNTS)
    return f"""
        INSERT INTO {STATS_TALLY} AS t (shard, currency, {", ".join(COUNTS)})
        SELECT shard, currency, {sums} FROM ({" UNION ALL ".join(parts)}) deltas
        GROUP BY shard, currency {f"HAVING {having}" if skip_zero else ""}
        ORDER BY shard, currency
        ON CONFLICT (shard, currency) DO UPDATE SET {updates}
    """


def function_sql(counts):
    """The review table's trigger function (its three triggers call it by name and stay)."""
    branches = {
        "INSERT": [("new_rows", "+")],
        "DELETE": [("old_rows", "-")],
        "UPDATE": [("new_rows", "+"), ("old_rows", "-")],
    }
    body = "\n".join(
        f"{'IF' if index == 0 else 'ELSIF'} TG_OP = '{operation}' THEN\n"
        + _upsert_tally([_deltas(counts, source, sign) for source, sign in sources], skip_zero=True)
        + ";\n"
        for index, (operation, sources) in enumerate(branches.items())
    )
    return (
        f"CREATE OR REPLACE FUNCTION {REVIEW}_tally() RETURNS trigger LANGUAGE plpgsql AS $$\n"
        f"BEGIN\n{body}END IF;\nRETURN NULL;\nEND $$"
    )


def recount_sql(counts):
    return [
        # Review writers wait for this migration (SHARE), so none is counted by the old
        # function after the recount; the tally lock is the one manage.py
        # rebuild_stats_tallies takes.
        f'LOCK TABLE "{REVIEW}" IN SHARE MODE',
        f"LOCK TABLE {STATS_TALLY} IN EXCLUSIVE MODE",
        function_sql(counts),
        f"UPDATE {STATS_TALLY} SET reviews = 0, rating_sum = 0 "
        "WHERE reviews <> 0 OR rating_sum <> 0",
        _upsert_tally([_deltas(counts, f'"{REVIEW}"', "+")], skip_zero=True),
    ]


def leave_refunded_reviews_out(apps, schema_editor):
    """PostgreSQL keeps the stats' tallies; SQLite reads the rows."""
    if schema_editor.connection.vendor != "postgresql":
        return
    for statement in recount_sql(COUNTED_AFTER):
        schema_editor.execute(statement)


def count_every_review(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    for statement in recount_sql(COUNTED_BEFORE):
        schema_editor.execute(statement)


class Migration(migrations.Migration):
    dependencies = [
        ("marketplace", "0007_merge_20261207_0259"),
    ]

    operations = [
        migrations.RunPython(leave_refunded_reviews_out, count_every_review),
    ]
