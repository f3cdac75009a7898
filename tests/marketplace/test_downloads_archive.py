"""The zip a download gives: named after the project, its files in a folder of that name."""

import io
import zipfile

import pytest

from marketplace.downloads import project_archive_name, project_zip_response
from tests.factories import ListingFactory, ProjectFileFactory

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("Invoice Bot", "Invoice Bot"),
        ("Café ★ tool", "Café ★ tool"),
        ('a/b\\c:d*e?f"g<h>i|j', "a b c d e f g h i j"),
        ("evil\u202egnp.exe", "evil gnp.exe"),  # a bidirectional override
        ("tab\there\x00nul", "tab here nul"),
        ("...", "project"),
        ("CON", "CON project"),
        ("lpt1.txt", "lpt1.txt project"),
        ("x" * 300, "x" * 100),
    ],
)
def test_archive_names_are_safe_on_every_system(name, expected):
    assert project_archive_name(ListingFactory.build(name=name)) == expected


def test_the_zip_holds_its_files_in_one_folder_named_after_the_project():
    listing = ListingFactory(name="Café ★ tool")
    ProjectFileFactory(project=listing, path="src/app.py", content="print(1)\n")

    response = project_zip_response(listing)

    assert response["Content-Disposition"] == (
        "attachment; filename*=utf-8''Caf%C3%A9%20%E2%98%85%20tool.zip"
    )
    archive = zipfile.ZipFile(io.BytesIO(b"".join(response.streaming_content)))
    assert archive.namelist() == ["Café ★ tool/src/app.py"]
