import copy
import json
from io import StringIO
from pathlib import Path

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command

from chat.models import ChatMessage
from credentials.models import Credential
from marketplace.models import Download, Purchase, RevenueEvent, Review
from mcp_servers.models import McpServer
from projects.models import Project, ProjectFile

SAMPLE_PATH = Path(__file__).resolve().parent / "data" / "legacy_store_sample.json"
_SAMPLE = json.loads(SAMPLE_PATH.read_text())
INVOICE = "7d6f7c1e-2b1a-4c55-9a0e-0f3c1b6b9a01"


@pytest.fixture
def sample() -> dict:
    """The sample dump as a dict, to change before writing it out."""
    return copy.deepcopy(_SAMPLE)


@pytest.fixture
def write_dump(tmp_path):
    def write(data: dict, name: str = "dump.json") -> str:
        path = tmp_path / name
        path.write_text(json.dumps(data))
        return str(path)

    return write


def run_import(*args, **options) -> tuple[str, str]:
    out, err = StringIO(), StringIO()
    call_command("import_legacy_store", *args, stdout=out, stderr=err, **options)
    return out.getvalue(), err.getvalue()


def run_export(*args) -> str:
    out, err = StringIO(), StringIO()
    call_command("export_legacy_store", *args, stdout=out, stderr=err)
    return out.getvalue()


def summary_row(output: str, map_name: str) -> dict:
    """One line of the summary table as {read, created, updated, unchanged, rejected}."""
    for line in output.splitlines():
        parts = line.split()
        if parts and parts[0] == map_name:
            return dict(
                zip(
                    ("read", "created", "updated", "unchanged", "rejected"),
                    map(int, parts[1:]),
                    strict=True,
                )
            )
    raise AssertionError(f"no {map_name} line in:\n{output}")


def snapshot(*, passwords: bool = True) -> dict:
    """Every row the import writes, keyed by what survives a round trip (not user pks).

    passwords=False leaves out whether a user has a password: the dump holds none.
    """
    username = dict(get_user_model().objects.values_list("pk", "username"))
    return {
        "users": sorted(
            (u.username, u.email, u.is_staff, u.date_joined, passwords and u.has_usable_password())
            for u in get_user_model().objects.all()
        ),
        "projects": sorted(
            (username[row.pop("owner_id")], *row.values())
            for row in Project.objects.values(
                "id",
                "owner_id",
                "name",
                "description",
                "status",
                "created_at",
                "updated_at",
                "is_published",
                "published_at",
                "price",
                "currency",
                "category",
                "purchase_count",
                "download_count",
                "review_count",
                "rating_avg",
            )
        ),
        "tags": sorted(
            (str(p), json.dumps(t)) for p, t in Project.objects.values_list("id", "tags")
        ),
        "files": sorted(ProjectFile.objects.values_list("project_id", "path", "content", "size")),
        "servers": sorted(
            (
                str(s.id),
                s.name,
                s.slug,
                s.transport,
                s.url or "",
                s.command,
                json.dumps(s.args),
                json.dumps(s.credential_spec),
                s.status,
                str(s.deleted_at),
                s.created_at,
            )
            for s in McpServer.objects.all()
        ),
        "chat": [
            (username[owner], project, role, content, json.dumps(metadata, sort_keys=True), at)
            for owner, project, role, content, metadata, at in ChatMessage.objects.order_by(
                "id"
            ).values_list("owner_id", "project_id", "role", "content", "metadata", "created_at")
        ],
        "purchases": sorted(
            (str(pk), username[buyer], *rest)
            for pk, buyer, *rest in Purchase.objects.values_list(
                "id", "buyer_id", "project_id", "amount", "currency", "status", "created_at"
            )
        ),
        "reviews": sorted(
            (str(pk), username[author], *rest)
            for pk, author, *rest in Review.objects.values_list(
                "id", "author_id", "project_id", "rating", "title", "body", "created_at"
            )
        ),
        "downloads": sorted(
            (str(pk), username[user], *rest)
            for pk, user, *rest in Download.objects.values_list(
                "id", "user_id", "project_id", "created_at"
            )
        ),
        "revenue": sorted(
            (str(pk), kind, project, username[seller], buyer and username[buyer], *rest)
            for pk, kind, project, seller, buyer, *rest in RevenueEvent.objects.values_list(
                "id",
                "kind",
                "project_id",
                "seller_id",
                "buyer_id",
                "purchase_id",
                "gross",
                "platform_fee",
                "seller_net",
                "currency",
                "created_at",
            )
        ),
    }


def delete_everything() -> None:
    Credential.objects.all().delete()
    for model in (RevenueEvent, Purchase, Review, Download, ChatMessage, ProjectFile, Project):
        model.objects.all().delete()
    McpServer.objects.all().delete()
    get_user_model().objects.all().delete()


@pytest.fixture(params=["budget", "spilled"])
def memory_budget(request, settings):
    """Run the test twice: with the default memory budget, which holds every id of a small
    dump in memory, and with none, so that every id and fact goes to the spill file."""
    if request.param == "spilled":
        settings.LEGACY_IMPORT_MEMORY_BUDGET_MB = 0
    return request.param
