"""Fill a PostgreSQL database with a realistic marketplace for the benchmark.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/atelier_bench .venv/bin/python bench/seed.py
    ... bench/seed.py --scale 0.1          # a tenth: 20,000 projects, 100,000 reviews, ...
    ... bench/seed.py --if-needed          # nothing to do when this scale is already seeded

At scale 1: 20,000 users, 200,000 projects (50,000 published), 1,000,000 reviews, 1,000,000
chat messages, 200,000 purchases (2% refunded) with their revenue events, 100,000 downloads.
Rows go in through COPY, one committed stage per table, so a run cut short (a database restart)
resumes where it stopped; every stage draws from its own seeded generator, so a resumed run
writes the same rows. The counters (purchase_count, download_count, review_count, rating_avg)
are then set by set-based UPDATEs as the services compute them, and the search vectors by
projects.services.project_refresh_search_vector. Every constraint holds: one completed purchase
per buyer and project, one review per author and project, nobody buys or reviews their own
project, gross = fee + net; foreign keys are right by construction (the loading session skips
their triggers) and checked at the end. The database is emptied first (TRUNCATE ... CASCADE):
point it only at a benchmark database.
"""

import argparse
import datetime as dt
import os
import random
import sys
import time
import uuid
from decimal import Decimal
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
os.environ.setdefault("SECRET_KEY", "bench-only-secret-key")
os.environ.setdefault("FERNET_KEYS", "bench-only-fernet-key")

BASE = {
    "users": 20_000,
    "projects": 200_000,
    "published": 50_000,
    "reviews": 1_000_000,
    "messages": 1_000_000,
    "purchases": 200_000,
    "downloads": 100_000,
}
PASSWORD = "bench-password-1"  # noqa: S105 - every seeded user's password
MARKER_TABLE = "bench_seed"
STAGE_TABLE = "bench_seed_stage"
ATTEMPTS = 4
NOW = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
YEAR_SECONDS = 365 * 24 * 3600
WORDS = (  # noqa: SIM905 - a sentence reads better than 80 quoted words
    "agent parse invoice totals weather kanban board python script deploy model data pipeline "
    "scraper chat bot summarise report dashboard budget tracker calendar notes markdown editor "
    "search index vector embedding image resize upload queue worker cron backup sync export csv "
    "json yaml config lint format test runner api gateway proxy cache redis postgres sqlite "
    "terminal shell prompt template starter landing page blog shop cart checkout payment email "
    "newsletter translate speech audio video stream game puzzle chess music playlist recipe"
).split()
TAGS = (  # noqa: SIM905
    "python javascript typescript rust go django react vue cli api ai llm agent data etl "
    "pdf csv automation devops testing docs"
).split()
CATEGORIES = ("ai-agent", "web-app", "api", "cli", "data", "template", "other")
PRICES = [Decimal(p) for p in ("4.99", "9.99", "14.50", "19.00", "29.99", "49.00", "99.00")]
TITLES = ("Great", "Works well", "Useful", "Not bad", "Saved me hours", "Needs docs", "Solid")

# The rating as marketplace.services.project_refresh_rating leaves it:
# Decimal(str(sum / n)).quantize(CENT), which rounds an exact tie (x.xx5) half to even.
RATING_SQL = """
    CASE WHEN (200 * s.stars) % s.n = 0 AND (100 * s.stars) % s.n <> 0
         THEN (floor(100.0 * s.stars / s.n) + (floor(100.0 * s.stars / s.n)::bigint % 2)) / 100
         ELSE round(s.stars::numeric / s.n, 2) END
"""
COUNTER_UPDATES = (
    "UPDATE projects_project p SET purchase_count = s.n FROM (SELECT project_id, count(*) n"
    " FROM marketplace_purchase WHERE status = 'completed' GROUP BY project_id) s"
    " WHERE p.id = s.project_id",
    # A seller's own downloads do not count (marketplace.services.download_token_redeem).
    "UPDATE projects_project p SET download_count = s.n FROM (SELECT d.project_id, count(*) n"
    " FROM marketplace_download d JOIN projects_project o ON o.id = d.project_id"
    " AND o.owner_id <> d.user_id GROUP BY d.project_id) s WHERE p.id = s.project_id",
    f"UPDATE projects_project p SET review_count = s.n, rating_avg = {RATING_SQL}"  # noqa: S608
    " FROM (SELECT project_id, count(*) n, sum(rating) stars FROM marketplace_review"
    " GROUP BY project_id) s WHERE p.id = s.project_id",
)
FOREIGN_KEYS = (  # (table, column, referenced table): checked after the load
    ("projects_project", "owner_id", "auth_user"),
    ("marketplace_review", "author_id", "auth_user"),
    ("marketplace_review", "project_id", "projects_project"),
    ("marketplace_purchase", "buyer_id", "auth_user"),
    ("marketplace_purchase", "project_id", "projects_project"),
    ("marketplace_revenueevent", "purchase_id", "marketplace_purchase"),
    ("marketplace_revenueevent", "seller_id", "auth_user"),
    ("marketplace_download", "user_id", "auth_user"),
    ("marketplace_download", "project_id", "projects_project"),
    ("chat_chatmessage", "owner_id", "auth_user"),
    ("chat_chatmessage", "project_id", "projects_project"),
)


