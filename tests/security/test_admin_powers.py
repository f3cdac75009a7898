"""Staff rights: each admin power is a named permission. A staff account without it gets 403 from
the API and the staff pages, is not offered the admin action, and nothing changes in the database;
with it (and only with it) the power works."""

import io
from decimal import Decimal

import pytest
from django.contrib.auth.models import Group, Permission
from django.core.management import call_command
from django.test import Client
from prometheus_client import REGISTRY
from rest_framework.test import APIClient

from config import powers
from config.models import ReadOnlySwitch
from marketplace.models import Purchase, RevenueEvent
from marketplace.services import purchase_create, review_create
from mcp_servers.models import McpServer
from projects.models import Project
from tests.factories import (
    ListingFactory,
    McpServerFactory,
    ProjectFactory,
    RevenueEventFactory,
    UserFactory,
)

pytestmark = pytest.mark.django_db


def staff_with(*permissions: str, is_staff: bool = True):
    user = UserFactory(is_staff=is_staff)
    for name in permissions:
        app_label, codename = name.split(".")
        user.user_permissions.add(
            Permission.objects.get(content_type__app_label=app_label, codename=codename)
        )
    return user


def api_as(user) -> APIClient:
    client = APIClient()
    client.force_authenticate(user)
    return client


def page_as(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def refused(power: str) -> float:
    return REGISTRY.get_sample_value("atelier_admin_power_refused_total", {"power": power}) or 0


@pytest.fixture
def purchase(db):
    listing = ListingFactory(price=Decimal("12.50"))
    bought, _ = purchase_create(buyer=UserFactory(username="bea"), project_id=listing.pk)
    return bought


@pytest.fixture
def changed_server(db):
    tools = [{"name": "echo", "description": "Echo", "input_schema": {"type": "object"}}]
    return McpServerFactory(
        url="https://mcp.example.com/mcp",
        tools=[*tools, {"name": "exfiltrate", "input_schema": {"type": "object"}}],
        approved_tools=tools,
        tools_fingerprint="old",
        tools_changed=True,
        last_check_ok=True,
        last_checked_at="2026-01-01T00:00:00Z",
    )


# ------------------------------------------------------------------------------------ the API


def _api_calls(purchase, server):
    """(power, method, path, body) of every admin endpoint."""
    return [
        (powers.READ_ALL_PROJECTS, "get", "/api/v1/admin/projects/", None),
        (powers.READ_REVENUE, "get", "/api/v1/marketplace/revenue-events/", None),
        (powers.READ_REVENUE, "get", "/api/v1/marketplace/stats/", None),
        (
            powers.REFUND_PURCHASES,
            "post",
            f"/api/v1/marketplace/purchases/{purchase.pk}/refund/",
            None,
        ),
        (
            powers.MANAGE_MCP_SERVERS,
            "post",
            "/api/v1/mcp-servers/",
            {"name": "Evil", "transport": "streamable_http", "url": "https://evil.example/mcp"},
        ),
        (
            powers.MANAGE_MCP_SERVERS,
            "patch",
            f"/api/v1/mcp-servers/{server.pk}/",
            {"url": "https://evil.example/mcp"},
        ),
        (powers.MANAGE_MCP_SERVERS, "delete", f"/api/v1/mcp-servers/{server.pk}/", None),
        (powers.MANAGE_MCP_SERVERS, "post", f"/api/v1/mcp-servers/{server.pk}/check/", None),
        (
            powers.APPROVE_MCP_TOOLS,
            "post",
            f"/api/v1/mcp-servers/{server.pk}/approve-tools/",
            None,
        ),
    ]


def _snapshot() -> dict:
    return {
        "purchases": list(Purchase.objects.values_list("pk", "status", "refunded_at")),
        "revenue": RevenueEvent.objects.count(),
        "servers": list(
            McpServer.objects.order_by("pk").values_list(
                "pk", "url", "status", "tools_changed", "tools_fingerprint", "last_checked_at"
            )
        ),
    }


def test_every_admin_endpoint_refuses_staff_without_its_power(purchase, changed_server):
    # Staff holding every *other* power, and Django's model permissions: still refused.
    all_powers = [
        powers.READ_ALL_PROJECTS,
        powers.READ_REVENUE,
        powers.REFUND_PURCHASES,
        powers.MANAGE_MCP_SERVERS,
        powers.APPROVE_MCP_TOOLS,
    ]
    ProjectFactory(is_published=False, name="Someone's secret")
    before = _snapshot()
    for power, method, path, body in _api_calls(purchase, changed_server):
        others = [p for p in all_powers if p != power]
        client = api_as(
            staff_with(*others, "marketplace.view_purchase", "mcp_servers.change_mcpserver")
        )
        counted = refused(power)

        response = getattr(client, method)(path, body, format="json")

        assert response.status_code == 403, (path, response.content)
        assert powers.LABELS[power] in response.json()["detail"]
        assert refused(power) == counted + 1
        assert _snapshot() == before, path


def test_a_plain_staff_account_and_a_user_with_the_permission_but_not_staff_are_refused(
    purchase, changed_server
):
    every = [p for p, *_ in _api_calls(purchase, changed_server)]
    before = _snapshot()
    for user in (UserFactory(is_staff=True), staff_with(*every, is_staff=False)):
        client = api_as(user)
        for _power, method, path, body in _api_calls(purchase, changed_server):
            response = getattr(client, method)(path, body, format="json")
            assert response.status_code == 403, (path, response.content)
    assert _snapshot() == before


def test_anonymous_callers_get_401(purchase, changed_server):
    for _power, method, path, body in _api_calls(purchase, changed_server):
        response = getattr(APIClient(), method)(path, body, format="json")
        assert response.status_code == 401, path


def test_each_power_works_for_staff_who_hold_it(purchase, changed_server):
    secret = ProjectFactory(is_published=False, name="Someone's secret")
    RevenueEventFactory()

    projects = api_as(staff_with(powers.READ_ALL_PROJECTS)).get("/api/v1/admin/projects/")
    assert projects.status_code == 200
    assert str(secret.pk) in projects.content.decode()

    reader = api_as(staff_with(powers.READ_REVENUE))
    assert reader.get("/api/v1/marketplace/revenue-events/").status_code == 200
    assert reader.get("/api/v1/marketplace/stats/").status_code == 200

    refund = api_as(staff_with(powers.REFUND_PURCHASES)).post(
        f"/api/v1/marketplace/purchases/{purchase.pk}/refund/"
    )
    assert refund.status_code == 200
    purchase.refresh_from_db()
    assert purchase.status == Purchase.Status.REFUNDED

    approver = api_as(staff_with(powers.APPROVE_MCP_TOOLS))
    assert approver.post(f"/api/v1/mcp-servers/{changed_server.pk}/approve-tools/").status_code
    changed_server.refresh_from_db()
    assert not changed_server.tools_changed

    manager = api_as(staff_with(powers.MANAGE_MCP_SERVERS))
    patched = manager.patch(
        f"/api/v1/mcp-servers/{changed_server.pk}/", {"description": "Moved."}, format="json"
    )
    assert patched.status_code == 200
    changed_server.refresh_from_db()
    assert changed_server.description == "Moved."


def test_only_curators_see_hidden_servers_and_the_admin_fields(changed_server):
    inactive = McpServerFactory(status=McpServer.Status.INACTIVE)
    plain = api_as(UserFactory(is_staff=True))
    listed = plain.get("/api/v1/mcp-servers/?status=inactive").json()
    assert str(inactive.pk) not in str(listed)
    assert plain.get(f"/api/v1/mcp-servers/{inactive.pk}/").status_code == 404
    assert "approved_tools" not in plain.get(f"/api/v1/mcp-servers/{changed_server.pk}/").json()

    curator = api_as(staff_with(powers.APPROVE_MCP_TOOLS))
    assert str(inactive.pk) in str(curator.get("/api/v1/mcp-servers/?status=inactive").json())
    assert "approved_tools" in curator.get(f"/api/v1/mcp-servers/{changed_server.pk}/").json()


# ---------------------------------------------------------------------------------- the admin


def _action_names(response) -> list[str]:
    form = response.context["action_form"]  # None when no action is offered
    if form is None:
        return []
    return [name for name, _label in form.fields["action"].choices if name]


def test_refund_action_needs_the_refund_power(purchase):
    viewer = page_as(staff_with("marketplace.view_purchase"))
    page = viewer.get("/admin/marketplace/purchase/")
    assert page.status_code == 200
    assert "refund" not in _action_names(page)

    data = {"action": "refund", "_selected_action": [str(purchase.pk)], "post": "yes"}
    viewer.post("/admin/marketplace/purchase/", data)

    purchase.refresh_from_db()
    assert purchase.status == Purchase.Status.COMPLETED
    assert not RevenueEvent.objects.filter(kind=RevenueEvent.Kind.REFUND).exists()


def test_refund_asks_first_showing_amount_access_and_review(purchase):
    review_create(author=purchase.buyer, project=purchase.project, rating=2, title="Meh")
    finance = page_as(staff_with(powers.REFUND_PURCHASES))
    assert "refund" in _action_names(finance.get("/admin/marketplace/purchase/"))
    selected = {"action": "refund", "_selected_action": [str(purchase.pk)]}

    confirm = finance.post("/admin/marketplace/purchase/", selected)

    assert confirm.status_code == 200
    text = confirm.content.decode()
    assert "Refund purchases?" in text
    assert '<strong class="refund-total">12.50 USD</strong>' in text
    assert "bea's access ends: no new download links" in text
    assert "review (2/5, “Meh”) stops counting" in text
    assert 'name="post" value="yes"' in text
    purchase.refresh_from_db()
    assert purchase.status == Purchase.Status.COMPLETED  # asking changed nothing
    assert not RevenueEvent.objects.filter(kind=RevenueEvent.Kind.REFUND).exists()

    done = finance.post("/admin/marketplace/purchase/", {**selected, "post": "yes"}, follow=True)

    assert "1 purchase(s) refunded." in done.content.decode()
    purchase.refresh_from_db()
    assert purchase.status == Purchase.Status.REFUNDED


def test_refund_confirmation_says_when_nothing_can_be_refunded(purchase):
    finance = page_as(staff_with(powers.REFUND_PURCHASES))
    selected = {"action": "refund", "_selected_action": [str(purchase.pk)]}
    finance.post("/admin/marketplace/purchase/", {**selected, "post": "yes"})

    again = finance.post("/admin/marketplace/purchase/", selected).content.decode()

    assert "each is already refunded" in again
    assert 'id="confirm-refund"' not in again
    assert RevenueEvent.objects.filter(kind=RevenueEvent.Kind.REFUND).count() == 1


def test_mcp_server_admin_changes_need_the_manage_power(changed_server):
    viewer = page_as(staff_with("mcp_servers.view_mcpserver", "mcp_servers.change_mcpserver"))
    changelist = viewer.get("/admin/mcp_servers/mcpserver/")
    assert changelist.status_code == 200
    assert _action_names(changelist) == []
    change_url = f"/admin/mcp_servers/mcpserver/{changed_server.pk}/change/"
    counted = refused(powers.MANAGE_MCP_SERVERS)
    assert viewer.post(change_url, {"url": "https://evil.example/mcp"}).status_code == 403
    assert refused(powers.MANAGE_MCP_SERVERS) == counted + 1
    assert viewer.get("/admin/mcp_servers/mcpserver/add/").status_code == 403
    for action in ("deactivate", "soft_delete", "approve_tools"):
        viewer.post(
            "/admin/mcp_servers/mcpserver/",
            {"action": action, "_selected_action": [str(changed_server.pk)]},
        )
    changed_server.refresh_from_db()
    assert changed_server.url == "https://mcp.example.com/mcp"
    assert changed_server.status == McpServer.Status.ACTIVE
    assert changed_server.tools_changed

    approver = page_as(staff_with(powers.APPROVE_MCP_TOOLS))
    assert _action_names(approver.get("/admin/mcp_servers/mcpserver/")) == ["approve_tools"]
    assert approver.post(change_url, {"url": "https://evil.example/mcp"}).status_code == 403
    approver.post(
        "/admin/mcp_servers/mcpserver/",
        {"action": "approve_tools", "_selected_action": [str(changed_server.pk)]},
    )
    changed_server.refresh_from_db()
    assert not changed_server.tools_changed
    assert changed_server.url == "https://mcp.example.com/mcp"

    manager = page_as(staff_with(powers.MANAGE_MCP_SERVERS))
    assert set(_action_names(manager.get("/admin/mcp_servers/mcpserver/"))) == {
        "activate",
        "deactivate",
        "soft_delete",
        "restore",
        "check_now",
    }
    assert manager.get(change_url).status_code == 200


def test_projects_and_revenue_in_the_admin_need_their_powers():
    project = ProjectFactory(is_published=True, name="Private-ish")
    plain = page_as(staff_with("projects.view_project", "marketplace.view_revenueevent"))
    for url in (
        "/admin/projects/project/",
        f"/admin/projects/project/{project.pk}/change/",
        "/admin/projects/projectfile/",
        "/admin/marketplace/revenueevent/",
        "/admin/marketplace/revenueevent/stats/",
    ):
        assert plain.get(url).status_code == 403, url

    reader = page_as(staff_with(powers.READ_ALL_PROJECTS))
    listed = reader.get("/admin/projects/project/")
    assert listed.status_code == 200
    assert "unpublish" not in _action_names(listed)
    reader.post(
        "/admin/projects/project/", {"action": "unpublish", "_selected_action": [str(project.pk)]}
    )
    project.refresh_from_db()
    assert project.is_published

    moderator = page_as(staff_with(powers.READ_ALL_PROJECTS, powers.UNPUBLISH_PROJECTS))
    moderator.post(
        "/admin/projects/project/", {"action": "unpublish", "_selected_action": [str(project.pk)]}
    )
    project.refresh_from_db()
    assert not project.is_published

    finance = page_as(staff_with(powers.READ_REVENUE))
    assert finance.get("/admin/marketplace/revenueevent/").status_code == 200
    assert finance.get("/admin/marketplace/revenueevent/stats/").status_code == 200


# ---------------------------------------------------------------------------- the staff pages


def test_admin_index_links_only_to_the_pages_the_staff_may_use():
    plain = page_as(UserFactory(is_staff=True)).get("/admin/").content.decode()
    assert "/admin/marketplace/revenueevent/stats/" not in plain
    finance = page_as(staff_with(powers.READ_REVENUE)).get("/admin/").content.decode()
    assert "/admin/marketplace/revenueevent/stats/" in finance


def test_stats_page_refusal_is_counted():
    counted = refused(powers.READ_REVENUE)
    page = page_as(UserFactory(is_staff=True)).get("/admin/marketplace/revenueevent/stats/")
    assert page.status_code == 403
    assert refused(powers.READ_REVENUE) == counted + 1


def test_read_only_switch_needs_the_switch_power():
    plain = page_as(staff_with("config.change_readonlyswitch"))
    page = plain.get("/admin/read-only/")
    assert page.status_code == 200
    assert "Switch read-only" in page.content.decode()
    assert plain.post("/admin/read-only/", {"enabled": "1"}).status_code == 403
    assert not ReadOnlySwitch.objects.filter(enabled=True).exists()

    operator = page_as(staff_with(powers.SWITCH_READ_ONLY))
    assert 'value="Turn read-only on"' in operator.get("/admin/read-only/").content.decode()
    operator.post("/admin/read-only/", {"enabled": "1", "reason": "Maintenance"})
    assert ReadOnlySwitch.objects.get(pk=1).enabled
    operator.post("/admin/read-only/", {"enabled": "0"})
    assert not ReadOnlySwitch.objects.get(pk=1).enabled


# ------------------------------------------------------------------------------------ roles


def test_create_staff_roles_makes_groups_that_grant_the_powers(purchase):
    out = io.StringIO()
    call_command("create_staff_roles", stdout=out)
    call_command("create_staff_roles", stdout=out)  # again: nothing new
    assert "Finance: up to date" in out.getvalue()
    assert set(Group.objects.values_list("name", flat=True)) >= set(powers.ROLES)

    moderator = UserFactory(is_staff=True)
    moderator.groups.add(Group.objects.get(name="Moderators"))
    accountant = UserFactory(is_staff=True)
    accountant.groups.add(Group.objects.get(name="Finance"))

    refund_path = f"/api/v1/marketplace/purchases/{purchase.pk}/refund/"
    assert api_as(moderator).post(refund_path).status_code == 403
    assert api_as(moderator).get("/api/v1/admin/projects/").status_code == 200
    assert api_as(accountant).get("/api/v1/admin/projects/").status_code == 403
    assert api_as(accountant).post(refund_path).status_code == 200
    assert Project.objects.count() == 1
