"""Large projects' zips built once on a worker and kept in the file storage.

A download of a project whose files add up to PROJECT_ZIP_STORE_BYTES or more is served from a
zip in the storage when one matches the project's content; otherwise it is streamed as before
and a worker builds the zip for the next download. The zip's name is a digest of what goes in
it (the folder name, each file's path and content), so a changed project gets a new zip and the
old one is deleted when the new one is in. Without CELERY_BROKER_URL nothing is built: every
download streams (one process needs no shared copy)."""

import hashlib
import logging
import tempfile

from django.conf import settings
from django.core.cache import cache
from django.core.files.base import ContentFile, File
from django.core.files.storage import default_storage
from django.db import connection
from django.db.models import Sum
from kombu.exceptions import KombuError

from projects.models import Project, ProjectFile

logger = logging.getLogger(__name__)

STORAGE_DIR = "project-zips"
# One build of a given zip at a time, across workers; it expires should its worker die.
BUILD_LOCK_SECONDS = 15 * 60


def project_files_size(project: Project) -> int:
    return ProjectFile.objects.filter(project=project).aggregate(total=Sum("size"))["total"] or 0


def project_zip_key(project: Project) -> str:
    """A digest of the zip's content: the archive's folder name, each file's path and content."""
    from marketplace.downloads import project_archive_name

    digest = hashlib.sha256(project_archive_name(project).encode())
    if connection.vendor == "postgresql":
        # The database digests the contents: they are not shipped here to be hashed.
        table = connection.ops.quote_name(ProjectFile._meta.db_table)
        with connection.cursor() as cursor:
            cursor.execute(
                f"SELECT md5(string_agg(md5(path) || md5(content), ',' ORDER BY path))"  # noqa: S608  # nosec B608
                f" FROM {table} WHERE project_id = %s",
                [project.pk],
            )
            digest.update((cursor.fetchone()[0] or "").encode())
    else:
        files = ProjectFile.objects.filter(project=project).order_by("path")
        for path, content in files.values_list("path", "content").iterator(chunk_size=1):
            digest.update(hashlib.md5(path.encode(), usedforsecurity=False).digest())
            digest.update(hashlib.md5(content.encode(), usedforsecurity=False).digest())
    return digest.hexdigest()[:40]


def project_zip_name(project: Project, key: str) -> str:
    return f"{STORAGE_DIR}/{project.pk}/{key}.zip"


def _ready_name(name: str) -> str:
    # Written after the zip: a file storage shows a zip while it is being written.
    return f"{name}.ready"


def project_zip_stored(project: Project) -> str | None:
    """The stored zip to serve for this download, or None to stream it. A large project with no
    zip for its current content has one built by a worker (at most one build at a time)."""
    threshold = settings.PROJECT_ZIP_STORE_BYTES
    if not threshold or not settings.CELERY_BROKER_URL:
        return None
    if project_files_size(project) < threshold:
        return None
    key = project_zip_key(project)
    name = project_zip_name(project, key)
    if default_storage.exists(_ready_name(name)):
        return name
    lock = f"project-zip-build:{key}"
    if cache.add(lock, 1, timeout=BUILD_LOCK_SECONDS):
        from marketplace.tasks import build_project_zip

        try:
            build_project_zip.delay(str(project.pk))
        except KombuError:
            # The queue is down: this download streams all the same; a later one asks again.
            logger.warning("could not queue the zip of project %s", project.pk, exc_info=True)
            cache.delete(lock)
    return None


def project_zip_build(project_id: str) -> str | None:
    """Build the project's zip into the storage unless it is there; delete the project's older
    zips. Returns the stored name (None when the project is gone). Safe to run twice."""
    from marketplace.downloads import stream_project_zip

    project = Project.objects.filter(pk=project_id).first()
    if project is None:
        return None
    key = project_zip_key(project)
    name = project_zip_name(project, key)
    if not default_storage.exists(_ready_name(name)):
        default_storage.delete(name)  # a build whose worker died part-way
        with tempfile.TemporaryFile(prefix="project-zip-") as spool:
            for chunk in stream_project_zip(project):
                spool.write(chunk)
            spool.seek(0)
            # The files may have changed while the zip was written: keep it only if not.
            if project_zip_key(project) != key:
                logger.info("project %s changed while its zip was built; not kept", project_id)
                cache.delete(f"project-zip-build:{key}")
                return None
            stored = default_storage.save(name, File(spool))
        if stored != name:  # another build is storing it too: keep one
            default_storage.delete(stored)
        else:
            default_storage.save(_ready_name(name), ContentFile(b""))
    folder = f"{STORAGE_DIR}/{project.pk}"
    _dirs, files = default_storage.listdir(folder)
    for other in files:
        if not other.startswith(f"{key}.zip"):
            default_storage.delete(f"{folder}/{other}")
    cache.delete(f"project-zip-build:{key}")
    return name


def project_zips_delete(project_id) -> None:
    """Delete every stored zip of a project (when it is deleted)."""
    folder = f"{STORAGE_DIR}/{project_id}"
    try:
        _dirs, files = default_storage.listdir(folder)
    except FileNotFoundError:
        return
    for name in files:
        default_storage.delete(f"{folder}/{name}")