def counts_for(scale: float) -> dict[str, int]:
    counts = {name: max(1, round(value * scale)) for name, value in BASE.items()}
    counts["users"] = max(counts["users"], 50)
    counts["published"] = min(counts["published"], counts["projects"])
    return counts


def zipf_counts(rng: random.Random, items: list, total: int, cap: int, exponent: float) -> dict:
    """About `total` spread over `items` (already in popularity order), at most `cap` each,
    keyed by each item's id (its first element)."""
    weights = [1 / (rank + 1) ** exponent for rank in range(len(items))]
    norm = total / sum(weights)
    result = {}
    for item, weight in zip(items, weights, strict=True):
        exact = weight * norm
        n = int(exact) + (1 if rng.random() < exact - int(exact) else 0)
        if n:
            result[item[0]] = min(n, cap)
    return result


def words(rng: random.Random, n: int) -> str:
    return " ".join(rng.choices(WORDS, k=n))


def moment(rng: random.Random, not_before: dt.datetime | None = None) -> dt.datetime:
    start = not_before or NOW - dt.timedelta(seconds=YEAR_SECONDS)
    span = max(1, int((NOW - start).total_seconds()))
    return start + dt.timedelta(seconds=rng.randrange(span), microseconds=rng.randrange(10**6))


def new_uuid(rng: random.Random) -> uuid.UUID:
    return uuid.UUID(int=rng.getrandbits(128), version=4)


