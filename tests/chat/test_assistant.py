"""The assistant's turns against a real OpenAI-compatible server on loopback (scripted answers,
streamed as the API streams them) through the real `openai` client, and real MCP servers."""

import json

import pytest

from chat import assistant
from chat.models import AssistantTurn, ChatMessage, LanguageModel, TokenUsage
from config.errors import Conflict
from credentials.services import credential_set
from mcp_servers.services import mcp_server_check
from projects.models import ProjectFile
from tests.factories import McpServerFactory, ProjectFactory, ProjectFileFactory, UserFactory
from tests.mcp_servers.servers import digest

pytestmark = pytest.mark.django_db


@pytest.fixture
def project(user):
    project = ProjectFactory(owner=user, name="Weather app")
    ProjectFileFactory(project=project, path="README.md", content="# Weather\n")
    return project


def start(user, project, content="Hello"):
    turn = assistant.assistant_turn_start(user=user, project=project, content=content)
    turn.refresh_from_db()
    return turn


def thread(project):
    return list(ChatMessage.objects.filter(project=project).order_by("id"))


def test_a_turn_streams_a_text_answer_into_the_thread(user, project, model_server, language_model):
    model_server.answer("Hi! How can I help with the weather app?", pieces=4)

    turn = start(user, project, "Hello there")

    assert turn.state == "done"
    user_message, reply = thread(project)
    assert (user_message.role, user_message.content) == ("user", "Hello there")
    assert reply.role == "assistant"
    assert reply.content == "Hi! How can I help with the weather app?"
    assert reply.metadata["model"] == "Stub"
    assert reply.metadata["streaming"] is False
    assert reply.metadata["usage"] == {"prompt_tokens": 20, "completion_tokens": 10}
    assert reply.metadata["duration_ms"] >= 0
    assert (turn.prompt_tokens, turn.completion_tokens, turn.steps) == (20, 10, 1)
    usage = TokenUsage.objects.get(user=user, model=language_model)
    assert (usage.prompt_tokens, usage.completion_tokens, usage.turns) == (20, 10, 1)

    [request] = model_server.requests
    body = request.body
    assert body["model"] == "stub-1"
    assert body["stream"] is True
    assert request.headers["authorization"] == "Bearer sk-model-key-123456"
    system = body["messages"][0]
    assert system["role"] == "system"
    assert "Weather app" in system["content"]
    assert "README.md" in system["content"]
    assert body["messages"][-1] == {"role": "user", "content": "Hello there"}
    names = {tool["function"]["name"] for tool in body["tools"]}
    assert {"list_files", "read_file", "write_file"} <= names


def test_earlier_conversation_is_sent_and_trimmed_to_the_context_window(
    user, project, model_server, language_model
):
    model_server.answer("first")
    start(user, project, "one")
    model_server.answer("second")
    start(user, project, "two")
    assert [m["content"] for m in model_server.requests[-1].body["messages"][1:]] == [
        "one",
        "first",
        "two",
    ]

    model_server.answer("third")
    start(user, project, "a" * 2000)
    model_server.answer("fourth")
    start(user, project, "b" * 2000)
    # 4,500 characters of budget less the prompt and the tools: the newest fit, "a…" does not.
    language_model.context_window = 1500
    language_model.save()
    model_server.answer("fifth")
    start(user, project, "c" * 100)
    sent = [m["content"] for m in model_server.requests[-1].body["messages"][1:]]
    assert sent[-3:] == ["b" * 2000, "fourth", "c" * 100]
    assert "a" * 2000 not in sent
    assert "one" not in sent


