"""File paths that are safe on every system: refused in the service, so the API, the pages and
the legacy import (tests/legacy/test_invalid.py) all refuse them with the same message."""

import json
from io import StringIO

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.test import Client

from config.errors import Invalid
from projects.models import ProjectFile
from projects.services import project_file_create
from tests.factories import ProjectFactory

pytestmark = pytest.mark.django_db

UNSAFE = [
    ("C:/x", "may not start with a drive such as “C:”"),
    ("C:x", "may not start with a drive such as “C:”"),
    ("d:\\x", "may not start with a drive such as “d:”"),
    ("CON", "Windows reserves CON"),
    ("con.txt", "Windows reserves CON"),
    ("src/Prn.tar.gz", "Windows reserves PRN"),
    ("aux", "Windows reserves AUX"),
    ("nul/readme.md", "Windows reserves NUL"),
    ("NUL .txt", "Windows reserves NUL"),
    ("com1", "Windows reserves COM1"),
    ("docs/COM9.md", "Windows reserves COM9"),
    ("lpt1.log", "Windows reserves LPT1"),
    ("LPT9", "Windows reserves LPT9"),
    ("esc\x1b[31m.py", "control characters"),
    ("bell\x07.py", "control characters"),
    ("c1\x85.py", "control characters"),
    ("c1\x9b.py", "control characters"),
    ("invoice\u202efdp.exe", "bidirectional text controls"),
    ("a\u2066b.py", "bidirectional text controls"),
    ("a\u200fb.py", "bidirectional text controls"),
]

SAFE_LOOKALIKES = ["COM10", "console.txt", "CONFIG.md", "src/auxiliary.py", "lpt.py", "nul_.py"]


@pytest.mark.parametrize(("path", "message"), UNSAFE)
def test_the_service_refuses_unsafe_paths_with_a_clear_message(path, message):
    project = ProjectFactory()
    with pytest.raises(Invalid) as excinfo:
        project_file_create(project=project, path=path, content="x")
    assert excinfo.value.field == "path"
    assert message in excinfo.value.message
    assert not ProjectFile.objects.exists()


@pytest.mark.parametrize("path", SAFE_LOOKALIKES)
def test_names_that_only_resemble_devices_are_fine(path):
    assert project_file_create(project=ProjectFactory(), path=path, content="").path == path


@pytest.mark.parametrize(("path", "message"), UNSAFE[:13] + UNSAFE[-3:])
def test_the_api_refuses_them_in_a_body_and_in_the_address(auth_client, path, message):
    project = ProjectFactory(owner=auth_client.user)
    base = f"/api/v1/projects/{project.pk}/files/"
    created = auth_client.post(base, {"path": path, "content": "x"}, format="json")
    assert created.status_code == 400
    assert message in created.json()["path"][0]
    if "\\" not in path:
        put = auth_client.put(base + path, {"content": "x"}, format="json")
        assert put.status_code == 400
        assert message in put.json()["path"][0]
    assert not ProjectFile.objects.exists()


@pytest.mark.parametrize(("path", "message"), [UNSAFE[0], UNSAFE[4], UNSAFE[-3]])
def test_the_page_shows_the_rule_beside_the_field_and_keeps_the_input(user, path, message):
    client = Client()
    client.force_login(user)
    project = ProjectFactory(owner=user)
    response = client.post(
        f"/projects/{project.pk}/files/new/", {"path": path, "content": "keep me"}
    )
    assert response.status_code == 200
    assert message in response.text
    assert 'id="id_path_error"' in response.text
    assert "keep me" in response.text
    assert not ProjectFile.objects.exists()


@pytest.mark.parametrize(
    ("path", "message"),
    [
        ("C:/windows/x.py", "may not start with a drive"),
        ("src/con.txt", "Windows reserves CON"),
        ("readme\u202etxt.exe", "bidirectional text controls"),
        ("bell\x07.py", "control characters"),
    ],
)
def test_the_legacy_import_refuses_them(tmp_path, path, message):
    project = ProjectFactory()
    ProjectFile.objects.create(project=project, path="ok.py", content="x", size=1)
    dump = json.loads(_command("export_legacy_store", "-"))
    dump["projectFiles"][0]["path"] = path
    (tmp_path / "dump.json").write_text(json.dumps(dump))
    before = list(ProjectFile.objects.values_list("path", flat=True))
    err = StringIO()
    with pytest.raises(CommandError, match="nothing was written"):
        call_command(
            "import_legacy_store", str(tmp_path / "dump.json"), stdout=StringIO(), stderr=err
        )
    assert any(
        line.startswith("projectFiles 0: path: ") and message in line
        for line in err.getvalue().splitlines()
    ), err.getvalue()
    assert list(ProjectFile.objects.values_list("path", flat=True)) == before


def _command(*args) -> str:
    out = StringIO()
    call_command(*args, stdout=out, stderr=StringIO())
    return out.getvalue()
