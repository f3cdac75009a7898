"""Stream a project's files as a zip without holding the whole archive in memory."""

import zipfile
from collections.abc import Iterator

from django.utils.text import slugify

from projects.models import Project, ProjectFile


class _ChunkSink:
    """A write-only file object for ZipFile that hands out what was written so far."""

    def __init__(self) -> None:
        self._chunks: list[bytes] = []
        self._offset = 0

    def write(self, data: bytes) -> int:
        self._chunks.append(bytes(data))
        self._offset += len(data)
        return len(data)

    def tell(self) -> int:
        return self._offset

    def flush(self) -> None:
        pass

    def drain(self) -> bytes:
        data = b"".join(self._chunks)
        self._chunks.clear()
        return data


def project_zip_filename(project: Project) -> str:
    return f"{slugify(project.name) or 'project'}.zip"


def stream_project_zip(project: Project) -> Iterator[bytes]:
    """Yield the zip archive of the project's files, one file at a time."""
    sink = _ChunkSink()
    files = (
        ProjectFile.objects.filter(project=project)
        .order_by("path")
        .values_list("path", "content")
        # One file per fetch: files may be 1 MiB each, and a batch would hold them all at once.
        .iterator(chunk_size=1)
    )
    with zipfile.ZipFile(sink, mode="w", compression=zipfile.ZIP_DEFLATED) as archive:
        for path, content in files:
            info = zipfile.ZipInfo(path)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o644 << 16
            with archive.open(info, mode="w") as entry:
                entry.write(content.encode("utf-8"))
            yield sink.drain()
    yield sink.drain()
