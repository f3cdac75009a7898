"""Every database constraint holds when a row is saved directly, bypassing the services."""

from decimal import Decimal

import pytest
from django.db import IntegrityError, transaction

from projects.models import Project, ProjectFile
from tests.factories import ProjectFactory, ProjectFileFactory, UserFactory

pytestmark = pytest.mark.django_db


def test_a_valid_project_saves():
    project = ProjectFactory(price=Decimal("100000"), currency="EUR", rating_avg=Decimal("5"))
    assert Project.objects.filter(pk=project.pk).exists()


@pytest.mark.parametrize(
    ("fields", "constraint"),
    [
        ({"name": ""}, "project_name_not_blank"),
        ({"description": "x" * 10_001}, "project_description_max_length"),
        ({"status": "deleted"}, "project_status_valid"),
        ({"status": "archived", "is_published": True}, "project_published_only_when_active"),
        ({"price": Decimal("-0.01")}, "project_price_range"),
        ({"price": Decimal("100000.01")}, "project_price_range"),
        ({"currency": "usd"}, "project_currency_format"),
        ({"currency": "US"}, "project_currency_format"),
        ({"category": "games"}, "project_category_valid"),
        ({"rating_avg": Decimal("0.99")}, "project_rating_avg_range"),
        ({"rating_avg": Decimal("5.01")}, "project_rating_avg_range"),
    ],
)
def test_project_check_constraints(fields, constraint):
    owner = UserFactory()
    with pytest.raises(IntegrityError, match=constraint), transaction.atomic():
        Project.objects.create(owner=owner, **{"name": "Valid", **fields})
    assert Project.objects.count() == 0


def test_project_update_breaking_a_constraint_is_refused():
    project = ProjectFactory(is_published=True)
    with pytest.raises(IntegrityError), transaction.atomic():
        Project.objects.filter(pk=project.pk).update(status="archived")
    project.refresh_from_db()
    assert project.status == "active"


def test_project_file_path_is_unique_per_project():
    existing = ProjectFileFactory(path="main.py")
    ProjectFileFactory(path="main.py")  # same path in another project is fine

    with pytest.raises(IntegrityError), transaction.atomic():
        ProjectFile.objects.create(project=existing.project, path="main.py", content="")
    assert existing.project.files.count() == 1


@pytest.mark.parametrize("path", ["", "/etc/passwd", "..", "../x", "a/..", "a/../b"])
def test_project_file_path_must_be_safe(path):
    project = ProjectFactory()
    with pytest.raises(IntegrityError, match="project_file_path_safe"), transaction.atomic():
        ProjectFile.objects.create(project=project, path=path, content="")
    assert ProjectFile.objects.count() == 0


def test_project_file_size_is_bounded():
    project = ProjectFactory()
    with pytest.raises(IntegrityError, match="project_file_max_size"), transaction.atomic():
        ProjectFile.objects.create(project=project, path="a", content="", size=1024 * 1024 + 1)
    assert ProjectFile.objects.count() == 0


def test_deleting_an_owner_with_projects_is_refused():
    project = ProjectFactory()
    with pytest.raises(Exception, match="protected"), transaction.atomic():
        project.owner.delete()
    assert Project.objects.filter(pk=project.pk).exists()
