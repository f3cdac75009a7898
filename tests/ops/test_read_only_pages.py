"""Read-only as users see it: a banner on every page and in the admin, the refusal in the site's
layout with the operator's reason, and what the user typed kept and sendable again."""

import pytest
from django.test import Client

from chat.models import ChatMessage
from config.readonly import read_only_set
from projects.models import Project
from tests.factories import ProjectFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def member(user):
    client = Client()
    client.force_login(user)
    return client


def test_no_banner_while_writes_are_accepted(member, admin_client):
    assert "read-only-banner" not in member.get("/").text
    assert "read-only-banner" not in admin_client.get("/admin/").text


def test_banner_with_the_reason_on_pages_and_in_the_admin(member, admin_client):
    read_only_set(enabled=True, reason="Moving to the new database")

    for client, url in ((Client(), "/"), (member, "/projects/"), (admin_client, "/admin/")):
        page = client.get(url)
        assert page.status_code == 200
        assert 'id="read-only-banner"' in page.text, url
        assert "Moving to the new database" in page.text, url


def test_a_refused_form_is_shown_in_the_site_layout_with_the_input_kept(member):
    read_only_set(enabled=True, reason="Moving <data>")
    description = "Line one\nLine two, typed with care"

    response = member.post(
        "/projects/new/",
        {"name": "My new project", "description": description},
        HTTP_REFERER="http://testserver/projects/new/",
    )

    assert response.status_code == 503
    assert int(response["Retry-After"]) > 0
    page = response.text
    assert 'class="container site-header"' in page  # the site's header and stylesheets
    assert "css/site.css" in page
    assert "Moving &lt;data&gt;" in page  # the operator's reason, escaped
    assert 'action="/projects/new/"' in page
    assert 'value="My new project"' in page
    assert "Line one\nLine two, typed with care</textarea>" in page
    assert 'href="http://testserver/projects/new/"' in page
    assert not Project.objects.filter(name="My new project").exists()

    read_only_set(enabled=False)
    again = member.post("/projects/new/", {"name": "My new project", "description": description})
    assert again.status_code == 302
    assert Project.objects.get(name="My new project").description == description


def test_the_refusal_never_echoes_a_password(member):
    read_only_set(enabled=True)

    response = member.post(
        "/accounts/password_change/",
        {"old_password": "old-secret-value", "new_password1": "new-secret-value"},
    )

    assert response.status_code == 503
    assert "secret-value" not in response.text
    assert "csrfmiddlewaretoken" in response.text  # the resend form gets a fresh token


def test_an_htmx_write_gets_a_short_message_for_the_form(member, user):
    project = ProjectFactory(owner=user)
    read_only_set(enabled=True, reason="cut-over")

    response = member.post(
        f"/projects/{project.pk}/chat/", {"content": "Hello"}, HTTP_HX_REQUEST="true"
    )

    assert response.status_code == 503
    assert response.text.startswith('<p class="error-message" data-error-message>')
    assert "read-only" in response.text
    assert "cut-over" in response.text
    assert "<html" not in response.text
    assert not ChatMessage.objects.exists()


def test_a_refused_admin_write_is_shown_in_the_admin_layout(admin_client, user):
    read_only_set(enabled=True, reason="cut-over")

    response = admin_client.post(f"/admin/auth/user/{user.pk}/change/", {"username": "renamed"})

    assert response.status_code == 503
    assert 'id="site-name"' in response.text  # the admin's header
    assert 'id="read-only-banner"' in response.text
    assert "cut-over" in response.text
    assert 'value="renamed"' in response.text


def test_the_admin_sidebar_links_to_the_stats_and_the_read_only_switch(admin_client):
    page = admin_client.get("/admin/mcp_servers/mcpserver/")

    assert page.status_code == 200
    sidebar = page.text[page.text.index('id="nav-sidebar"') :]
    assert 'href="/admin/marketplace/revenueevent/stats/"' in sidebar
    assert 'href="/admin/read-only/"' in sidebar