class Seeder:
    STAGES = ("users", "projects", "purchases", "downloads", "reviews", "messages", "counters")

    def __init__(self, connection, counts: dict[str, int], seed: int, progress) -> None:
        self.db = connection
        self.n = counts
        self.seed = seed
        self.progress = progress
        plan = self.rng("plan")
        self.user_ids = list(range(1, counts["users"] + 1))
        # (id, owner, published, price, created_at); the first `published` are on sale, in
        # popularity order.
        self.projects = []
        for i in range(counts["projects"]):
            published = i < counts["published"]
            free = not published or plan.random() < 0.2
            price = Decimal("0.00") if free else plan.choice(PRICES)
            owner = plan.choice(self.user_ids)
            self.projects.append((new_uuid(plan), owner, published, price, moment(plan)))
        self.listed = self.projects[: counts["published"]]

    def rng(self, stage: str) -> random.Random:
        return random.Random(f"{self.seed}:{stage}")  # noqa: S311 - reproducible, not secret

    def copy(self, table: str, columns: str, rows, total: int) -> None:
        sql = f"COPY {table} ({columns}) FROM STDIN"
        with self.db.cursor() as cursor, cursor.copy(sql) as copy:
            for row in self.progress(rows, total=total, desc=table, unit="row", leave=True):
                copy.write_row(row)

    def run(self) -> None:
        """Each stage in its own transaction, skipped when an earlier run committed it."""
        with self.db.cursor() as cursor:
            cursor.execute("SET synchronous_commit = off")
            cursor.execute("SET session_replication_role = replica")  # no FK triggers
            cursor.execute(f"SELECT name FROM {STAGE_TABLE}")  # noqa: S608
            done = {row[0] for row in cursor.fetchall()}
        self.db.commit()
        for stage in self.STAGES:
            if stage in done:
                print(f"seed: {stage} already written", flush=True)
                continue
            started = time.monotonic()
            getattr(self, f"seed_{stage}")()
            with self.db.cursor() as cursor:
                cursor.execute(f"INSERT INTO {STAGE_TABLE} VALUES (%s)", [stage])  # noqa: S608
            self.db.commit()
            print(f"seed: {stage} in {time.monotonic() - started:.0f}s", flush=True)

    def seed_users(self) -> None:
        from django.contrib.auth.hashers import make_password

        rng, password = self.rng("users"), make_password(PASSWORD)
        self.copy(
            "auth_user",
            "id, password, is_superuser, username, first_name, last_name, email, is_staff,"
            " is_active, date_joined",
            (
                # the first user is a superuser: the benchmark reads the stats as that user (the
                # "read revenue" power; being staff alone grants no power)
                (
                    uid,
                    password,
                    uid == 1,
                    f"user{uid:06d}",
                    "",
                    "",
                    f"user{uid:06d}@example.com",
                    uid == 1,
                    True,
                    moment(rng),
                )
                for uid in self.user_ids
            ),
            len(self.user_ids),
        )
        with self.db.cursor() as cursor:
            cursor.execute(
                "SELECT setval(pg_get_serial_sequence('auth_user', 'id'), %s)", [len(self.user_ids)]
            )

    def seed_projects(self) -> None:
        from psycopg.types.json import Jsonb

        rng = self.rng("projects")

        def rows():
            for pid, owner, published, price, created in self.projects:
                archived = not published and rng.random() < 0.05
                published_at = moment(rng, created) if published else None
                tags = sorted(set(rng.choices(TAGS, k=rng.randint(0, 4))))
                yield (
                    pid, owner, f"{words(rng, 3).capitalize()} {rng.randrange(10**4)}",
                    words(rng, rng.randint(10, 40)), "archived" if archived else "active",
                    created, published_at or created, published, published_at, price, "USD",
                    rng.choice(CATEGORIES), Jsonb(tags), 0, 0, 0,
                )  # fmt: skip

        self.copy(
            "projects_project",
            "id, owner_id, name, description, status, created_at, updated_at, is_published,"
            " published_at, price, currency, category, tags, purchase_count, download_count,"
            " review_count",
            rows(),
            len(self.projects),
        )

    def seed_purchases(self) -> None:
        from psycopg.types.json import Jsonb

        from marketplace.services import split_amount

        rng = self.rng("purchases")
        paid = [p for p in self.listed if p[3] > 0]
        per_project = zipf_counts(rng, paid, self.n["purchases"], len(self.user_ids) - 1, 0.8)
        events, empty = [], Jsonb({})

        def rows():
            for pid, owner, _, price, created in paid:
                count = per_project.get(pid, 0)
                if not count:
                    continue
                buyers = [b for b in rng.sample(self.user_ids, count + 1) if b != owner][:count]
                for buyer in buyers:
                    purchase_id, at = new_uuid(rng), moment(rng, created)
                    refunded_at = moment(rng, at) if rng.random() < 0.02 else None
                    fee, net = split_amount(price)
                    events.append((new_uuid(rng), "purchase", price, fee, net, at, buyer))
                    events[-1] += (pid, purchase_id, owner)
                    if refunded_at:
                        fee, net = split_amount(-price)
                        events.append((new_uuid(rng), "refund", -price, fee, net, refunded_at))
                        events[-1] += (buyer, pid, purchase_id, owner)
                    status = "refunded" if refunded_at else "completed"
                    yield (purchase_id, price, "USD", status, at, refunded_at, buyer, pid)

        self.copy(
            "marketplace_purchase",
            "id, amount, currency, status, created_at, refunded_at, buyer_id, project_id",
            rows(),
            sum(per_project.values()),
        )
        self.copy(
            "marketplace_revenueevent",
            "id, kind, gross, platform_fee, seller_net, created_at, buyer_id, project_id,"
            " purchase_id, seller_id, currency, metadata",
            ((*event, "USD", empty) for event in events),
            len(events),
        )

    def seed_downloads(self) -> None:
        rng = self.rng("downloads")
        free, users = [p for p in self.listed if p[3] == 0], self.user_ids
        per_project = zipf_counts(rng, free, self.n["downloads"], 10**9, 0.8)
        self.copy(
            "marketplace_download",
            "id, created_at, ip, user_agent, project_id, user_id",
            (
                (new_uuid(rng), moment(rng, created), "127.0.0.1", "bench", pid, rng.choice(users))
                for pid, _, _, _, created in free
                for _ in range(per_project.get(pid, 0))
            ),
            sum(per_project.values()),
        )

    def seed_reviews(self) -> None:
        rng = self.rng("reviews")
        per_project = zipf_counts(rng, self.listed, self.n["reviews"], len(self.user_ids) - 1, 0.7)

        def rows():
            for pid, owner, _, _, created in self.listed:
                count = per_project.get(pid, 0)
                if not count:
                    continue
                quality = rng.random()
                authors = [a for a in rng.sample(self.user_ids, count + 1) if a != owner][:count]
                for author in authors:
                    rating = 5 if rng.random() < quality else rng.randint(1, 5)
                    at, title = moment(rng, created), rng.choice(TITLES)
                    yield (new_uuid(rng), rating, title, words(rng, 12), at, at, author, pid)

        self.copy(
            "marketplace_review",
            "id, rating, title, body, created_at, updated_at, author_id, project_id",
            rows(),
            sum(per_project.values()),
        )

    def seed_messages(self) -> None:
        from psycopg.types.json import Jsonb

        rng = self.rng("messages")
        by_owner: dict[int, list[uuid.UUID]] = {}
        for pid, owner, *_ in self.projects:
            by_owner.setdefault(owner, []).append(pid)
        # A few users chat a lot: the benchmark reads the busiest one's messages.
        weights = [1 / (i + 1) for i in range(len(self.user_ids))]
        owners = rng.choices(self.user_ids, weights=weights, k=self.n["messages"])
        start, empty = NOW - dt.timedelta(days=180), Jsonb({})
        step = dt.timedelta(days=180) / len(owners)

        def rows():
            for i, owner in enumerate(owners):
                own = by_owner.get(owner)
                project = rng.choice(own) if own and rng.random() < 0.5 else None
                role = "user" if i % 2 == 0 else "assistant"
                yield (
                    owner,
                    project,
                    role,
                    words(rng, rng.randint(5, 30)),
                    empty,
                    start + step * i,
                )

        self.copy(
            "chat_chatmessage",
            "owner_id, project_id, role, content, metadata, created_at",
            rows(),
            len(owners),
        )

    def seed_counters(self) -> None:
        from marketplace import tallies
        from projects.services import project_refresh_search_vector

        with self.db.cursor() as cursor:
            for sql in COUNTER_UPDATES:
                cursor.execute(sql)
        project_refresh_search_vector()
        tallies.rebuild()  # the COPYs ran without triggers


