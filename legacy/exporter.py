"""Export of the database in the old store's dump format (the way back after a switch-over).

Streams every map row by row; credentials are never written (the old store had none).
"""

import json
from collections.abc import Iterator

from django.contrib.auth import get_user_model
from django.utils import timezone

from chat.models import ChatMessage
from legacy import dump
from legacy.dump import format_timestamp
from marketplace.models import Download, Purchase, RevenueEvent, Review
from mcp_servers.models import McpServer
from projects.models import Project, ProjectFile

User = get_user_model()
CHUNK = 2000
TRANSPORTS = {"streamable_http": "http"}


def _money(value) -> str | None:
    return None if value is None else f"{value:.2f}"


def _id(value) -> str | None:
    return None if value is None else str(value)


def _rows(queryset, *fields) -> Iterator[dict]:
    yield from queryset.values(*fields).iterator(chunk_size=CHUNK)


def users() -> Iterator[dict]:
    for user in _rows(
        User.objects.order_by("pk"), "pk", "username", "email", "is_staff", "date_joined"
    ):
        yield {
            "id": str(user["pk"]),
            "username": user["username"],
            "email": user["email"],
            "isAdmin": user["is_staff"],
            "createdAt": format_timestamp(user["date_joined"]),
        }


def projects() -> Iterator[dict]:
    fields = ("id", "owner_id", "name", "description", "status", "created_at", "updated_at")
    for project in _rows(Project.objects.order_by("created_at", "id"), *fields):
        yield {
            "id": str(project["id"]),
            "userId": str(project["owner_id"]),
            "name": project["name"],
            "description": project["description"],
            "status": project["status"],
            "createdAt": format_timestamp(project["created_at"]),
            "updatedAt": format_timestamp(project["updated_at"]),
        }


def project_files() -> Iterator[dict]:
    for row in _rows(ProjectFile.objects.order_by("id"), "project_id", "path", "content"):
        yield {"projectId": str(row["project_id"]), "path": row["path"], "content": row["content"]}


def mcp_servers() -> Iterator[dict]:
    fields = (
        "id",
        "name",
        "slug",
        "description",
        "transport",
        "url",
        "command",
        "args",
        "credential_spec",
        "status",
        "deleted_at",
        "created_at",
    )
    for server in _rows(McpServer.objects.order_by("created_at", "id"), *fields):
        row = {
            "id": str(server["id"]),
            "name": server["name"],
            "slug": server["slug"],
            "description": server["description"],
            "transport": TRANSPORTS.get(server["transport"], server["transport"]),
            "url": server["url"],
            "command": server["command"],
            "args": server["args"],
            "credentialSpec": server["credential_spec"],
            "isActive": server["status"] == McpServer.Status.ACTIVE,
            "createdAt": format_timestamp(server["created_at"]),
        }
        if server["deleted_at"] is not None:
            row["deletedAt"] = format_timestamp(server["deleted_at"])
        yield row


def chat_messages() -> Iterator[dict]:
    fields = ("id", "legacy_id", "owner_id", "project_id", "role", "content", "metadata")
    for message in _rows(ChatMessage.objects.order_by("id"), *fields, "created_at"):
        yield {
            # Messages written here first carry no old-store id; their own id stands in.
            "id": str(message["legacy_id"] or message["id"]),
            "userId": str(message["owner_id"]),
            "projectId": _id(message["project_id"]),
            "role": message["role"],
            "content": message["content"],
            "metadata": message["metadata"],
            "createdAt": format_timestamp(message["created_at"]),
        }


def listings() -> Iterator[dict]:
    """One marketplace row per project whose listing fields were ever set."""
    fields = ("id", "price", "currency", "category", "tags", "is_published", "published_at")
    for project in _rows(Project.objects.order_by("created_at", "id"), *fields):
        never_listed = (
            not project["is_published"]
            and project["published_at"] is None
            and project["price"] == 0
            and project["currency"] == "USD"
            and project["category"] == Project.Category.OTHER
            and not project["tags"]
        )
        if never_listed:
            continue
        yield {
            "id": f"mp-{project['id']}",
            "projectId": str(project["id"]),
            "price": _money(project["price"]),
            "currency": project["currency"],
            "category": project["category"],
            "tags": project["tags"],
            "isPublished": project["is_published"],
            "publishedAt": format_timestamp(project["published_at"]),
        }


