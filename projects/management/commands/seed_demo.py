"""Fill a database with a small, living demo: users, projects, MCP servers, a marketplace.

Every row is written through the services, so counters, ratings and the revenue ledger are
exactly what real use would produce. Running it again changes nothing.
"""

import socket
import time
from decimal import Decimal

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from chat.models import ChatMessage
from chat.services import chat_message_create
from credentials.models import Credential
from credentials.services import credential_create
from marketplace.models import Download, Review
from marketplace.services import (
    download_token_create,
    download_token_redeem,
    listing_publish,
    purchase_create,
    review_create,
)
from mcp_servers import demo
from mcp_servers.models import McpServer
from mcp_servers.services import (
    mcp_server_approve_tools,
    mcp_server_check,
    mcp_server_create,
)
from projects.models import Project, ProjectFile
from projects.services import project_create, project_file_put

# Demo-only logins, printed on every run. Never use these outside a throwaway database.
USERS = [
    {"username": "admin", "password": "admin-demo-password", "staff": True},
    {"username": "alice", "password": "alice-demo-password", "staff": False},
    {"username": "bob", "password": "bob-demo-password", "staff": False},
    {"username": "carol", "password": "carol-demo-password", "staff": False},
]

DEMO_TOOLS = {
    "slug": "demo-tools",
    "name": "Demo Tools",
    "description": "Runs on this machine with the demo (make run): echo, add, word_count, utc_now.",
    "transport": "streamable_http",
}

MCP_SERVERS = [
    DEMO_TOOLS,
    {
        "slug": "web-search",
        "name": "Web Search",
        "description": "Searches the web and returns the top results as text.",
        "transport": "streamable_http",
        "url": "https://search.example.com/mcp",
        "credential_spec": [
            {"key": "API_TOKEN", "label": "API token", "required": True, "secret": True}
        ],
        "headers": {"Authorization": "Bearer {{API_TOKEN}}"},
    },
    {
        "slug": "local-files",
        "name": "Local Files",
        "description": "Reads and writes files in a sandbox folder.",
        "transport": "stdio",
        "command": "npx",
        "args": ["-y", "@modelcontextprotocol/server-filesystem", "/srv/sandbox"],
    },
    {
        "slug": "old-wiki",
        "name": "Old Wiki",
        "description": "The retired team wiki; kept for reference, switched off.",
        "transport": "sse",
        "url": "https://wiki.example.com/sse",
        "status": "inactive",
    },
]

PROJECTS = [
    {
        "owner": "alice",
        "name": "Support Inbox Agent",
        "description": "An AI agent that drafts answers to customer email from your help centre.",
        "files": {
            "README.md": "# Support Inbox Agent\n\nDrafts replies to support email.\n",
            "agent/main.py": "def draft_reply(email: str) -> str:\n    return 'Thanks!'\n",
            "agent/prompts/reply.txt": "Answer politely and cite the help centre.\n",
        },
        "listing": {
            "price": "29.00",
            "currency": "USD",
            "category": "ai-agent",
            "tags": ["llm", "email", "support"],
        },
    },
    {
        "owner": "alice",
        "name": "Invoice CLI",
        "description": "Create PDF invoices from the terminal.",
        "files": {
            "README.md": "# Invoice CLI\n\n`invoice new --client ACME`\n",
            "invoice/cli.py": "import sys\n\nprint('invoice', *sys.argv[1:])\n",
        },
        "listing": {"price": "0", "category": "cli", "tags": ["python", "invoices", "pdf"]},
    },
    {
        "owner": "alice",
        "name": "Weather API Starter",
        "description": "A small HTTP API serving forecasts as JSON.",
        "files": {"app.py": "def forecast(city: str) -> dict:\n    return {'city': city}\n"},
        "listing": {
            "price": "12.50",
            "currency": "EUR",
            "category": "api",
            "tags": ["weather", "json", "http"],
        },
    },
    {
        "owner": "alice",
        "name": "Private Notes",
        "description": "A work in progress; not for sale.",
        "files": {"notes.md": "- try the new search server\n"},
        "listing": None,
    },
    {
        "owner": "bob",
        "name": "Shop Starter",
        "description": "A web shop with a cart, checkout and an admin.",
        "files": {
            "README.md": "# Shop Starter\n",
            "shop/views.py": "def cart(request):\n    ...\n",
            "shop/templates/cart.html": "<h1>Your cart</h1>\n",
        },
        "listing": {
            "price": "49.00",
            "currency": "USD",
            "category": "web-app",
            "tags": ["django", "ecommerce"],
        },
    },
    {
        "owner": "bob",
        "name": "CSV Cleaner",
        "description": "Fixes encodings, dates and duplicate rows in CSV files.",
        "files": {"clean.py": "import csv\n"},
        "listing": {"price": "5.00", "category": "data", "tags": ["csv", "cleaning"]},
    },
    {
        "owner": "bob",
        "name": "Landing Page Template",
        "description": "A responsive landing page with a sign-up form.",
        "files": {"index.html": "<!doctype html>\n<title>Launch</title>\n"},
        "listing": {"price": "0", "category": "template", "tags": ["html", "css"]},
    },
]

