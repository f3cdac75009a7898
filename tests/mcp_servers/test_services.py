import pytest
from django.contrib.auth.models import Group

from config.errors import Conflict, Invalid, NotFound
from mcp_servers.models import McpServer
from mcp_servers.selectors import mcp_server_get_for_user, mcp_server_list_for_user
from mcp_servers.services import (
    mcp_server_create,
    mcp_server_delete,
    mcp_server_restore,
    mcp_server_update,
)
from tests.factories import McpServerFactory, UserFactory

pytestmark = pytest.mark.django_db

HTTP = {
    "name": "Search",
    "transport": "streamable_http",
    "url": "https://search.example.com/mcp",
    "credential_spec": [{"key": "API_TOKEN", "label": "Token", "required": True, "secret": True}],
    "headers": {"Authorization": "Bearer {{API_TOKEN}}"},
}
STDIO = {"name": "Files", "transport": "stdio", "command": "npx", "args": ["-y", "server-files"]}


def server_rows():
    return list(McpServer.objects.order_by("slug").values())


def test_mcp_server_create_http(admin_user):
    server = mcp_server_create(actor=admin_user, **HTTP)

    server.refresh_from_db()
    assert (server.slug, server.status, server.created_by) == ("search", "active", admin_user)
    assert server.credential_keys == {"API_TOKEN"}
    assert server.deleted_at is None


def test_mcp_server_create_stdio_has_no_url(admin_user):
    server = mcp_server_create(actor=admin_user, url="", **STDIO)

    server.refresh_from_db()
    assert (server.url, server.command, server.args) == (None, "npx", ["-y", "server-files"])


def test_mcp_server_create_inactive(admin_user):
    server = mcp_server_create(actor=admin_user, status="inactive", **STDIO)
    assert server.status == "inactive"


def test_mcp_server_slugs_stay_unique(admin_user):
    first = mcp_server_create(actor=admin_user, **HTTP)
    mcp_server_delete(server=first)

    second = mcp_server_create(actor=admin_user, **HTTP)

    assert (first.slug, second.slug) == ("search", "search-2")


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({**HTTP, "url": None}, "url"),
        ({**HTTP, "url": ""}, "url"),
        ({**HTTP, "url": "ftp://files.example.com/"}, "url"),
        ({**HTTP, "url": "not a url"}, "url"),
        ({**HTTP, "transport": "websocket"}, "transport"),
        ({**STDIO, "command": ""}, "command"),
        ({**STDIO, "args": "-y server"}, "args"),
        ({**STDIO, "args": ["ok", 3]}, "args"),
        ({**HTTP, "name": ""}, "name"),
        ({**HTTP, "name": "x" * 101}, "name"),
        ({**HTTP, "description": "x" * 5001}, "description"),
        ({**HTTP, "credential_spec": {"key": "API_TOKEN"}}, "credential_spec"),
        ({**HTTP, "credential_spec": [{"key": "api_token"}]}, "credential_spec"),
        ({**HTTP, "credential_spec": [{"key": "A" * 65}]}, "credential_spec"),
        ({**HTTP, "credential_spec": [{"key": "A"}, {"key": "A"}]}, "credential_spec"),
        ({**HTTP, "credential_spec": [{"key": "A", "colour": "red"}]}, "credential_spec"),
        ({**HTTP, "credential_spec": [{"key": "A", "secret": "yes"}]}, "credential_spec"),
        ({**HTTP, "headers": {"Authorization": "Bearer {{OTHER}}"}}, "headers"),
        ({**HTTP, "headers": ["Authorization"]}, "headers"),
        ({**HTTP, "disabled_tools": "search"}, "disabled_tools"),
    ],
)
def test_mcp_server_create_refuses_bad_input(admin_user, fields, field):
    with pytest.raises(Invalid) as excinfo:
        mcp_server_create(actor=admin_user, **fields)

    assert field in excinfo.value.errors
    assert McpServer.objects.count() == 0


def test_mcp_server_create_refuses_unknown_fields_and_statuses(admin_user):
    with pytest.raises(Invalid):
        mcp_server_create(actor=admin_user, created_by=None, **STDIO)
    with pytest.raises(Invalid):
        mcp_server_create(actor=admin_user, status="deleted", **STDIO)
    assert McpServer.objects.count() == 0


def test_mcp_server_name_is_unique_among_live_servers(admin_user):
    mcp_server_create(actor=admin_user, **HTTP)
    before = server_rows()

    with pytest.raises(Conflict):
        mcp_server_create(actor=admin_user, **{**HTTP, "slug": "other-slug"})

    assert server_rows() == before


def test_mcp_server_name_of_a_deleted_server_can_be_reused(admin_user):
    old = mcp_server_create(actor=admin_user, **HTTP)
    mcp_server_delete(server=old)

    new = mcp_server_create(actor=admin_user, **HTTP)

    assert McpServer.objects.filter(name="Search").count() == 2
    assert new.status == "active"


def test_mcp_server_update_changes_fields_and_status(admin_user):
    server = mcp_server_create(actor=admin_user, **HTTP)

    mcp_server_update(server=server, description="Better", status="inactive")

    server.refresh_from_db()
    assert (server.description, server.status) == ("Better", "inactive")
    mcp_server_update(server=server, status="active")
    server.refresh_from_db()
    assert server.status == "active"


