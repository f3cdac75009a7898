"""The background jobs themselves, run in place (no broker set: Celery's eager mode) and
checked for what makes them safe to run again."""

from datetime import timedelta

import pytest
from django.utils import timezone

from chat import assistant, services
from chat.models import AssistantTurn, ChatMessage
from chat.tasks import run_job
from config.celery import app as celery_app
from mcp_servers import tasks
from mcp_servers.models import McpServer
from projects.models import ProjectFile
from tests.factories import McpServerFactory, ProjectFactory
from tests.mcp_servers.servers import free_port
from tests.mcp_servers.test_probe import DEMO_TOOLS

pytestmark = pytest.mark.django_db


def test_the_scheduler_runs_the_mcp_health_check_every_interval(settings):
    entry = celery_app.conf.beat_schedule["check-mcp-servers"]
    assert entry["task"] == tasks.check_mcp_servers.name
    assert entry["schedule"] == settings.MCP_CHECK_INTERVAL_SECONDS


def test_the_health_check_job_checks_every_active_server_and_no_other(demo):
    McpServer.objects.all().delete()
    alpha = McpServerFactory(name="Alpha", url=demo.url, credential_spec=[])
    beta = McpServerFactory(
        name="Beta", url=f"http://127.0.0.1:{free_port()}/mcp", credential_spec=[]
    )
    off = McpServerFactory(name="Off", url=demo.url, status="inactive", credential_spec=[])

    assert tasks.check_mcp_servers.apply().get() == 2

    alpha.refresh_from_db()
    beta.refresh_from_db()
    off.refresh_from_db()
    assert alpha.last_check_ok is True
    assert [tool["name"] for tool in alpha.tools] == DEMO_TOOLS
    assert beta.last_check_ok is False
    assert beta.last_check_status == McpServer.CheckStatus.DOWN
    assert off.last_checked_at is None
    # Run again (a job delivered twice): the same state, nothing added.
    tasks.check_mcp_server.apply(args=(alpha.pk,))
    alpha.refresh_from_db()
    assert alpha.last_check_ok is True
    assert [tool["name"] for tool in alpha.tools] == DEMO_TOOLS


def test_a_confirmed_write_delivered_twice_is_written_once(user, model_server, language_model):
    project = ProjectFactory(owner=user)
    model_server.answer("", tool_calls=[("w", "write_file", {"path": "a.py", "content": "1\n"})])
    model_server.answer("Wrote a.py.")
    model_server.answer("(should not be asked)")
    turn = assistant.assistant_turn_start(user=user, project=project, content="Write a.py")
    turn.refresh_from_db()
    pending = turn.pending_call
    assistant.assistant_turn_confirm(user=user, turn_id=turn.pk, approve=True)
    written = ProjectFile.objects.get(project=project, path="a.py")
    assert written.content == "1\n"

    # The worker died after the write and before acknowledging: the job comes again while the
    # turn still runs. The user has edited the file meanwhile; the write is not repeated.
    ProjectFile.objects.filter(pk=written.pk).update(content="edited by the user\n")
    AssistantTurn.objects.filter(pk=turn.pk).update(state=AssistantTurn.State.RUNNING)
    assistant.assistant_turn_resume(turn.pk, pending, True)

    written.refresh_from_db()
    assert written.content == "edited by the user\n"


def test_a_turn_that_already_ended_is_a_no_op_when_delivered_again(
    user, model_server, language_model
):
    project = ProjectFactory(owner=user)
    model_server.answer("Hello.")
    turn = assistant.assistant_turn_start(user=user, project=project, content="Hi")
    requests = len(model_server.requests)

    assistant.assistant_turn_run(turn.pk)

    assert len(model_server.requests) == requests
    turn.refresh_from_db()
    assert turn.state == AssistantTurn.State.DONE


def test_a_job_sent_after_jobs_ran_in_place_reaches_the_broker(celery_broker):
    """Jobs run in place (as in every other test) build Celery's producer pool; a job sent to
    the broker afterwards must still reach it (it once went to the default broker instead)."""
    celery_app.conf.task_always_eager = True
    assert tasks.check_mcp_servers.delay().get() == 0
    celery_app.conf.task_always_eager = False

    run_job.delay("chat.assistant.assistant_turn_run", 0)

    assert celery_broker.llen("celery") == 1


def abandoned_turn(user, project, language_model, half: str):
    """What a worker killed mid-reply leaves: the turn running at its first step, and the reply
    it was streaming half written, still marked streaming."""
    message = services.chat_message_create(owner=user, project=project, content="Hello")
    turn = AssistantTurn.objects.create(
        owner=user, project=project, model=language_model, user_message=message, steps=1
    )
    partial = services.chat_message_create(
        owner=user,
        project=project,
        role=ChatMessage.Role.ASSISTANT,
        content=half,
        metadata={"turn": turn.pk, "step": 1, "model": "Stub", "streaming": True},
    )
    return turn, partial