def test_the_assistant_reads_files_and_writes_one_after_approval(
    user, project, model_server, language_model
):
    model_server.answer(
        "Let me look.",
        tool_calls=[("call_1", "list_files", {}), ("call_2", "read_file", {"path": "README.md"})],
    )
    model_server.answer(
        "", tool_calls=[("call_3", "write_file", {"path": "app.py", "content": "print(1)\n"})]
    )
    model_server.answer("Added app.py.")

    turn = start(user, project, "Add an app.py")

    assert turn.state == "waiting"
    assert turn.pending_call["name"] == "write_file"
    assert not ProjectFile.objects.filter(project=project, path="app.py").exists()
    listed, read, waiting = [m for m in thread(project) if m.role == "tool"]
    assert listed.metadata["state"] == "done"
    assert "README.md" in listed.content
    assert read.content == "# Weather\n"
    assert waiting.metadata["state"] == "waiting"
    assert waiting.metadata["tool_call"]["destructive"] is True
    assert listed.metadata["model"] == "Stub"
    assert "usage" not in listed.metadata  # its step wrote text, which carries the figures
    assert waiting.metadata["usage"] == {"prompt_tokens": 20, "completion_tokens": 10}
    # The second request carried the first step's calls and their results, paired by id.
    second = model_server.requests[1].body["messages"]
    step = next(m for m in second if m["role"] == "assistant")
    assert step["content"] == "Let me look."
    assert [c["id"] for c in step["tool_calls"]] == ["call_1", "call_2"]
    results = [m for m in second if m["role"] == "tool"]
    assert [(r["tool_call_id"], r["content"]) for r in results][1] == ("call_2", "# Weather\n")

    assistant.assistant_turn_confirm(user=user, turn_id=turn.pk, approve=True)

    turn.refresh_from_db()
    assert turn.state == "done"
    assert ProjectFile.objects.get(project=project, path="app.py").content == "print(1)\n"
    waiting.refresh_from_db()
    assert waiting.metadata["state"] == "done"
    assert "Created app.py" in waiting.content
    assert thread(project)[-1].content == "Added app.py."


def test_a_refused_write_never_happens_and_the_model_is_told(
    user, project, model_server, language_model
):
    model_server.answer("", tool_calls=[("w", "write_file", {"path": "x.py", "content": "1"})])
    model_server.answer("Understood, I will not write it.")
    turn = start(user, project, "Write x.py")

    assistant.assistant_turn_confirm(user=user, turn_id=turn.pk, approve=False)

    turn.refresh_from_db()
    assert turn.state == "done"
    assert not ProjectFile.objects.filter(project=project, path="x.py").exists()
    last_request = model_server.requests[-1].body["messages"]
    assert last_request[-1] == {
        "role": "tool",
        "tool_call_id": "w",
        "content": "Refused by the user; not run.",
    }
    with pytest.raises(Conflict):
        assistant.assistant_turn_confirm(user=user, turn_id=turn.pk, approve=True)


def test_a_write_that_breaks_a_file_rule_is_an_error_result(
    user, project, model_server, language_model
):
    model_server.answer("", tool_calls=[("w", "write_file", {"path": "../etc/x", "content": "1"})])
    model_server.answer("That path was refused.")
    turn = start(user, project)
    assistant.assistant_turn_confirm(user=user, turn_id=turn.pk, approve=True)

    tool = next(m for m in thread(project) if m.role == "tool")
    assert tool.metadata["state"] == "error"
    assert tool.metadata["is_error"] is True
    assert model_server.requests[-1].body["messages"][-1]["content"] == tool.content
    assert ProjectFile.objects.filter(project=project).count() == 1


SPEC = [{"key": "API_TOKEN", "label": "Token", "required": True, "secret": True}]
HEADERS = {"Authorization": "Bearer {{API_TOKEN}}"}
SECRET = "user-secret-token-98765"


@pytest.fixture
def keyed_server(demo):
    server = mcp_server_check(
        server=McpServerFactory(
            url=demo.url, name="Keyed", slug="keyed", credential_spec=SPEC, headers=HEADERS
        )
    )
    assert server.last_check_status == "ok", server.last_check_error
    return server


