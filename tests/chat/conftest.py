"""The live loopback MCP servers of the MCP tests, for running tools from the chat, and a
scripted OpenAI-compatible model provider on loopback for the assistant."""

import pytest

from chat.models import LanguageModel
from tests.chat.model_server import ModelServer
from tests.mcp_servers.conftest import demo, demo_live, loopback_allowed  # noqa: F401


@pytest.fixture(scope="module")
def model_server_live():
    server = ModelServer().start()
    yield server
    server.stop()


@pytest.fixture
def model_server(model_server_live, settings):
    """The scripted model provider, emptied for each test; turns run in the caller."""
    settings.ASSISTANT_RUN_INLINE = True
    model_server_live.reset()
    yield model_server_live
    model_server_live.reset()


@pytest.fixture
def language_model(model_server, db):
    return LanguageModel.objects.create(
        name="Stub", base_url=model_server.url, model_id="stub-1", api_key="sk-model-key-123456"
    )
