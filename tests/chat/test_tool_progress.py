"""An MCP tool's progress, as its server reports it, on the chat page while the tool runs."""

import threading
import time

import pytest
from django.db import connection
from django.urls import reverse

from chat import assistant
from chat.models import ChatMessage
from mcp_servers.services import mcp_server_check
from tests.factories import McpServerFactory, ProjectFactory
from tests.mcp_servers import servers as test_servers

# The turn runs in a thread of its own while the test reads the page.
pytestmark = pytest.mark.django_db(transaction=True)


def test_the_chat_shows_a_running_tool_s_progress(user, client, model_server, language_model, demo):
    server = mcp_server_check(
        server=McpServerFactory(
            url=demo.url, name="Demo", slug="demo", credential_spec=[], headers={}
        )
    )
    assert server.last_check_status == "ok", server.last_check_error
    project = ProjectFactory(owner=user)
    model_server.answer("", tool_calls=[("a", "demo__steps", {"count": 5})])
    model_server.answer("All five done.")
    client.force_login(user)
    poll = reverse("chat:new_messages", args=[project.pk])

    def answer():
        try:
            assistant.assistant_turn_start(user=user, project=project, content="Run the steps")
        finally:
            connection.close()

    test_servers.step_gate.clear()  # the tool stops after reporting step 3
    turn = threading.Thread(target=answer)
    turn.start()
    try:
        deadline, page = time.monotonic() + 20, ""
        while "3 / 5" not in page and time.monotonic() < deadline:
            time.sleep(0.1)
            page = client.get(poll).content.decode()
        assert '<span class="tool-progress-count">3 / 5</span> · step 3 of 5' in page, page
        assert '<progress value="3.000000" max="5.000000">' in page
    finally:
        test_servers.step_gate.set()
        turn.join(timeout=30)

    call = ChatMessage.objects.get(project=project, role="tool")
    assert call.content == "5 steps done"
    assert call.metadata["state"] == "done"
    assert call.metadata["progress"]["progress"] == 5
    page = client.get(reverse("chat:thread", args=[project.pk])).content.decode()
    assert "tool-progress" not in page  # a settled call shows its result, not its progress
