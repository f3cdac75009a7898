"""The report of an import with --skip-invalid: the rejected rows, then the summary, as JSON
(docs/legacy-import.md). Written as rows are rejected, so it never sits whole in memory."""

import json

from legacy.importer import MapStats, Problem, as_json

SUMMARY_COLUMNS = ("read", "created", "updated", "unchanged", "rejected")


def import_summary(stats: dict[str, MapStats] | None) -> dict:
    """Per map: rows read, created, updated, unchanged, rejected."""
    return {
        name: {column: getattr(figures, column) for column in SUMMARY_COLUMNS}
        for name, figures in (stats or {}).items()
    }


class RejectedRowsReport:
    def __init__(self, stream):
        self.stream = stream
        self.written = 0
        stream.write('{"format": "memstorage-v1-import-report", "rejected": [\n')

    def add(self, problem: Problem) -> None:
        self.stream.write((",\n" if self.written else "") + as_json(problem))
        self.written += 1

    def finish(self, stats: dict[str, MapStats] | None) -> None:
        self.stream.write('\n], "summary": ' + json.dumps(import_summary(stats)) + "}\n")
