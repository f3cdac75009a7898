"""Reads of projects and their files, scoped to the acting user."""

from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import ValidationError
from django.db.models import QuerySet

from config.errors import NotFound
from projects.models import Project, ProjectFile


def project_list_for_user(*, user: AbstractBaseUser) -> QuerySet[Project]:
    """The user's own projects, newest first (get_projects)."""
    return Project.objects.filter(owner=user).select_related("owner").order_by("-created_at", "id")


def project_list_all() -> QuerySet[Project]:
    """Every user's projects, for administrators (get_all_projects)."""
    return Project.objects.select_related("owner").order_by("-created_at", "id")


def project_get_for_user(*, user: AbstractBaseUser, pk) -> Project:
    """The user's own project; someone else's is "not found" (get_project)."""
    try:
        return project_list_for_user(user=user).get(pk=pk)
    except (Project.DoesNotExist, ValueError, TypeError, ValidationError) as exc:
        raise NotFound("Project not found.") from exc


def project_file_list(*, project: Project) -> QuerySet[ProjectFile]:
    return ProjectFile.objects.filter(project=project).order_by("path")


def project_file_get(*, project: Project, path: str) -> ProjectFile:
    try:
        return ProjectFile.objects.get(project=project, path=path)
    except ProjectFile.DoesNotExist as exc:
        raise NotFound("File not found.") from exc
