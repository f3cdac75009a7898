"""Stream a project's files as a zip without holding the whole archive in memory."""

import re
import unicodedata
import zipfile
from collections.abc import Iterator

from django.core.files.storage import default_storage
from django.http import FileResponse, StreamingHttpResponse
from django.utils.http import content_disposition_header

from marketplace.zips import project_zip_stored
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


# Characters no file name may hold on some system, and names Windows reserves for devices.
_UNSAFE = re.compile(r'[<>:"/\\|?*]')
_RESERVED = re.compile(r"^(con|prn|aux|nul|com[0-9]|lpt[0-9])(\..*)?$", re.IGNORECASE)
MAX_NAME = 100


def project_archive_name(project: Project) -> str:
    """The project's name as a folder and file name that is safe everywhere: the zip is
    "<name>.zip" and holds its files under "<name>/"."""
    name = unicodedata.normalize("NFC", project.name)
    # Control and format characters (bidirectional overrides among them) go.
    name = "".join(" " if unicodedata.category(char) in ("Cc", "Cf") else char for char in name)
    name = " ".join(_UNSAFE.sub(" ", name).split())[:MAX_NAME].strip(" .")
    if not name or _RESERVED.match(name):
        name = f"{name} project".strip()
    return name


def project_zip_response(project: Project) -> StreamingHttpResponse | FileResponse:
    """The project's zip as an attachment named after the project (pages and API): a large
    project's from the file storage when a worker has built it (marketplace.zips), else
    streamed."""
    stored = project_zip_stored(project)
    if stored is not None:
        response = FileResponse(default_storage.open(stored, "rb"), content_type="application/zip")
    else:
        response = StreamingHttpResponse(
            stream_project_zip(project), content_type="application/zip"
        )
    response["Content-Disposition"] = content_disposition_header(
        True, f"{project_archive_name(project)}.zip"
    )
    response["Cache-Control"] = "no-store"
    return response


def stream_project_zip(project: Project) -> Iterator[bytes]:
    """Yield the zip archive of the project's files, one file at a time, all in one folder
    named after the project (unzipping never scatters files into the current folder)."""
    folder = project_archive_name(project)
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
            info = zipfile.ZipInfo(f"{folder}/{path}")
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o644 << 16
            with archive.open(info, mode="w") as entry:
                entry.write(content.encode("utf-8"))
            yield sink.drain()
    yield sink.drain()
