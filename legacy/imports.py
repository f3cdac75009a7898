"""A legacy dump uploaded on the admin's Legacy import page, imported by a background job: the
dump is kept in Django's default storage (any node's worker reads it), the job reports the rows
read as it goes, and the report of rejected rows is written back to the storage.

The import itself is `manage.py import_legacy_store`'s (legacy.importer): the same checks, one
transaction, so a run that a killed worker left behind wrote nothing and simply runs again."""

import shutil
import tempfile
import uuid
from pathlib import PurePath

from django.conf import settings
from django.core.files.base import File
from django.core.files.storage import default_storage

from config.jobs import JobFailed, ProgressReporter, job_start
from config.models import Job
from legacy.dump import DumpError, DumpSource
from legacy.importer import DEFAULT_MEMORY_BUDGET, MB, ImportFailed, LegacyImport
from legacy.report import RejectedRowsReport, import_summary

STORAGE_DIR = "legacy-imports"
PROBLEMS_SHOWN = 20  # rejected rows listed on the job's page; the report holds them all


def legacy_import_start(*, actor, upload, skip_invalid: bool, dry_run: bool) -> tuple[Job, bool]:
    """Keep the uploaded dump in the storage and start its import; while another import is under
    way, that one is returned (and the upload not kept)."""
    suffix = ".gz" if PurePath(upload.name or "").suffix.lower() == ".gz" else ".json"
    name = default_storage.save(f"{STORAGE_DIR}/{uuid.uuid4().hex}{suffix}", upload)
    params = {
        "dump": name,
        "filename": PurePath(upload.name or "dump").name[:200],
        "size": upload.size,
        "skip_invalid": bool(skip_invalid),
        "dry_run": bool(dry_run),
    }
    job, created = job_start(kind=Job.Kind.LEGACY_IMPORT, actor=actor, params=params)
    if not created:
        default_storage.delete(name)
    return job, created


def report_name(job: Job) -> str:
    return f"{STORAGE_DIR}/report-{job.pk}.json"


def legacy_import_job_run(job: Job) -> dict:
    """The legacy-import job's work: fetch the dump from the storage, import it, store the
    report; ImportFailed and DumpError end the job as failed with what was found."""
    params = job.params
    problems: list[dict] = []
    with (
        tempfile.NamedTemporaryFile(prefix="legacy-dump-") as dump_file,
        tempfile.TemporaryFile("w+", encoding="utf-8") as report_file,
        ProgressReporter(job.pk) as reporter,
    ):
        reporter.phase = "fetching the dump"
        try:
            with default_storage.open(params["dump"], "rb") as stored:
                shutil.copyfileobj(stored, dump_file, length=1024 * 1024)
        except FileNotFoundError as exc:
            raise JobFailed("The uploaded dump is no longer in the storage.") from exc
        dump_file.flush()
        report = RejectedRowsReport(report_file)

        def on_problem(problem) -> None:
            report.add(problem)
            if len(problems) < PROBLEMS_SHOWN:
                problems.append(
                    {
                        "map": problem.map,
                        "id": str(problem.ref),
                        "problems": [
                            f"{field or '(row)'}: {reason}" for field, reason in problem.errors
                        ],
                    }
                )

        def progress(map_name: str):
            reporter.phase = f"reading {map_name}"
            return _Rows(reporter)

        def log(message: str) -> None:
            reporter.phase = message[:100]

        importer = None
        failure: Exception | None = None
        stats = None
        try:
            importer = LegacyImport(
                DumpSource(dump_file.name),
                skip_invalid=params.get("skip_invalid", False),
                memory_budget=getattr(
                    settings, "LEGACY_IMPORT_MEMORY_BUDGET_MB", DEFAULT_MEMORY_BUDGET / MB
                )
                * MB,
                on_problem=on_problem,
                progress=progress,
                log=log,
            )
            stats = importer.run(dry_run=params.get("dry_run", False))
        except ImportFailed as exc:
            stats, failure = importer.stats, exc
        except DumpError as exc:
            failure = exc
        report.finish(stats)
        report_file.seek(0)
        name = report_name(job)
        default_storage.delete(name)  # a run before this one (its worker was killed)
        default_storage.save(name, File(report_file))

    result = {
        "summary": import_summary(stats),
        "rejected": report.written,
        "changed": sum(s.created + s.updated for s in (stats or {}).values()),
        "read": sum(s.read for s in (stats or {}).values()),
        "problems": problems,
        "report": name,
        "dry_run": params.get("dry_run", False),
    }
    if failure is not None:
        raise JobFailed(str(failure), result)
    return result


class _Rows:
    """The importer's progress bar for one map: rows read, added to the job's count."""

    def __init__(self, reporter: ProgressReporter):
        self.reporter = reporter

    def update(self, n: int) -> None:
        self.reporter.done += n

    def close(self) -> None:
        pass
