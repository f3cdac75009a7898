import datetime as dt
import gzip
import io
import json
import sys
import uuid
from decimal import Decimal

import pytest
from django.contrib.auth import get_user_model
from django.core.management.base import CommandError

from chat.models import ChatMessage
from legacy.dump import NAMESPACE
from marketplace.models import Download, Purchase, RevenueEvent, Review
from mcp_servers.models import McpServer
from projects.models import Project, ProjectFile
from tests.factories import ListingFactory, UserFactory
from tests.legacy.conftest import (
    INVOICE,
    SAMPLE_PATH,
    run_import,
    snapshot,
    summary_row,
)

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("memory_budget")]
User = get_user_model()


def legacy(map_name: str, raw_id: str) -> uuid.UUID:
    return uuid.uuid5(NAMESPACE, f"{map_name}:{raw_id}")


def utc(*args) -> dt.datetime:
    return dt.datetime(*args, tzinfo=dt.UTC)


def test_the_sample_imports_with_the_exact_rows():
    out, _ = run_import(str(SAMPLE_PATH))

    assert summary_row(out, "chatMessages") == {
        "read": 3, "created": 3, "updated": 0, "unchanged": 0, "rejected": 0
    }  # fmt: skip
    users = {u.username: u for u in User.objects.all()}
    assert set(users) == {"ada", "grace", "linus"}
    assert users["ada"].is_staff
    assert not users["grace"].is_staff
    assert not any(u.has_usable_password() for u in users.values())
    assert users["linus"].date_joined == utc(2026, 3, 1, 12)  # no zone: UTC

    weather_id = legacy("projects", "proj-42")
    invoice = Project.objects.get(pk=INVOICE)
    weather = Project.objects.get(pk=weather_id)
    kanban = Project.objects.get(pk=legacy("projects", "proj-43"))
    assert (invoice.owner, invoice.name, invoice.status) == (
        users["grace"],
        "Invoice parser agent",
        "active",
    )
    assert (invoice.created_at, invoice.updated_at) == (utc(2026, 3, 2, 9), utc(2026, 3, 5, 9))
    # The marketplace row merged into the project; counters come from the imported rows.
    assert (invoice.is_published, invoice.price, invoice.currency, invoice.category) == (
        True, Decimal("19.99"), "USD", "ai-agent"
    )  # fmt: skip
    assert invoice.tags == ["pdf", "finance"]
    assert invoice.published_at == utc(2026, 3, 6)
    assert (invoice.purchase_count, invoice.download_count, invoice.review_count) == (1, 1, 1)
    assert invoice.rating_avg == Decimal("4.00")
    assert (weather.price, weather.currency, weather.category, weather.is_published) == (
        Decimal("0.00"), "USD", "cli", True
    )  # fmt: skip
    assert (weather.download_count, weather.rating_avg, weather.updated_at) == (
        1, None, weather.created_at
    )  # fmt: skip
    assert (kanban.status, kanban.is_published, kanban.owner) == ("archived", False, users["linus"])

    assert sorted(ProjectFile.objects.values_list("project_id", "path", "size")) == sorted(
        [(uuid.UUID(INVOICE), "README.md", 17), (uuid.UUID(INVOICE), "src/agent.py", 28),
         (weather_id, "weather.py", 15)]
    )  # fmt: skip

    servers = {s.name: s for s in McpServer.objects.all()}
    github, files, old = servers["GitHub"], servers["Filesystem"], servers["Old search"]
    assert (github.transport, github.status, github.url) == (
        "streamable_http", "active", "https://mcp.example.com/github"
    )  # fmt: skip
    assert github.credential_spec[0]["key"] == "GITHUB_TOKEN"
    assert (files.transport, files.status, files.command, files.args) == (
        "stdio", "inactive", "mcp-server-filesystem", ["/srv/data"]
    )  # fmt: skip
    assert (old.status, old.deleted_at) == ("deleted", utc(2026, 6, 1))
    assert github.pk == legacy("mcpServers", "mcp-github")

    messages = list(ChatMessage.objects.order_by("id"))
    assert [(m.owner.username, m.role, m.content) for m in messages] == [
        ("grace", "user", "Parse the totals too."),
        ("grace", "assistant", "Added a totals extractor."),
        ("linus", "user", "Hello"),
    ]
    assert messages[1].metadata == {"model": "gpt-x"}
    assert messages[0].project_id == uuid.UUID(INVOICE)
    assert messages[2].project_id is None
    assert messages[0].legacy_id == legacy("chatMessages", "m1")

    purchase = Purchase.objects.get()
    assert (purchase.pk, purchase.buyer, purchase.amount, purchase.status) == (
        legacy("marketplacePurchases", "pur-1"), users["linus"], Decimal("19.99"), "completed"
    )  # fmt: skip
    review = Review.objects.get()
    assert (review.author, review.rating, review.title, review.body) == (
        users["linus"], 4, "Works", "Handles most invoices."
    )  # fmt: skip
    assert Download.objects.count() == 2
    event = RevenueEvent.objects.get()
    assert (event.kind, event.seller, event.buyer, event.purchase) == (
        "purchase", users["grace"], users["linus"], purchase
    )  # fmt: skip
    # fee and net recomputed (10 %, half-even), gross = fee + net
    assert (event.gross, event.platform_fee, event.seller_net) == (
        Decimal("19.99"), Decimal("2.00"), Decimal("17.99")
    )  # fmt: skip


def test_listing_counts_cached_before_the_import_are_not_used_after_it(api_client):
    """The import writes past the services, so it moves the generations itself: the app may
    serve reads (read-only) while it runs."""
    listings = "/api/v1/marketplace/listings/"
    ListingFactory()
    assert api_client.get(listings).json()["count"] == 1  # counted, and remembered
    run_import(str(SAMPLE_PATH))
    listed = Project.objects.filter(is_published=True, status="active").count()
    assert listed > 1
    assert api_client.get(listings).json()["count"] == listed