def test_an_mcp_tool_runs_with_the_users_key_which_the_model_never_sees(
    user, project, model_server, language_model, keyed_server
):
    credential_set(owner=user, server=keyed_server, key="API_TOKEN", value=SECRET)
    model_server.answer("", tool_calls=[("a", "keyed__whoami", {}), ("b", "keyed__leak", {})])
    model_server.answer("Done.")

    turn = start(user, project, "Who am I?")

    assert turn.state == "done"
    whoami, leak = [m for m in thread(project) if m.role == "tool"]
    assert whoami.content == digest(f"Bearer {SECRET}")  # the header arrived
    assert SECRET not in leak.content  # the hostile echo came back redacted
    offered = {t["function"]["name"] for t in model_server.requests[0].body["tools"]}
    assert {"keyed__whoami", "keyed__add"} <= offered
    for request in model_server.requests:
        assert SECRET not in json.dumps(request.body)
        assert SECRET not in json.dumps(request.headers)


def test_the_step_limit_ends_a_turn_with_a_message(
    user, project, model_server, language_model, settings
):
    settings.ASSISTANT_MAX_STEPS = 2
    for index in range(3):
        model_server.answer("", tool_calls=[(f"c{index}", "list_files", {})])

    turn = start(user, project)

    assert (turn.state, turn.steps) == ("stopped", 2)
    assert len(model_server.requests) == 2
    last = thread(project)[-1]
    assert last.role == "system"
    assert "after 2 steps" in last.content


def test_the_daily_token_limit_stops_a_turn_and_refuses_the_next(
    user, project, model_server, language_model
):
    language_model.daily_token_limit = 25
    language_model.save()
    model_server.answer("", tool_calls=[("c", "list_files", {})], usage=(20, 10))

    turn = start(user, project)

    assert turn.state == "stopped"
    assert "today's 25 tokens" in thread(project)[-1].content
    with pytest.raises(assistant.TokenLimitReached):
        start(user, project, "again")
    assert len(model_server.requests) == 1


def test_a_provider_that_is_down_fails_the_turn_and_keeps_the_message(user, project, db, settings):
    settings.ASSISTANT_RUN_INLINE = True
    LanguageModel.objects.create(name="Gone", base_url="http://127.0.0.1:9/v1", model_id="m")

    turn = start(user, project, "Anyone there?")

    assert turn.state == "failed"
    user_message, notice = thread(project)
    assert user_message.content == "Anyone there?"
    assert notice.role == "system"
    assert "could not be reached" in notice.content
    assert "saved" in notice.content


def test_a_slow_provider_times_out_with_a_clear_message(
    user, project, model_server, language_model, settings
):
    settings.ASSISTANT_PROVIDER_TIMEOUT_SECONDS = 0.5
    model_server.answer("late", hang=2)

    turn = start(user, project)

    assert turn.state == "failed"
    assert "did not answer in time" in thread(project)[-1].content


def test_a_provider_error_status_fails_the_turn(user, project, model_server, language_model):
    model_server.answer(status=500)
    turn = start(user, project)
    assert turn.state == "failed"
    assert "(500)" in thread(project)[-1].content
    assert "sk-model-key" not in thread(project)[-1].content


def test_no_model_configured_says_so(user, project):
    with pytest.raises(assistant.AssistantUnavailable, match="No assistant model"):
        start(user, project)
    assert thread(project) == []


def test_one_live_turn_per_project_and_stop_while_waiting(
    user, project, model_server, language_model
):
    model_server.answer("", tool_calls=[("w", "write_file", {"path": "a.py", "content": "1"})])
    turn = start(user, project)
    assert turn.state == "waiting"

    with pytest.raises(Conflict, match="still answering"):
        start(user, project, "hurry up")
    assert not ChatMessage.objects.filter(content="hurry up").exists()

    assistant.assistant_turn_stop(user=user, turn_id=turn.pk)
    turn.refresh_from_db()
    assert turn.state == "stopped"
    assert not ProjectFile.objects.filter(project=project, path="a.py").exists()
    tool = next(m for m in thread(project) if m.role == "tool")
    assert tool.metadata["state"] == "refused"