PURCHASES = [
    ("bob", "Support Inbox Agent"),
    ("bob", "Weather API Starter"),
    ("carol", "Support Inbox Agent"),
    ("carol", "Shop Starter"),
    ("alice", "CSV Cleaner"),
]

DOWNLOADS = [
    ("bob", "Support Inbox Agent"),
    ("carol", "Support Inbox Agent"),
    ("carol", "Invoice CLI"),
    ("alice", "Landing Page Template"),
    ("alice", "CSV Cleaner"),
]

REVIEWS = [
    ("bob", "Support Inbox Agent", 5, "Saves me an hour a day", "Drafts are good enough to send."),
    ("carol", "Support Inbox Agent", 4, "Solid", "Needed a little prompt tuning."),
    ("carol", "Invoice CLI", 5, "Does one thing well", ""),
    ("alice", "CSV Cleaner", 4, "Handy", "Fixed our date columns."),
    ("alice", "Landing Page Template", 3, "Fine", "Simple, but it works."),
]

CHAT = [
    ("user", "Draft a reply to a customer asking for a refund."),
    ("assistant", "Here is a draft: “Thanks for writing in — your refund is on its way.”"),
    ("user", "Make it friendlier and mention the 14-day policy."),
]


class Command(BaseCommand):
    help = "Fill the database with demo users, projects, MCP servers and a marketplace."

    def add_arguments(self, parser):
        parser.add_argument(
            "--force",
            action="store_true",
            help="Run even when DEBUG is off (the demo users have known passwords).",
        )
        parser.add_argument(
            "--wait-for-tools",
            type=float,
            default=0,
            metavar="SECONDS",
            help="Wait this long for the demo MCP server (manage.py demo_mcp_server) to listen.",
        )

    def handle(self, *args, **options):
        if not settings.DEBUG and not options["force"]:
            raise CommandError(
                "seed_demo creates users with known passwords. Run it with DEBUG=1, "
                "or pass --force on a throwaway database."
            )
        self.changes: list[str] = []
        with transaction.atomic():
            users = self.seed_users()
            servers = self.seed_mcp_servers(users["admin"])
            self.seed_credentials(users["alice"], servers["web-search"])
            projects = self.seed_projects(users)
            self.seed_purchases(users, projects)
            self.seed_downloads(users, projects)
            self.seed_reviews(users, projects)
            self.seed_chat(users["alice"], projects["Support Inbox Agent"])
        # Outside the transaction: no database transaction stays open while a server is asked.
        self.check_demo_tools(servers["demo-tools"], options["wait_for_tools"])

        if self.changes:
            for change in self.changes:
                self.stdout.write(f"  + {change}")
            self.stdout.write(self.style.SUCCESS(f"Demo data ready: {len(self.changes)} changes."))
        else:
            self.stdout.write("Demo data already present; nothing changed.")
        self.stdout.write("Demo logins (for this demo database only):")
        for spec in USERS:
            role = " (admin)" if spec["staff"] else ""
            self.stdout.write(f"  {spec['username']} / {spec['password']}{role}")

    def seed_users(self) -> dict:
        user_model = get_user_model()
        users = {}
        for spec in USERS:
            user = user_model.objects.filter(username=spec["username"]).first()
            if user is None:
                user = user_model(
                    username=spec["username"],
                    email=f"{spec['username']}@example.com",
                    is_staff=spec["staff"],
                    is_superuser=spec["staff"],
                )
                user.set_password(spec["password"])
                user.save()
                self.changes.append(f"user {user.username}")
            users[spec["username"]] = user
        return users

    def seed_mcp_servers(self, admin) -> dict:
        servers = {}
        for spec in MCP_SERVERS:
            fields = dict(spec)
            if fields["slug"] == DEMO_TOOLS["slug"]:
                fields["url"] = demo.url()
            server = McpServer.objects.filter(slug=fields["slug"]).first()
            if server is None:
                server = mcp_server_create(actor=admin, **fields)
                self.changes.append(f"MCP server {server.name} ({server.status})")
            servers[server.slug] = server
        return servers

    def check_demo_tools(self, server, wait_seconds: float) -> None:
        """Ask the demo's MCP server for its tools; the first list found is pinned, that is
        approved, so the chat offers them at once. `make run` starts the server just before."""
        if server.tools_fingerprint and server.last_check_ok:
            return
        deadline = time.monotonic() + wait_seconds
        while time.monotonic() < deadline:
            try:
                socket.create_connection((demo.HOST, settings.DEMO_MCP_PORT), timeout=1).close()
                break
            except OSError:
                time.sleep(0.2)
        server = mcp_server_check(server=server)
        if server.last_check_ok:
            # The demo's own harmless tools: approved here as an administrator would.
            server = mcp_server_approve_tools(server=server)
            names = ", ".join(tool["name"] for tool in server.tools)
            self.changes.append(f"tools of {server.name} approved: {names}")
        else:
            self.stdout.write(
                self.style.WARNING(
                    f"{server.name} did not answer at {server.url} ({server.last_check_error}). "
                    "`make run` starts it (manage.py demo_mcp_server, with "
                    "MCP_ALLOWED_HOSTS=127.0.0.1); run seed_demo again to fetch its tools."
                )
            )

    def seed_credentials(self, owner, server) -> None:
        if not Credential.objects.filter(owner=owner, mcp_server=server, key="API_TOKEN").exists():
            credential_create(
                owner=owner, server=server, key="API_TOKEN", value="demo-token-not-a-real-secret"
            )
            self.changes.append(f"credential API_TOKEN of {owner.username} for {server.name}")

    def seed_projects(self, users) -> dict:
        projects = {}
        for spec in PROJECTS:
            owner = users[spec["owner"]]
            project = Project.objects.filter(owner=owner, name=spec["name"]).first()
            if project is None:
                project = project_create(
                    owner=owner, name=spec["name"], description=spec["description"]
                )
                self.changes.append(f"project {project.name}")
            existing = set(
                ProjectFile.objects.filter(project=project).values_list("path", flat=True)
            )
            for path, content in spec["files"].items():
                if path not in existing:
                    project_file_put(project=project, path=path, content=content)
                    self.changes.append(f"file {project.name}/{path}")
            listing = spec["listing"]
            if listing and not project.is_published and project.status == Project.Status.ACTIVE:
                project = listing_publish(
                    actor=owner,
                    project=project,
                    price=Decimal(listing["price"]),
                    currency=listing.get("currency", "USD"),
                    category=listing["category"],
                    tags=listing["tags"],
                )
                self.changes.append(f"listing {project.name}")
            projects[project.name] = project
        return projects

    def seed_purchases(self, users, projects) -> None:
        for buyer, name in PURCHASES:
            _, created = purchase_create(buyer=users[buyer], project_id=projects[name].pk)
            if created:
                self.changes.append(f"purchase of {name} by {buyer}")

    def seed_downloads(self, users, projects) -> None:
        for username, name in DOWNLOADS:
            user, project = users[username], Project.objects.get(pk=projects[name].pk)
            if not Download.objects.filter(user=user, project=project).exists():
                token, _ = download_token_create(user=user, project=project)
                download_token_redeem(token=token, user_agent="seed_demo")
                self.changes.append(f"download of {name} by {username}")

    def seed_reviews(self, users, projects) -> None:
        for username, name, rating, title, body in REVIEWS:
            user, project = users[username], Project.objects.get(pk=projects[name].pk)
            if not Review.objects.filter(author=user, project=project).exists():
                review_create(author=user, project=project, rating=rating, title=title, body=body)
                self.changes.append(f"review of {name} by {username}")

    def seed_chat(self, owner, project) -> None:
        if ChatMessage.objects.filter(owner=owner, project=project).exists():
            return
        for role, content in CHAT:
            chat_message_create(owner=owner, project=project, role=role, content=content)
        self.changes.append(f"{len(CHAT)} chat messages in {project.name}")
