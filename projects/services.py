"""Writes of projects and their files. Each runs in one transaction."""

from django.contrib.auth.models import AbstractBaseUser
from django.contrib.postgres.search import SearchVector
from django.core.exceptions import ValidationError
from django.db import IntegrityError, connection, transaction
from django.db.models import Count, Sum, TextField
from django.db.models.functions import Cast, Coalesce
from django.utils import timezone

from config.errors import Conflict, Invalid, NotFound
from config.services import validate_model
from marketplace.generations import LISTINGS, STATS, cache_bump_on_commit
from projects.models import (
    MAX_FILE_BYTES,
    MAX_FILES_PER_PROJECT,
    MAX_PROJECT_BYTES,
    Project,
    ProjectFile,
)
from projects.validation import normalize_file_path

SEARCH_VECTOR = (
    SearchVector("name", weight="A", config="english")
    + SearchVector(Cast("tags", TextField()), weight="A", config="english")
    + SearchVector("description", weight="B", config="english")
)


def project_refresh_search_vector(*, project_ids=None) -> None:
    """Recompute the full-text vector of the given projects (all when None). PostgreSQL only."""
    if connection.vendor != "postgresql":
        return
    queryset = Project.objects.all()
    if project_ids is not None:
        queryset = queryset.filter(pk__in=list(project_ids))
    queryset.update(search_vector=SEARCH_VECTOR)


def _no_nul(value, *, field: str):
    """PostgreSQL text cannot hold NUL; refuse it here rather than fail in the database."""
    if isinstance(value, str) and "\x00" in value:
        raise Invalid("Text may not contain NUL characters.", field=field)
    return value


def _clean_name(name) -> str:
    if not isinstance(name, str) or not name.strip():
        raise Invalid("A project needs a name.", field="name")
    return _no_nul(name.strip(), field="name")


@transaction.atomic
def project_create(*, owner: AbstractBaseUser, name: str, description: str = "") -> Project:
    description = _no_nul(description or "", field="description")
    project = Project(owner=owner, name=_clean_name(name), description=description)
    validate_model(project)
    project.save()
    project_refresh_search_vector(project_ids=[project.pk])
    return project


@transaction.atomic
def project_update(
    *,
    project: Project,
    name: str | None = None,
    description: str | None = None,
    status: str | None = None,
) -> Project:
    project = Project.objects.select_for_update().get(pk=project.pk)
    was_published = project.is_published
    if name is not None:
        project.name = _clean_name(name)
    if description is not None:
        project.description = _no_nul(description, field="description")
    if status is not None:
        if status not in Project.Status.values:
            raise Invalid(
                f"Status must be one of {', '.join(Project.Status.values)}.", field="status"
            )
        project.status = status
        if status == Project.Status.ARCHIVED:
            project.is_published = False
    validate_model(project)
    project.save()
    project_refresh_search_vector(project_ids=[project.pk])
    if was_published:  # the listing's text or state changed: cached counts and stats go
        cache_bump_on_commit(LISTINGS, STATS)
    return project


@transaction.atomic
def project_delete(*, project: Project) -> str:
    """Delete a project, or archive and unpublish it when it has purchases.

    Returns "archived" or "deleted" so callers can tell the user what happened.
    """
    project = Project.objects.select_for_update().get(pk=project.pk)
    cache_bump_on_commit(LISTINGS, STATS)  # listings, reviews and figures may go with it
    if project.purchases.exists():
        project.status = Project.Status.ARCHIVED
        project.is_published = False
        project.save(update_fields=["status", "is_published", "updated_at"])
        return "archived"
    # Reviews, downloads and tokens cascade; revenue events only exist with purchases.
    from marketplace.zips import project_zips_delete

    pk = project.pk
    project.delete()
    transaction.on_commit(lambda: project_zips_delete(pk))
    return "deleted"


def _content_size(content) -> int:
    if not isinstance(content, str):
        raise Invalid("File content must be text.", field="content")
    _no_nul(content, field="content")
    size = len(content.encode("utf-8"))
    if size > MAX_FILE_BYTES:
        raise Invalid(f"A file may be at most {MAX_FILE_BYTES // 1024} KiB.", field="content")
    return size


def _check_project_limits(*, project: Project, added_files: int, added_bytes: int) -> None:
    totals = ProjectFile.objects.filter(project=project).aggregate(
        files=Count("id"), size=Coalesce(Sum("size"), 0)
    )
    if totals["files"] + added_files > MAX_FILES_PER_PROJECT:
        raise Invalid(f"A project may have at most {MAX_FILES_PER_PROJECT} files.", field="path")
    if totals["size"] + added_bytes > MAX_PROJECT_BYTES:
        raise Invalid(
            f"A project may hold at most {MAX_PROJECT_BYTES // (1024 * 1024)} MiB of files.",
            field="content",
        )


def _normalized_path(path) -> str:
    try:
        return normalize_file_path(path)
    except ValidationError as exc:
        raise Invalid(exc.messages[0], field="path") from exc


@transaction.atomic
def project_file_create(*, project: Project, path: str, content: str) -> ProjectFile:
    path = _normalized_path(path)
    size = _content_size(content)
    Project.objects.select_for_update().filter(pk=project.pk).first()  # serialise limit checks
    _check_project_limits(project=project, added_files=1, added_bytes=size)
    project_file = ProjectFile(project=project, path=path, content=content, size=size)
    try:
        with transaction.atomic():
            project_file.save()
    except IntegrityError as exc:
        raise Conflict(
            f"A file named {path} already exists.", field="path", code="already_exists"
        ) from exc
    Project.objects.filter(pk=project.pk).update(updated_at=timezone.now())
    return project_file


@transaction.atomic
def project_file_update(
    *, project_file: ProjectFile, content: str | None = None, path: str | None = None
) -> ProjectFile:
    """Replace a file's content, rename or move it (a new `path`), or both.

    The new path is checked like a new file's; the project's row lock serialises this with
    every other write of the project's files, so two renames cannot race to one path.
    """
    new_path = _normalized_path(path) if path is not None else None
    size = _content_size(content) if content is not None else None
    Project.objects.select_for_update().filter(pk=project_file.project_id).first()
    current = ProjectFile.objects.filter(pk=project_file.pk).first()
    if current is None:  # deleted while this request waited for the lock
        raise NotFound("File not found.")
    fields = ["updated_at"]
    if size is not None:
        _check_project_limits(
            project=project_file.project, added_files=0, added_bytes=size - current.size
        )
        project_file.content, project_file.size = content, size
        fields += ["content", "size"]
    if new_path is not None and new_path != current.path:
        project_file.path = new_path
        fields.append("path")
    try:
        with transaction.atomic():
            project_file.save(update_fields=fields)
    except IntegrityError as exc:
        project_file.path = current.path
        raise Conflict(f"A file named {new_path} already exists.", field="path") from exc
    Project.objects.filter(pk=project_file.project_id).update(updated_at=timezone.now())
    return project_file


@transaction.atomic
def project_file_put(*, project: Project, path: str, content: str) -> tuple[ProjectFile, bool]:
    """Create the file at `path` or replace its content. Returns (file, created)."""
    path = _normalized_path(path)
    existing = ProjectFile.objects.filter(project=project, path=path).first()
    if existing is not None:
        return project_file_update(project_file=existing, content=content), False
    return project_file_create(project=project, path=path, content=content), True


@transaction.atomic
def project_file_delete(*, project_file: ProjectFile) -> None:
    project_id = project_file.project_id
    project_file.delete()
    Project.objects.filter(pk=project_id).update(updated_at=timezone.now())