def verify(connection, counts: dict[str, int]) -> None:
    """Every table is filled, no row points nowhere, and the counters agree with the rows."""
    tables = {
        "users": "auth_user",
        "projects": "projects_project",
        "reviews": "marketplace_review",
        "messages": "chat_chatmessage",
        "purchases": "marketplace_purchase",
        "revenue events": "marketplace_revenueevent",
        "downloads": "marketplace_download",
    }
    checks = {
        "review_count": "SELECT count(*) FROM projects_project p WHERE review_count <>"
        " (SELECT count(*) FROM marketplace_review r WHERE r.project_id = p.id)",
        "purchase_count": "SELECT count(*) FROM projects_project p WHERE purchase_count <>"
        " (SELECT count(*) FROM marketplace_purchase x WHERE x.project_id = p.id"
        " AND x.status = 'completed')",
        "download_count": "SELECT count(*) FROM projects_project p WHERE download_count <>"
        " (SELECT count(*) FROM marketplace_download d WHERE d.project_id = p.id"
        " AND d.user_id <> p.owner_id)",
        "search_vector": "SELECT count(*) FROM projects_project WHERE search_vector IS NULL",
    }
    with connection.cursor() as cursor:
        found = {}
        for name, table in tables.items():
            cursor.execute(f"SELECT count(*) FROM {table}")  # noqa: S608 - our own names
            found[name] = cursor.fetchone()[0]
        print("seed: wrote " + ", ".join(f"{value:,} {name}" for name, value in found.items()))
        for name in ("users", "projects", "reviews", "messages", "purchases", "downloads"):
            if found[name] < counts[name] * 0.8:
                raise SystemExit(f"seed: only {found[name]:,} {name} of {counts[name]:,}")
        for table, column, target in FOREIGN_KEYS:
            cursor.execute(
                f"SELECT count(*) FROM {table} x WHERE x.{column} IS NOT NULL"  # noqa: S608
                f" AND NOT EXISTS (SELECT 1 FROM {target} t WHERE t.id = x.{column})"
            )
            if cursor.fetchone()[0]:
                raise SystemExit(f"seed: {table}.{column} points nowhere")
        for name, sql in checks.items():
            cursor.execute(sql)
            wrong = cursor.fetchone()[0]
            if wrong:
                raise SystemExit(f"seed: {wrong} projects have a wrong {name}")
    from marketplace.stats import stats_tallies_agree

    if not stats_tallies_agree():
        raise SystemExit("seed: the stats tallies differ from the rows")


def seeded_scale(connection) -> tuple | None:
    """(scale, seed) of the finished seeding in this database, if any."""
    from django.db import DatabaseError

    try:
        with connection.cursor() as cursor:
            cursor.execute(f"SELECT scale, seed FROM {MARKER_TABLE}")  # noqa: S608
            return cursor.fetchone()
    except DatabaseError:
        return None


