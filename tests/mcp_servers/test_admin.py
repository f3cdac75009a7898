import json

import pytest
from django.contrib.admin.models import LogEntry
from django.contrib.auth.models import Group
from django.utils import timezone

from mcp_servers.admin import McpServerAdmin
from mcp_servers.models import McpServer
from tests.factories import CredentialFactory, McpServerFactory

pytestmark = pytest.mark.django_db

URL = "/admin/mcp_servers/mcpserver/"


def _form(**overrides):
    data = {
        "name": "Search",
        "slug": "",
        "description": "Web search.",
        "transport": "streamable_http",
        "url": "https://search.example.com/mcp",
        "command": "",
        "args": "[]",
        "credential_spec": json.dumps([{"key": "API_TOKEN", "label": "Token", "required": True}]),
        "headers": json.dumps({"Authorization": "Bearer {{API_TOKEN}}"}),
        "disabled_tools": "[]",
    }
    data.update(overrides)
    return data


def test_non_staff_is_sent_to_admin_login(client, user):
    client.force_login(user)
    response = client.get(URL)
    assert response.status_code == 302
    assert "/admin/login/" in response["Location"]


def test_list_hides_deleted_until_filtered(admin_client):
    McpServerFactory(name="Live one")
    McpServerFactory(name="Resting one", status="inactive")
    McpServerFactory(name="Gone one", status="deleted", deleted_at=timezone.now())
    text = admin_client.get(URL).text
    assert "Live one" in text
    assert "Resting one" in text
    assert "Gone one" not in text
    deleted = admin_client.get(URL + "?status=deleted").text
    assert "Gone one" in deleted
    assert "Live one" not in deleted
    assert "Gone one" in admin_client.get(URL + "?status=all").text


def test_search(admin_client):
    McpServerFactory(name="GitHub tools")
    McpServerFactory(name="Weather")
    text = admin_client.get(URL + "?q=github").text
    assert "GitHub tools" in text
    assert "Weather" not in text


def test_add_goes_through_the_service(admin_client, admin_user):
    group = Group.objects.create(name="beta")
    response = admin_client.post(URL + "add/", _form(allowed_groups=[group.pk]))
    assert response.status_code == 302, response.context["adminform"].form.errors
    server = McpServer.objects.get(name="Search")
    assert server.slug == "search"
    assert server.created_by == admin_user
    assert server.status == "active"
    assert server.credential_spec == [{"key": "API_TOKEN", "label": "Token", "required": True}]
    assert list(server.allowed_groups.all()) == [group]


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"credential_spec": '[{"key": "lower"}]'}, "the key must match"),
        ({"credential_spec": "{not json"}, "Enter a valid JSON"),
        ({"credential_spec": '[{"key": "A"}, {"key": "A"}]'}, "appears twice"),
        ({"url": ""}, "A URL is required"),
        ({"headers": '{"X": "{{OTHER}}"}'}, "not in the credential spec"),
    ],
)
def test_add_validates(admin_client, overrides, message):
    response = admin_client.post(URL + "add/", _form(**overrides))
    assert response.status_code == 200
    assert message in response.text
    assert not McpServer.objects.exists()


def test_duplicate_live_name_is_a_form_error(admin_client):
    McpServerFactory(name="Search")
    response = admin_client.post(URL + "add/", _form())
    assert response.status_code == 200
    assert "Another server that is not deleted has this name." in response.text
    assert McpServer.objects.filter(name="Search").count() == 1


@pytest.fixture
def rival_takes_the_name(monkeypatch):
    """Another server takes the name after the form's check passed and before the save, so the
    service's own insert meets the unique constraint (the race the form cannot see)."""
    save_form = McpServerAdmin.save_form

    def racing(self, request, form, change):
        McpServerFactory(name=form.cleaned_data["name"])
        return save_form(self, request, form, change)

    monkeypatch.setattr(McpServerAdmin, "save_form", racing)


def test_a_conflict_in_the_service_is_a_form_error_not_a_500(admin_client, rival_takes_the_name):
    response = admin_client.post(URL + "add/", _form(description="Mine."))

    assert response.status_code == 200
    form = response.context["adminform"].form
    assert form.errors["name"] == ["An MCP server with this name or slug already exists."]
    assert form["description"].value() == "Mine."  # what was typed is still there
    assert not McpServer.objects.filter(description="Mine.").exists()
    assert not LogEntry.objects.exists()


def test_a_conflict_on_change_keeps_the_server_as_it_was(admin_client, rival_takes_the_name):
    server = McpServerFactory(name="Old name")

    response = admin_client.post(
        f"{URL}{server.pk}/change/", _form(name="New name", slug=server.slug)
    )

    assert response.status_code == 200
    assert "An MCP server with this name or slug already exists." in response.text
    server.refresh_from_db()
    assert server.name == "Old name"
    assert not LogEntry.objects.exists()


