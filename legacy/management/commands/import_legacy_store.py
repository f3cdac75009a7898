"""manage.py import_legacy_store FILE: load the old store's dump, checked, in one transaction."""

import resource
import sys
import time

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from legacy.dump import DumpError, open_dump
from legacy.importer import (
    DEFAULT_MEMORY_BUDGET,
    MB,
    ImportFailed,
    LegacyImport,
    summary_table,
)
from legacy.report import RejectedRowsReport


class PlainProgress:
    """Log lines instead of a bar when the output is not a terminal."""

    EVERY = 100_000

    def __init__(self, name: str, write):
        self.name, self.write, self.count, self.started = name, write, 0, time.monotonic()

    def update(self, n: int) -> None:
        before = self.count // self.EVERY
        self.count += n
        if self.count // self.EVERY > before:
            self.write(f"{self.name}: {self.count:,} rows read")

    def close(self) -> None:
        seconds = time.monotonic() - self.started
        self.write(f"{self.name}: {self.count:,} rows read in {seconds:.1f} s")


class Command(BaseCommand):
    help = "Import a memstorage-v1 dump of the old store (a path, - for standard input, or .gz)."

    def add_arguments(self, parser):
        parser.add_argument("file", help="the dump: a JSON file, a .gz of one, or - for stdin")
        parser.add_argument(
            "--skip-invalid",
            action="store_true",
            help="import the valid rows and report the others instead of writing nothing",
        )
        parser.add_argument("--report", help="with --skip-invalid: write rejected rows here (JSON)")
        parser.add_argument(
            "--dry-run", action="store_true", help="check and count everything, commit nothing"
        )
        parser.add_argument("--batch-size", type=int, default=5000)
        parser.add_argument(
            "--memory-budget",
            type=float,
            default=getattr(settings, "LEGACY_IMPORT_MEMORY_BUDGET_MB", DEFAULT_MEMORY_BUDGET / MB),
            metavar="MB",
            help="memory for the ids and facts the checks need; past it they go to a "
            "temporary file (default %(default)s MB)",
        )

    def handle(self, *args, **options):
        started = time.monotonic()
        report = open(options["report"], "w", encoding="utf-8") if options["report"] else None  # noqa: SIM115
        rejected_rows = RejectedRowsReport(report) if report else None

        def on_problem(problem):
            if rejected_rows:
                rejected_rows.add(problem)
                return
            for field, reason in problem.errors:
                self.stderr.write(f"{problem.map} {problem.ref!r}: {field or '(row)'}: {reason}")

        if sys.stderr.isatty():
            from tqdm import tqdm

            def progress(name):
                return tqdm(desc=name, unit=" rows", unit_scale=True, leave=True)
        else:

            def progress(name):
                return PlainProgress(name, self.stderr.write)

        stats, failure = None, None
        try:
            with open_dump(options["file"]) as source:
                importer = LegacyImport(
                    source,
                    skip_invalid=options["skip_invalid"],
                    batch_size=options["batch_size"],
                    memory_budget=options["memory_budget"] * MB,
                    on_problem=on_problem,
                    progress=progress,
                    log=self.stderr.write,
                )
                try:
                    stats = importer.run(dry_run=options["dry_run"])
                except ImportFailed as exc:
                    stats, failure = importer.stats, exc
        except DumpError as exc:
            failure = exc
        finally:
            if report:
                rejected_rows.finish(stats)
                report.close()

        if stats:
            self.stdout.write(summary_table(stats))
        if failure is not None:
            raise CommandError(str(failure))
        rows = sum(s.read for s in stats.values())
        seconds = time.monotonic() - started
        rate = rows / max(seconds, 1e-9)
        self.stderr.write(
            f"{rows:,} rows in {seconds:.1f} s ({rate:,.0f} rows/s), "
            f"peak memory {peak_memory_mb():,.0f} MB"
        )
        rejected = sum(s.rejected for s in stats.values())
        changed = sum(s.created + s.updated for s in stats.values())
        if rejected:
            where = f" (see {options['report']})" if report else ""
            self.stdout.write(f"{rejected} invalid rows were skipped{where}.")
        if options["dry_run"]:
            self.stdout.write("Dry run: nothing was written.")
        elif not changed:
            self.stdout.write("Nothing changed: the database already holds every row of this dump.")
        else:
            self.stdout.write(f"Imported: {changed} rows created or updated.")


def peak_memory_mb() -> float:
    """This process's peak resident memory: VmHWM (reset by exec, unlike ru_maxrss)."""
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