def test_a_second_run_changes_nothing_and_says_so():
    run_import(str(SAMPLE_PATH))
    before = snapshot()

    out, _ = run_import(str(SAMPLE_PATH))

    assert "Nothing changed" in out
    for map_name in ("users", "projects", "chatMessages", "marketplaceProjects", "revenueEvents"):
        row = summary_row(out, map_name)
        assert row["created"] == row["updated"] == 0
        assert row["unchanged"] == row["read"]
    assert snapshot() == before


def test_a_changed_dump_updates_its_rows(sample, write_dump):
    run_import(str(SAMPLE_PATH))
    sample["projects"][1]["name"] = "Weather CLI 2"
    sample["marketplaceReviews"][0]["rating"] = 2
    sample["marketplaceProjects"][0]["price"] = "24.50"
    sample["chatMessages"][2]["content"] = "Hello again"
    sample["users"][2]["email"] = "linus@example.org"

    out, _ = run_import(write_dump(sample))

    assert summary_row(out, "projects")["updated"] == 1
    assert summary_row(out, "marketplaceProjects")["updated"] == 1
    assert summary_row(out, "marketplaceReviews")["updated"] == 1
    assert summary_row(out, "chatMessages") == {
        "read": 3, "created": 0, "updated": 1, "unchanged": 2, "rejected": 0
    }  # fmt: skip
    assert Project.objects.get(pk=legacy("projects", "proj-42")).name == "Weather CLI 2"
    invoice = Project.objects.get(pk=INVOICE)
    assert (invoice.price, invoice.rating_avg) == (Decimal("24.50"), Decimal("2.00"))
    assert ChatMessage.objects.order_by("id").last().content == "Hello again"
    assert User.objects.get(username="linus").email == "linus@example.org"
    assert ChatMessage.objects.count() == 3


def test_users_are_matched_by_username():
    existing = UserFactory(username="grace", email="old@example.com")

    run_import(str(SAMPLE_PATH))

    existing.refresh_from_db()
    assert existing.email == "grace@example.com"
    assert Project.objects.filter(owner=existing).count() == 2
    assert existing.has_usable_password()  # an existing password is kept
    assert User.objects.count() == 3


def test_dry_run_writes_nothing_and_counts_what_it_would_do():
    out, _ = run_import(str(SAMPLE_PATH), dry_run=True)

    assert "Dry run" in out
    assert summary_row(out, "projects")["created"] == 3
    assert not User.objects.exists()
    assert not Project.objects.exists()
    assert not ChatMessage.objects.exists()


def test_dry_run_fails_on_an_invalid_row(sample, write_dump):
    sample["marketplaceReviews"][0]["rating"] = 7

    with pytest.raises(CommandError):
        run_import(write_dump(sample), dry_run=True)


def test_standard_input(monkeypatch):
    stdin = io.TextIOWrapper(io.BytesIO(SAMPLE_PATH.read_bytes()))
    monkeypatch.setattr(sys, "stdin", stdin)

    out, _ = run_import("-")

    assert summary_row(out, "users")["created"] == 3
    assert Project.objects.count() == 3


def test_gzip_input(tmp_path):
    path = tmp_path / "dump.json.gz"
    path.write_bytes(gzip.compress(SAMPLE_PATH.read_bytes()))

    run_import(str(path))

    assert ChatMessage.objects.count() == 3


def test_chat_messages_are_written_in_created_at_order(sample, write_dump):
    sample["chatMessages"].reverse()

    run_import(write_dump(sample))

    contents = list(ChatMessage.objects.order_by("id").values_list("content", flat=True))
    assert contents == ["Parse the totals too.", "Added a totals extractor.", "Hello"]
    # New messages written later continue after the imported ones.
    user = User.objects.get(username="ada")
    assert ChatMessage.objects.create(owner=user, content="later").pk > max(
        ChatMessage.objects.exclude(content="later").values_list("id", flat=True)
    )


def test_counters_are_recomputed_not_copied(sample, write_dump):
    sample["marketplaceProjects"][0]["purchaseCount"] = 99
    sample["marketplaceProjects"][0]["ratingAvg"] = 1.5

    run_import(write_dump(sample))

    invoice = Project.objects.get(pk=INVOICE)
    assert (invoice.purchase_count, invoice.rating_avg) == (1, Decimal("4.00"))


def test_revenue_fee_and_net_from_the_dump_are_kept_when_they_add_up(sample, write_dump):
    sample["revenueEvents"][0].update(platformFee="1.99", sellerNet="18.00")

    run_import(write_dump(sample))

    event = RevenueEvent.objects.get()
    assert (event.platform_fee, event.seller_net) == (Decimal("1.99"), Decimal("18.00"))


def test_missing_file_and_bad_json_fail_cleanly(tmp_path):
    with pytest.raises(CommandError, match="No such file"):
        run_import(str(tmp_path / "nope.json"))
    broken = tmp_path / "broken.json"
    broken.write_text(
        '{"format": "memstorage-v1", "exportedAt": "2026-01-01T00:00:00Z", "users": ['
    )
    with pytest.raises(CommandError, match="not valid JSON"):
        run_import(str(broken))
    assert not User.objects.exists()


def test_the_report_json_is_valid_even_when_everything_is_valid(tmp_path):
    report = tmp_path / "report.json"

    run_import(str(SAMPLE_PATH), skip_invalid=True, report=str(report))

    data = json.loads(report.read_text())
    assert data["rejected"] == []
    assert data["summary"]["users"]["created"] == 3