def replies(project):
    return list(ChatMessage.objects.filter(project=project, role="assistant").order_by("id"))


def test_a_reply_abandoned_mid_stream_is_rewritten_in_place_when_the_job_runs_again(
    user, model_server, language_model
):
    project = ProjectFactory(owner=user)
    turn, partial = abandoned_turn(user, project, language_model, "The answer is")
    model_server.answer("The answer is 42, in full.", pieces=3)

    assistant.assistant_turn_run(turn.pk)

    turn.refresh_from_db()
    assert turn.state == AssistantTurn.State.DONE
    [reply] = replies(project)
    assert reply.pk == partial.pk
    assert reply.content == "The answer is 42, in full."
    assert (reply.metadata["streaming"], reply.metadata["step"]) == (False, 2)
    [request] = model_server.requests
    assert [m["role"] for m in request.body["messages"]] == ["system", "user"]


def test_a_reply_abandoned_mid_stream_goes_when_the_step_run_again_writes_no_text(
    user, model_server, language_model
):
    project = ProjectFactory(owner=user)
    turn, _ = abandoned_turn(user, project, language_model, "Let me")
    model_server.answer("", tool_calls=[("c1", "list_files", {})])
    model_server.answer("No files yet.")

    assistant.assistant_turn_run(turn.pk)

    turn.refresh_from_db()
    assert turn.state == AssistantTurn.State.DONE
    assert [reply.content for reply in replies(project)] == ["No files yet."]
    assert ChatMessage.objects.filter(project=project, role="tool").count() == 1


def test_a_reply_abandoned_mid_stream_stops_streaming_when_its_stale_turn_is_given_up(
    user, model_server, language_model, settings
):
    project = ProjectFactory(owner=user)
    turn, partial = abandoned_turn(user, project, language_model, "The answer is")
    AssistantTurn.objects.filter(pk=turn.pk).update(
        updated_at=timezone.now() - timedelta(seconds=settings.ASSISTANT_STALE_SECONDS + 1)
    )
    model_server.answer("Hello again.")

    assistant.assistant_turn_start(user=user, project=project, content="Anyone there?")

    turn.refresh_from_db()
    assert turn.state == AssistantTurn.State.FAILED
    partial.refresh_from_db()
    assert (partial.content, partial.metadata["streaming"]) == ("The answer is", False)
    assert [reply.content for reply in replies(project)] == ["The answer is", "Hello again."]


def interrupted_call(user, project, language_model):
    """What a worker killed while a tool ran leaves: the turn at its first step, and the tool
    call's message still saying "Running …"."""
    message = services.chat_message_create(owner=user, project=project, content="List them")
    turn = AssistantTurn.objects.create(
        owner=user, project=project, model=language_model, user_message=message, steps=1
    )
    call = services.chat_message_create(
        owner=user,
        project=project,
        role=ChatMessage.Role.TOOL,
        content="Running list files…",
        metadata={
            "turn": turn.pk,
            "step": 1,
            "model": "Stub",
            "state": "running",
            "tool_call": {
                "id": "c1",
                "name": "list_files",
                "label": "list files",
                "destructive": False,
                "arguments": {},
            },
        },
    )
    return turn, call


def test_a_tool_call_its_dead_worker_left_running_is_an_error_the_model_reads(
    user, model_server, language_model
):
    project = ProjectFactory(owner=user)
    turn, call = interrupted_call(user, project, language_model)
    model_server.answer("That tool was interrupted; shall I try again?")

    assistant.assistant_turn_run(turn.pk)

    turn.refresh_from_db()
    assert turn.state == AssistantTurn.State.DONE
    call.refresh_from_db()
    assert call.content == assistant.INTERRUPTED
    assert (call.metadata["state"], call.metadata["is_error"]) == ("error", True)
    [request] = model_server.requests
    [tool_message] = [m for m in request.body["messages"] if m["role"] == "tool"]
    assert tool_message == {"role": "tool", "tool_call_id": "c1", "content": assistant.INTERRUPTED}


def test_a_tool_call_left_running_is_settled_when_its_stale_turn_is_given_up(
    user, model_server, language_model, settings
):
    project = ProjectFactory(owner=user)
    turn, call = interrupted_call(user, project, language_model)
    AssistantTurn.objects.filter(pk=turn.pk).update(
        updated_at=timezone.now() - timedelta(seconds=settings.ASSISTANT_STALE_SECONDS + 1)
    )
    model_server.answer("Hello again.")

    assistant.assistant_turn_start(user=user, project=project, content="Anyone there?")

    turn.refresh_from_db()
    assert turn.state == AssistantTurn.State.FAILED
    call.refresh_from_db()
    assert (call.content, call.metadata["state"]) == (assistant.INTERRUPTED, "error")
