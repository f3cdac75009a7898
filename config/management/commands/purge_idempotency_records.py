"""Delete Idempotency-Key records older than a day (expired ones no longer bind their key)."""

from django.core.management.base import BaseCommand

from config.api.idempotency import idempotency_records_purge


class Command(BaseCommand):
    help = "Delete expired Idempotency-Key records. Safe to run at any time, e.g. hourly."

    def handle(self, *args, **options):
        deleted = idempotency_records_purge()
        self.stdout.write(f"Deleted {deleted} expired idempotency records.")