def purchases() -> Iterator[dict]:
    fields = ("id", "buyer_id", "project_id", "amount", "currency", "status", "created_at")
    for purchase in _rows(Purchase.objects.order_by("created_at", "id"), *fields, "refunded_at"):
        row = {
            "id": str(purchase["id"]),
            "userId": str(purchase["buyer_id"]),
            "projectId": str(purchase["project_id"]),
            "amount": _money(purchase["amount"]),
            "currency": purchase["currency"],
            "status": purchase["status"],
            "createdAt": format_timestamp(purchase["created_at"]),
        }
        if purchase["refunded_at"] is not None:
            row["refundedAt"] = format_timestamp(purchase["refunded_at"])
        yield row


def reviews() -> Iterator[dict]:
    fields = ("id", "author_id", "project_id", "rating", "title", "body", "created_at")
    for review in _rows(Review.objects.order_by("created_at", "id"), *fields, "updated_at"):
        yield {
            "id": str(review["id"]),
            "userId": str(review["author_id"]),
            "projectId": str(review["project_id"]),
            "rating": review["rating"],
            "title": review["title"],
            "comment": review["body"],
            "createdAt": format_timestamp(review["created_at"]),
            "updatedAt": format_timestamp(review["updated_at"]),
        }


def downloads() -> Iterator[dict]:
    fields = ("id", "user_id", "project_id", "created_at")
    for download in _rows(Download.objects.order_by("created_at", "id"), *fields):
        yield {
            "id": str(download["id"]),
            "userId": str(download["user_id"]),
            "projectId": str(download["project_id"]),
            "createdAt": format_timestamp(download["created_at"]),
        }


def revenue_events() -> Iterator[dict]:
    fields = (
        "id",
        "kind",
        "project_id",
        "purchase_id",
        "buyer_id",
        "gross",
        "platform_fee",
        "seller_net",
        "currency",
        "metadata",
        "created_at",
    )
    for event in _rows(RevenueEvent.objects.order_by("created_at", "id"), *fields):
        row = {
            "id": str(event["id"]),
            "type": event["kind"],
            "projectId": str(event["project_id"]),
            "purchaseId": _id(event["purchase_id"]),
            "amount": _money(event["gross"]),
            "platformFee": _money(event["platform_fee"]),
            "sellerNet": _money(event["seller_net"]),
            "currency": event["currency"],
            "metadata": event["metadata"],
            "createdAt": format_timestamp(event["created_at"]),
        }
        if event["purchase_id"] is None and event["buyer_id"] is not None:
            row["buyerId"] = str(event["buyer_id"])
        yield row


EXPORTERS = {
    dump.USERS: users,
    dump.PROJECTS: projects,
    dump.PROJECT_FILES: project_files,
    dump.MCP_SERVERS: mcp_servers,
    dump.CHAT_MESSAGES: chat_messages,
    dump.LISTINGS: listings,
    dump.PURCHASES: purchases,
    dump.REVIEWS: reviews,
    dump.DOWNLOADS: downloads,
    dump.REVENUE_EVENTS: revenue_events,
}


def export_store(out, *, on_map=lambda name, count: None) -> dict[str, int]:
    """Write the whole dump to a text stream; returns the row count per map."""
    counts = {}
    header = {"format": dump.FORMAT, "exportedAt": format_timestamp(timezone.now())}
    out.write(json.dumps(header)[:-1])
    for name in dump.MAPS:
        out.write(f', "{name}": [')
        count = 0
        for row in EXPORTERS[name]():
            out.write(("," if count else "") + "\n" + json.dumps(row, ensure_ascii=False))
            count += 1
        out.write("\n]")
        counts[name] = count
        on_map(name, count)
    out.write("}\n")
    return counts
