from decimal import Decimal
from io import StringIO

import pytest
from django.contrib.auth import get_user_model
from django.core.management import CommandError, call_command

from chat.models import ChatMessage
from credentials.models import Credential
from marketplace.models import Download, DownloadToken, Purchase, RevenueEvent, Review
from mcp_servers.models import McpServer
from projects.models import Project, ProjectFile
from tests.mcp_servers.servers import free_port

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _no_demo_mcp_server(settings):
    """The demo's MCP server is not running here: point seed_demo at a port nobody serves,
    never at a server another process on this machine may run on the default port."""
    settings.DEMO_MCP_PORT = free_port()

MODELS = [
    get_user_model(),
    Project,
    ProjectFile,
    McpServer,
    Credential,
    Purchase,
    RevenueEvent,
    Review,
    Download,
    DownloadToken,
    ChatMessage,
]


def counts():
    return {model.__name__: model.objects.count() for model in MODELS}


def seed():
    out = StringIO()
    call_command("seed_demo", force=True, stdout=out)
    return out.getvalue()


def test_seed_demo_fills_an_empty_database_and_a_second_run_changes_nothing():
    first_output = seed()
    first = counts()
    projects_before = list(Project.objects.order_by("id").values())

    second_output = seed()

    assert counts() == first
    assert list(Project.objects.order_by("id").values()) == projects_before
    assert "Demo data ready" in first_output
    assert "nothing changed" in second_output
    for output in (first_output, second_output):
        assert "admin / admin-demo-password (admin)" in output
        assert "alice / alice-demo-password" in output
        assert "bob / bob-demo-password" in output


def test_seed_demo_content():
    seed()
    user_model = get_user_model()

    admin = user_model.objects.get(username="admin")
    assert admin.is_staff
    assert admin.is_superuser
    assert admin.check_password("admin-demo-password")
    assert user_model.objects.get(username="alice").check_password("alice-demo-password")
    assert not user_model.objects.get(username="bob").is_staff

    servers = {s.slug: s for s in McpServer.objects.all()}
    assert servers["web-search"].transport == "streamable_http"
    assert servers["web-search"].credential_spec[0]["key"] == "API_TOKEN"
    assert servers["local-files"].transport == "stdio"
    assert servers["old-wiki"].status == "inactive"
    assert Credential.objects.get().value == "demo-token-not-a-real-secret"

    listings = Project.objects.filter(is_published=True, status="active")
    assert listings.count() >= 5
    assert len(set(listings.values_list("category", flat=True))) >= 5
    assert all(project.tags for project in listings)
    assert listings.filter(price=0).exists()
    assert Project.objects.filter(is_published=False).exists()
    assert all(p.files.exists() for p in Project.objects.all())

    agent = Project.objects.get(name="Support Inbox Agent")
    assert (agent.purchase_count, agent.download_count, agent.review_count) == (2, 2, 2)
    assert agent.rating_avg == Decimal("4.50")
    assert RevenueEvent.objects.count() == Purchase.objects.count() == 5
    assert Review.objects.count() == 5
    assert ChatMessage.objects.filter(project=agent).count() == 3


def test_seed_demo_refuses_without_debug_or_force(settings):
    settings.DEBUG = False
    with pytest.raises(CommandError, match="DEBUG=1"):
        call_command("seed_demo", stdout=StringIO())
    assert counts() == dict.fromkeys(counts(), 0)
