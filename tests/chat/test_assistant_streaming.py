"""Answers run outside the request and are saved as they stream: a reader sees the reply grow,
and a stop ends it mid-way with what arrived kept."""

import json
import time

import pytest

from chat import assistant
from chat.models import AssistantTurn, ChatMessage
from tests.factories import ProjectFactory

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


def wait_for(condition, seconds: float = 10.0):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError("timed out")


@pytest.fixture
def threaded(model_server, settings):
    settings.ASSISTANT_RUN_INLINE = False
    return model_server


def test_a_reply_is_readable_while_it_streams_and_the_request_returns_at_once(
    user, threaded, language_model
):
    project = ProjectFactory(owner=user)
    words = [f"word{n} " for n in range(20)]
    threaded.answer("".join(words), pieces=20, delay=0.1)

    started = time.monotonic()
    turn = assistant.assistant_turn_start(user=user, project=project, content="Talk")
    assert time.monotonic() - started < 1.0  # the answer runs in the pool, not in the caller

    partial = wait_for(
        lambda: ChatMessage.objects.filter(
            project=project, role="assistant", metadata__streaming=True
        ).first()
    )
    assert 0 < len(partial.content) < len("".join(words))
    wait_for(lambda: AssistantTurn.objects.get(pk=turn.pk).state == "done")
    reply = ChatMessage.objects.get(project=project, role="assistant")
    assert reply.content == "".join(words)
    assert reply.metadata["streaming"] is False


def test_stop_ends_a_streaming_reply_and_keeps_what_arrived(user, threaded, language_model):
    project = ProjectFactory(owner=user)
    threaded.answer("x" * 400, pieces=40, delay=0.1)
    turn = assistant.assistant_turn_start(user=user, project=project, content="Go on")
    wait_for(lambda: ChatMessage.objects.filter(project=project, role="assistant").exists())

    assistant.assistant_turn_stop(user=user, turn_id=turn.pk)

    ended = wait_for(
        lambda: AssistantTurn.objects.filter(pk=turn.pk, state="stopped").first(), seconds=5
    )
    assert ended.reason == "Stopped at your request."
    reply = ChatMessage.objects.get(project=project, role="assistant")
    assert 0 < len(reply.content) < 400
    assert reply.metadata["streaming"] is False
    assert ChatMessage.objects.filter(project=project, role="system").get().content == ended.reason


def test_an_api_client_reads_the_reply_as_server_sent_events(
    live_server, user, threaded, language_model
):
    import httpx
    from knox.models import AuthToken

    project = ProjectFactory(owner=user)
    _, token = AuthToken.objects.create(user)
    threaded.answer("one two three four five six", pieces=6, delay=0.15)
    turn = assistant.assistant_turn_start(user=user, project=project, content="count")

    events = []
    with httpx.stream(
        "GET",
        f"{live_server.url}/api/v1/chat/turns/{turn.pk}/events/",
        headers={"Authorization": f"Token {token}", "Accept": "text/event-stream"},
        timeout=15,
    ) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        name = None
        for line in response.iter_lines():
            if line.startswith("event: "):
                name = line.removeprefix("event: ")
            elif line.startswith("data: "):
                events.append((name, json.loads(line.removeprefix("data: "))))

    replies = [
        data["content"]
        for name, data in events
        if name == "message" and data["role"] == "assistant"
    ]
    assert len(replies) >= 2  # the reply arrived in pieces, growing
    assert replies[-1] == "one two three four five six"
    assert all(replies[-1].startswith(reply) for reply in replies)
    assert events[-1] == ("end", {"id": turn.pk, "state": "done"})