def test_change_goes_through_the_service(admin_client):
    server = McpServerFactory(name="Old name")
    response = admin_client.post(
        f"{URL}{server.pk}/change/", _form(name="New name", slug=server.slug)
    )
    assert response.status_code == 302
    server.refresh_from_db()
    assert server.name == "New name"
    assert server.headers == {"Authorization": "Bearer {{API_TOKEN}}"}


def test_change_form_of_a_deleted_server_opens(admin_client):
    server = McpServerFactory(status="deleted", deleted_at=timezone.now())
    assert admin_client.get(f"{URL}{server.pk}/change/").status_code == 200


def _action(admin_client, action, *servers):
    return admin_client.post(
        URL + "?status=all",
        {"action": action, "_selected_action": [str(s.pk) for s in servers]},
        follow=True,
    )


def test_actions_deactivate_activate_soft_delete_restore(admin_client):
    server = McpServerFactory()
    _action(admin_client, "deactivate", server)
    server.refresh_from_db()
    assert server.status == "inactive"
    _action(admin_client, "activate", server)
    server.refresh_from_db()
    assert server.status == "active"
    response = _action(admin_client, "soft_delete", server)
    assert "1 server(s) soft-deleted." in response.text
    server.refresh_from_db()
    assert (server.status, server.deleted_at is not None) == ("deleted", True)
    _action(admin_client, "restore", server)
    server.refresh_from_db()
    assert (server.status, server.deleted_at) == ("inactive", None)


def test_activate_deleted_server_reports_error(admin_client):
    server = McpServerFactory(status="deleted", deleted_at=timezone.now())
    response = _action(admin_client, "activate", server)
    assert "Restore a deleted server" in response.text
    server.refresh_from_db()
    assert server.status == "deleted"


def test_soft_delete_keeps_the_row_and_its_credentials(admin_client):
    credential = CredentialFactory()
    _action(admin_client, "soft_delete", credential.mcp_server)
    assert McpServer.objects.filter(pk=credential.mcp_server_id, status="deleted").exists()
    credential.refresh_from_db()


def test_no_hard_delete(admin_client):
    server = McpServerFactory()
    assert admin_client.get(f"{URL}{server.pk}/delete/").status_code == 403
    assert "delete_selected" not in admin_client.get(URL).text
    assert McpServer.objects.filter(pk=server.pk).exists()


def test_check_now_and_approve_tools_actions(admin_client, demo):
    server = McpServerFactory(url=demo.url, credential_spec=[])
    response = _action(admin_client, "check_now", server)
    server.refresh_from_db()
    assert server.last_check_status == "ok"
    assert f"{server.name}: ok" in response.text
    assert server.tools
    response = _action(admin_client, "approve_tools", server)
    assert "had their tools approved" in response.text
    server.refresh_from_db()
    assert server.tools_approved_at is not None
    assert not server.tools_changed


def test_check_now_never_runs_stdio(admin_client):
    server = McpServerFactory(transport="stdio", url=None, command="npx some-server")
    response = _action(admin_client, "check_now", server)
    assert "never executed" in response.text
    server.refresh_from_db()
    assert server.last_check_status == "not_run"


def test_approve_before_check_is_an_error_message(admin_client):
    server = McpServerFactory()
    response = _action(admin_client, "approve_tools", server)
    assert "Check the server before approving its tools." in response.text
    server.refresh_from_db()
    assert server.tools_approved_at is None


def test_an_oauth_client_secret_is_write_only(admin_client):
    form = _form(
        authentication="oauth",
        credential_spec="[]",
        headers="{}",
        oauth_client_id="atelier-client",
        oauth_client_secret="pre-registered-secret-123456",
        oauth_scopes="repo read:org",
    )
    response = admin_client.post(URL + "add/", form)
    assert response.status_code == 302, response.context["adminform"].form.errors
    server = McpServer.objects.get(name="Search")
    assert server.authentication == "oauth"
    assert server.oauth_client_secret == "pre-registered-secret-123456"
    page = admin_client.get(f"{URL}{server.pk}/change/").text
    assert "pre-registered-secret-123456" not in page
    # Saving again without typing it keeps it; the box clears it.
    form.pop("oauth_client_secret")
    admin_client.post(f"{URL}{server.pk}/change/", form)
    server.refresh_from_db()
    assert server.oauth_client_secret == "pre-registered-secret-123456"
    admin_client.post(f"{URL}{server.pk}/change/", {**form, "clear_oauth_client_secret": "on"})
    server.refresh_from_db()
    assert server.oauth_client_secret is None


def test_oauth_needs_an_http_server(admin_client):
    response = admin_client.post(
        URL + "add/",
        _form(
            authentication="oauth",
            transport="stdio",
            url="",
            command="run-it",
            credential_spec="[]",
            headers="{}",
        ),
    )
    assert response.status_code == 200
    assert not McpServer.objects.filter(name="Search").exists()
