"""manage.py export_legacy_store FILE: write the database in the old store's dump format."""

import gzip
import os

from django.core.management.base import BaseCommand

from legacy.exporter import export_store


class Command(BaseCommand):
    help = "Export every row in the memstorage-v1 format (a path, a .gz path, or - for stdout)."

    def add_arguments(self, parser):
        parser.add_argument("file", help="where to write: a path, a .gz path, or - for stdout")

    def handle(self, *args, **options):
        path = options["file"]

        def on_map(name, count):
            self.stderr.write(f"{name}: {count:,} rows")

        if path == "-":
            self.stdout.ending = ""  # the dump is written in fragments
            export_store(self.stdout, on_map=on_map)
            self.stdout.flush()
            return
        opener = gzip.open if path.endswith(".gz") else open
        partial = f"{path}.partial"
        with opener(partial, "wt", encoding="utf-8") as out:
            counts = export_store(out, on_map=on_map)
        # Only a complete export takes the file's name.
        os.replace(partial, path)
        self.stderr.write(f"Exported {sum(counts.values()):,} rows to {path}.")