@pytest.mark.parametrize(
    "fields",
    [
        {"status": "deleted"},
        {"status": "archived"},
        {"url": "javascript:alert(1)"},
        {"transport": "stdio"},  # no command
        {"owner": "x"},
        {"credential_spec": []},  # the header still names API_TOKEN
    ],
)
def test_mcp_server_update_refuses_bad_input_and_changes_nothing(admin_user, fields):
    server = mcp_server_create(actor=admin_user, **HTTP)
    before = server_rows()

    with pytest.raises(Invalid):
        mcp_server_update(server=server, **fields)

    assert server_rows() == before


def test_mcp_server_update_to_a_taken_name_is_a_conflict(admin_user):
    mcp_server_create(actor=admin_user, **HTTP)
    other = mcp_server_create(actor=admin_user, **STDIO)
    before = server_rows()

    with pytest.raises(Conflict):
        mcp_server_update(server=other, name="Search")

    assert server_rows() == before


def test_mcp_server_soft_delete_and_restore(admin_user):
    server = mcp_server_create(actor=admin_user, **HTTP)

    mcp_server_delete(server=server)
    server.refresh_from_db()
    assert server.status == "deleted"
    assert server.deleted_at is not None
    deleted_at = server.deleted_at

    mcp_server_delete(server=server)  # deleting twice keeps the first time
    server.refresh_from_db()
    assert server.deleted_at == deleted_at

    with pytest.raises(Invalid):
        mcp_server_update(server=server, status="active")

    mcp_server_restore(server=server)
    server.refresh_from_db()
    assert (server.status, server.deleted_at) == ("inactive", None)


def test_mcp_server_restore_of_a_live_server_does_nothing(admin_user):
    server = mcp_server_create(actor=admin_user, **HTTP)
    before = server_rows()
    assert mcp_server_restore(server=server).status == "active"
    assert server_rows() == before


def test_mcp_server_restore_refuses_when_its_name_was_taken(admin_user):
    old = mcp_server_create(actor=admin_user, **HTTP)
    mcp_server_delete(server=old)
    mcp_server_create(actor=admin_user, **HTTP)
    before = server_rows()

    with pytest.raises(Conflict):
        mcp_server_restore(server=old)

    assert server_rows() == before


# ---------------------------------------------------------------- selectors


def test_users_see_only_active_servers(user, admin_user):
    active = McpServerFactory(name="B active")
    McpServerFactory(name="C inactive", status="inactive")
    deleted = McpServerFactory(name="A deleted")
    mcp_server_delete(server=deleted)

    assert list(mcp_server_list_for_user(user=user)) == [active]
    assert mcp_server_get_for_user(user=user, pk=active.pk) == active
    for server in McpServer.objects.exclude(pk=active.pk):
        with pytest.raises(NotFound):
            mcp_server_get_for_user(user=user, pk=server.pk)


def test_staff_choose_the_status_they_list_and_see_every_server(admin_user):
    active = McpServerFactory()
    inactive = McpServerFactory(status="inactive")
    deleted = McpServerFactory()
    mcp_server_delete(server=deleted)

    assert list(mcp_server_list_for_user(user=admin_user)) == [active]
    assert list(mcp_server_list_for_user(user=admin_user, status="inactive")) == [inactive]
    assert list(mcp_server_list_for_user(user=admin_user, status="deleted")) == [deleted]
    assert mcp_server_get_for_user(user=admin_user, pk=deleted.pk) == deleted


def test_servers_limited_to_groups(user, other_user):
    group = Group.objects.create(name="beta")
    user.groups.add(group)
    open_server = McpServerFactory(name="Open")
    beta_server = McpServerFactory(name="Beta")
    beta_server.allowed_groups.add(group, Group.objects.create(name="gamma"))

    assert list(mcp_server_list_for_user(user=user)) == [beta_server, open_server]
    assert list(mcp_server_list_for_user(user=other_user)) == [open_server]
    with pytest.raises(NotFound):
        mcp_server_get_for_user(user=other_user, pk=beta_server.pk)


@pytest.mark.parametrize("pk", ["not-a-uuid", None, "00000000-0000-0000-0000-000000000000"])
def test_mcp_server_get_unknown_is_not_found(user, admin_user, pk):
    for actor in (user, admin_user):
        with pytest.raises(NotFound):
            mcp_server_get_for_user(user=actor, pk=pk)


@pytest.mark.parametrize("n", [1, 30])
def test_mcp_server_list_queries_do_not_grow(n, django_assert_num_queries):
    member = UserFactory()
    group = Group.objects.create(name="team")
    member.groups.add(group)
    for server in McpServerFactory.create_batch(n):
        server.allowed_groups.add(group)
    with django_assert_num_queries(1):
        assert len([s.name for s in mcp_server_list_for_user(user=member)]) == n


def test_one_slug_helper_names_servers_for_the_catalogue_and_the_import():
    from mcp_servers.services import mcp_server_slug

    assert mcp_server_slug("Ünïcode Server!", taken=lambda slug: False) == "unicode-server"
    taken = {"search", "search-2"}
    assert mcp_server_slug("Search", taken=taken.__contains__) == "search-3"
    assert mcp_server_slug("!!!", taken=lambda slug: False) == "server"
