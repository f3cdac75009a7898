"""Recompute the marketplace stats' running totals from the rows, or check them (--check)."""

from django.core.management.base import BaseCommand, CommandError
from django.db import connection, transaction

from marketplace import tallies
from marketplace.stats import stats_tallies_agree


class Command(BaseCommand):
    help = (
        "Recompute the marketplace stats' tallies from purchases, reviews, downloads and "
        "revenue events: after a load that bypassed triggers (session_replication_role = "
        "replica, pg_restore --disable-triggers). PostgreSQL only."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--check", action="store_true", help="only compare; exit 1 when they differ"
        )

    def handle(self, *args, check=False, **options):
        if connection.vendor != "postgresql":
            raise CommandError("Only PostgreSQL keeps tallies; SQLite sums the rows each time.")
        if check:
            if not stats_tallies_agree():
                raise CommandError("The stats' tallies differ from the rows: run without --check.")
            self.stdout.write("The stats' tallies agree with the rows.")
            return
        with transaction.atomic():
            tallies.rebuild()
        self.stdout.write("The stats' tallies were recomputed from the rows.")
