"""Running an MCP tool from the chat page and through the API counts against one limit."""

import pytest
from django.test import Client
from rest_framework.test import APIClient

from chat.models import ChatMessage
from mcp_servers.services import mcp_server_check
from tests.factories import McpServerFactory, ProjectFactory

pytestmark = pytest.mark.django_db


def test_tool_runs_on_the_page_and_the_api_share_one_limit(settings, user, demo):
    settings.THROTTLE_MCP_CALL_RATE = "2/min"
    server = mcp_server_check(server=McpServerFactory(url=demo.url, credential_spec=[]))
    assert server.last_check_status == "ok", server.last_check_error
    project = ProjectFactory(owner=user)
    web, api = Client(), APIClient()
    web.force_login(user)
    api.force_authenticate(user)
    page_url = f"/projects/{project.pk}/chat/tools/?tool={server.pk}/add"
    api_url = f"/api/v1/mcp-servers/{server.pk}/tools/add/call/"
    arguments = {"a": 2, "b": 3}
    assert web.post(page_url, {"args-a": "2", "args-b": "3"}).status_code == 302
    assert api.post(api_url, {"arguments": arguments}, format="json").status_code == 200
    messages = ChatMessage.objects.count()

    page = web.post(page_url, {"args-a": "2", "args-b": "3"})
    refused = api.post(api_url, {"arguments": arguments}, format="json")

    assert page.status_code == 429
    assert int(page["Retry-After"]) > 0
    assert "try again in" in page.text
    assert refused.status_code == 429
    assert ChatMessage.objects.count() == messages  # no call was made
    assert web.get(page_url).status_code == 200  # the form is still shown
