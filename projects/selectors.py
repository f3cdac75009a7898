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


def project_file_list_for_user(*, user: AbstractBaseUser, project_id) -> QuerySet[ProjectFile]:
    """The files of one of the user's projects, by path, checked in the same query. Empty
    both for a project without files and for one that is not the user's: a caller that
    finds nothing asks project_get_for_user which it is."""
    try:
        return project_file_list(project=project_id).filter(project__owner=user)
    except (ValueError, TypeError, ValidationError) as exc:
        raise NotFound("Project not found.") from exc


def project_file_get_for_user(*, user: AbstractBaseUser, project_id, path: str) -> ProjectFile:
    """A file of one of the user's projects, in one query; "not found" names what is missing."""
    try:
        return project_file_list_for_user(user=user, project_id=project_id).get(path=path)
    except ProjectFile.DoesNotExist as exc:
        project_get_for_user(user=user, pk=project_id)  # raises when the project is missing
        raise NotFound("File not found.") from exc