def test_two_users_never_see_each_others_tools_files_or_messages(
    project, user, model_server, language_model, demo
):
    other = UserFactory()
    theirs = ProjectFactory(owner=other, name="Their project")
    ProjectFileFactory(project=theirs, path="secret.txt", content="their secret")
    private = McpServerFactory(url=demo.url, name="Private", slug="private", credential_spec=[])
    private = mcp_server_check(server=private)
    from django.contrib.auth.models import Group

    group = Group.objects.create(name="insiders")
    private.allowed_groups.add(group)
    other.groups.add(group)
    model_server.answer("theirs")
    start(other, theirs, "their question")
    model_server.answer("", tool_calls=[("r", "read_file", {"path": "secret.txt"})])
    model_server.answer("nothing there")

    start(user, project, "my question")

    mine = model_server.requests[-2].body
    assert "their question" not in json.dumps(mine["messages"])
    assert "Their project" not in json.dumps(mine)
    assert not any(t["function"]["name"].startswith("private__") for t in mine["tools"])
    assert any(
        t["function"]["name"].startswith("private__")
        for t in model_server.requests[0].body["tools"]
    )
    result = next(m for m in thread(project) if m.role == "tool")
    assert result.content == "File not found."
    assert "their secret" not in result.content
    with pytest.raises(Exception, match="not found"):
        assistant.assistant_turn_stop(user=user, turn_id=AssistantTurn.objects.get(owner=other).pk)


def test_model_keys_rotate_with_the_credentials_and_an_unreadable_key_fails_clearly(
    user, project, model_server, settings
):
    from io import StringIO

    from django.core.management import call_command

    settings.FERNET_KEYS = ["old-key-0123456789-abcdefghijklmnop"]
    LanguageModel.objects.create(
        name="Rotated", base_url=model_server.url, model_id="m", api_key="sk-rotate-me-0001"
    )
    settings.FERNET_KEYS = ["new-key-9876543210-zyxwvutsrqponmlk", *settings.FERNET_KEYS]
    out = StringIO()
    call_command("rotate_credentials_key", stdout=out, stderr=StringIO(), verbosity=0)
    assert "1 assistant model API keys re-encrypted" in out.getvalue()

    settings.FERNET_KEYS = settings.FERNET_KEYS[:1]  # the old key is gone; the model still works
    model_server.answer("still here")
    assert start(user, project).state == "done"
    assert model_server.requests[-1].headers["authorization"] == "Bearer sk-rotate-me-0001"

    settings.FERNET_KEYS = ["a-key-that-opens-nothing-000000000000"]
    page_models = list(assistant.language_model_list_enabled())  # listing never decrypts
    assert [m.name for m in page_models] == ["Rotated"]
    turn = start(user, project, "and now?")
    assert turn.state == "failed"
    assert "cannot be decrypted" in thread(project)[-1].content


def test_a_model_whose_key_no_key_opens_still_loads_in_the_admin(admin_client, settings):
    settings.FERNET_KEYS = ["lost-key-0123456789-abcdefghijklmnop"]
    model = LanguageModel.objects.create(
        name="Lost", base_url="http://127.0.0.1:9/v1", model_id="m", api_key="sk-lost-0001"
    )
    settings.FERNET_KEYS = ["a-key-that-opens-nothing-000000000000"]
    url = f"/admin/chat/languagemodel/{model.pk}/change/"
    page = admin_client.get(url)
    assert page.status_code == 200
    assert "sk-lost-0001" not in page.content.decode()
    # Saved without a new key: the stored token is written back as it was.
    form = {
        "name": "Lost again",
        "base_url": "http://127.0.0.1:9/v1",
        "model_id": "m",
        "api_key": "",
        "enabled": "on",
        "position": "0",
        "context_window": "8192",
        "daily_token_limit": "100000",
    }
    answer = admin_client.post(url, form)
    assert answer.status_code == 302, answer.context["adminform"].form.errors
    assert LanguageModel.objects.get(pk=model.pk).name == "Lost again"
    settings.FERNET_KEYS = ["lost-key-0123456789-abcdefghijklmnop"]
    assert LanguageModel.objects.get(pk=model.pk).api_key == "sk-lost-0001"
