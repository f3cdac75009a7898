import json

import pytest
from django.utils import timezone

from legacy.dump import FORMAT, MAPS
from mcp_servers.models import McpServer
from tests.factories import (
    ChatMessageFactory,
    CredentialFactory,
    ListingFactory,
    McpServerFactory,
    ProjectFileFactory,
    UserFactory,
)
from tests.legacy.conftest import (
    SAMPLE_PATH,
    delete_everything,
    run_export,
    run_import,
    snapshot,
    summary_row,
)

pytestmark = pytest.mark.django_db


def export_to(tmp_path, name: str = "export.json") -> str:
    path = tmp_path / name
    run_export(str(path))
    return str(path)


def test_an_export_imports_into_an_empty_database_with_the_same_rows(tmp_path):
    run_import(str(SAMPLE_PATH))
    before = snapshot()
    path = export_to(tmp_path)

    delete_everything()
    out, _ = run_import(path)

    assert snapshot() == before
    assert "Nothing changed" not in out


def test_rows_written_here_first_round_trip_too(tmp_path):
    run_import(str(SAMPLE_PATH))
    listing = ListingFactory(tags=["python", "cli"])
    ProjectFileFactory(project=listing, path="main.py", content="print(1)\n")
    ChatMessageFactory(owner=listing.owner, project=listing, metadata={"n": [1, 2.5]})
    McpServerFactory(status=McpServer.Status.DELETED, deleted_at=timezone.now(), name="Gone")
    before = snapshot(passwords=False)
    path = export_to(tmp_path)

    delete_everything()
    run_import(path)

    assert snapshot(passwords=False) == before


def test_importing_an_export_into_the_same_database_changes_nothing(tmp_path):
    run_import(str(SAMPLE_PATH))
    path = export_to(tmp_path)

    out, _ = run_import(path)

    assert "Nothing changed" in out
    assert summary_row(out, "marketplaceProjects")["unchanged"] == 2


def test_the_export_has_every_map_soft_deleted_servers_and_no_credentials(tmp_path):
    run_import(str(SAMPLE_PATH))
    credential = CredentialFactory(owner=UserFactory())

    text = (tmp_path / "export.json").read_text() if export_to(tmp_path) else ""

    data = json.loads(text)
    assert data["format"] == FORMAT
    assert set(MAPS) <= set(data)
    servers = {row["name"]: row for row in data["mcpServers"]}
    assert servers["Old search"]["deletedAt"] == "2026-06-01T00:00:00Z"
    assert servers["GitHub"]["transport"] == "http"
    assert credential.value not in text
    assert "credential" not in {key.lower() for key in data}
    assert len(data["users"]) == 4  # users created after the import are exported too


def test_export_to_standard_output():
    run_import(str(SAMPLE_PATH))

    data = json.loads(run_export("-"))

    assert len(data["chatMessages"]) == 3
    assert data["chatMessages"][0]["content"] == "Parse the totals too."


def test_a_gzip_export(tmp_path):
    run_import(str(SAMPLE_PATH))
    path = export_to(tmp_path, "export.json.gz")
    before = snapshot()

    delete_everything()
    run_import(path)

    assert snapshot() == before
