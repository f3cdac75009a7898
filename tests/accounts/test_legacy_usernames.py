"""The legacy import names users by the account rules: NFKC first, one name in any case, no
mixed-script confusables; a name already stored in another case is that user."""

import json
from io import StringIO

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command

from projects.models import Project
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db

User = get_user_model()


def dump(tmp_path, users: list[str]) -> str:
    data = {
        "format": "memstorage-v1",
        "exportedAt": "2026-11-20T09:15:00Z",
        "users": [
            {"id": f"user-{i}", "username": name, "email": f"u{i}@example.com"}
            for i, name in enumerate(users)
        ],
        "projects": [{"id": "proj-1", "userId": "user-0", "name": "First"}],
    }
    path = tmp_path / "dump.json"
    path.write_text(json.dumps(data))
    return str(path)


def run_import(path: str, tmp_path) -> dict:
    report = tmp_path / "report.json"
    call_command(
        "import_legacy_store",
        path,
        skip_invalid=True,
        report=str(report),
        stdout=StringIO(),
        stderr=StringIO(),
    )
    data = json.loads(report.read_text())
    return {entry["id"]: entry["problems"] for entry in data["rejected"]}


def test_a_fullwidth_name_is_stored_normalised(tmp_path):
    rejected = run_import(dump(tmp_path, ["\uff21da"]), tmp_path)

    assert rejected == {}
    assert list(User.objects.values_list("username", flat=True)) == ["Ada"]


def test_a_case_twin_later_in_the_dump_is_rejected(tmp_path):
    rejected = run_import(dump(tmp_path, ["grace", "GRACE", "\uff47race"]), tmp_path)

    assert set(rejected) == {"user-1", "user-2"}
    assert rejected["user-1"][0]["field"] == "username"
    assert "taken by an earlier row" in rejected["user-1"][0]["reason"]
    assert list(User.objects.values_list("username", flat=True)) == ["grace"]


def test_a_mixed_script_name_is_rejected_with_the_reason(tmp_path):
    rejected = run_import(dump(tmp_path, ["ada", "p\u0430ypal"]), tmp_path)

    assert "one alphabet" in rejected["user-1"][0]["reason"]
    assert list(User.objects.values_list("username", flat=True)) == ["ada"]


def test_a_name_stored_in_another_case_is_that_user(tmp_path):
    """Before, the row was inserted beside the stored user (or, with the unique index on the
    lower-cased name, the import failed)."""
    existing = UserFactory(username="ADA", email="old@example.com")

    rejected = run_import(dump(tmp_path, ["ada"]), tmp_path)

    assert rejected == {}
    assert list(User.objects.values_list("username", flat=True)) == ["ADA"]
    existing.refresh_from_db()
    assert existing.email == "u0@example.com"
    assert Project.objects.get().owner == existing