def start_fresh(connection, scale: float, seed: int) -> None:
    """Empty the database unless an unfinished run of the same scale and seed can resume."""
    with connection.cursor() as cursor:
        cursor.execute(f"DROP TABLE IF EXISTS {MARKER_TABLE}")
        cursor.execute("SELECT to_regclass(%s)", [STAGE_TABLE])
        if cursor.fetchone()[0] is not None:
            cursor.execute(f"SELECT DISTINCT scale, seed FROM {STAGE_TABLE}")  # noqa: S608
            if cursor.fetchall() == [(scale, seed)]:
                return
        cursor.execute(f"DROP TABLE IF EXISTS {STAGE_TABLE}")
        cursor.execute("TRUNCATE auth_user, projects_project RESTART IDENTITY CASCADE")
        cursor.execute(
            f"CREATE TABLE {STAGE_TABLE} (name text PRIMARY KEY,"
            f" scale float DEFAULT {float(scale)}, seed int DEFAULT {int(seed)})"
        )


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--scale", type=float, default=1.0)
    parser.add_argument("--seed", type=int, default=9)
    parser.add_argument("--if-needed", action="store_true", help="skip if seeded at this scale")
    args = parser.parse_args(argv)
    url = os.environ.get("DATABASE_URL", "")
    if not url.startswith("postgres"):
        raise SystemExit("seed: set DATABASE_URL=postgres://... (a benchmark database)")

    ensure_database(url)
    import django

    django.setup()
    import psycopg
    from django.core.management import call_command
    from django.db import DatabaseError, connection
    from tqdm import tqdm

    call_command("migrate", verbosity=0, interactive=False)  # also a seeded database's schema
    if args.if_needed and seeded_scale(connection) == (args.scale, args.seed):
        record_listings_generation()
        print(f"seed: already seeded at scale {args.scale:g}")
        return 0
    counts = counts_for(args.scale)
    print("seed: " + ", ".join(f"{value:,} {name}" for name, value in counts.items()))
    started = time.monotonic()
    start_fresh(connection, args.scale, args.seed)
    for attempt in range(1, ATTEMPTS + 1):
        try:
            connection.ensure_connection()
            raw = connection.connection
            raw.autocommit = False
            Seeder(raw, counts, args.seed, tqdm).run()
            raw.autocommit = True
            break
        except (DatabaseError, psycopg.OperationalError) as exc:  # a restart: resume
            if attempt == ATTEMPTS:
                raise
            print(f"seed: the database went away ({exc}); resuming", flush=True)
            connection.close()
            time.sleep(5)
    verify(connection, counts)
    with connection.cursor() as cursor:
        cursor.execute("VACUUM ANALYZE")
        cursor.execute(
            f"CREATE TABLE {MARKER_TABLE} (scale float, seed int, seeded_at timestamptz)"
        )
        cursor.execute(
            f"INSERT INTO {MARKER_TABLE} VALUES (%s, %s, now())",  # noqa: S608
            [args.scale, args.seed],
        )
        cursor.execute(f"DROP TABLE {STAGE_TABLE}")
    record_listings_generation()
    print(f"seed: done in {time.monotonic() - started:.0f}s")
    return 0


def record_listings_generation() -> None:
    """Leave the database as a site is once any listing was ever written: its listings
    generation kept in the database, which the listings page reads beside its rows. A fresh
    seed has none, and the page then asks the cache for its count on every request, which no
    running site does."""
    from marketplace.generations import LISTINGS, database_generation_bump
    from marketplace.models import CacheGeneration

    if not CacheGeneration.objects.filter(name=LISTINGS).exists():
        database_generation_bump(LISTINGS)


def ensure_database(url: str) -> None:
    """Create the database named in the URL if it does not exist yet."""
    import dj_database_url
    import psycopg

    config = dj_database_url.parse(url)
    params = {
        "host": config["HOST"] or None,
        "port": config["PORT"] or None,
        "user": config["USER"] or None,
        "password": config["PASSWORD"] or None,
        "dbname": "postgres",
        "autocommit": True,
    }
    with psycopg.connect(**{k: v for k, v in params.items() if v is not None}) as admin:
        exists = admin.execute(
            "SELECT 1 FROM pg_database WHERE datname = %s", [config["NAME"]]
        ).fetchone()
        if not exists:
            admin.execute(f'CREATE DATABASE "{config["NAME"]}"')


if __name__ == "__main__":
    sys.exit(main())
