"""The assistant honours what an MCP server says about its tools: a tool the server marks
destructive (annotations.destructiveHint) waits for the user's confirmation like a file write;
a read-only one runs at once."""

import pytest

from chat import assistant
from chat.models import ChatMessage
from mcp_servers.services import mcp_server_check
from tests.factories import McpServerFactory, ProjectFactory
from tests.mcp_servers.servers import meta_server, running

pytestmark = pytest.mark.django_db


@pytest.fixture(scope="module")
def meta_live():
    with running(meta_server()) as live:
        yield live


@pytest.fixture
def meta(meta_live, loopback_allowed):
    server = mcp_server_check(
        server=McpServerFactory(url=meta_live.url, name="Meta", slug="meta", credential_spec=[])
    )
    assert server.last_check_status == "ok", server.last_check_error
    return server


def tool_messages(project):
    return list(ChatMessage.objects.filter(project=project, role="tool").order_by("id"))


def test_a_destructive_mcp_tool_waits_for_confirmation_and_a_read_only_one_does_not(
    user, model_server, language_model, meta
):
    project = ProjectFactory(owner=user)
    model_server.answer(
        "", tool_calls=[("a", "meta__look", {}), ("b", "meta__erase", {"path": "notes.txt"})]
    )
    model_server.answer("Erased.")

    turn = assistant.assistant_turn_start(user=user, project=project, content="Erase notes.txt")
    turn.refresh_from_db()

    assert turn.state == "waiting"
    assert turn.pending_call["name"] == "meta__erase"
    look, erase = tool_messages(project)
    assert (look.metadata["state"], look.content) == ("done", "nothing changed")
    assert erase.metadata["state"] == "waiting"
    assert erase.metadata["tool_call"]["destructive"] is True
    assert len(model_server.requests) == 1  # nothing ran past the destructive call

    assistant.assistant_turn_confirm(user=user, turn_id=turn.pk, approve=True)

    turn.refresh_from_db()
    erase.refresh_from_db()
    assert turn.state == "done"
    assert (erase.metadata["state"], erase.content) == ("done", "erased notes.txt")
