"""A Celery worker killed mid-job loses nothing: another worker runs the job, exactly once, and
a reply the dead worker was streaming is finished in place, not left beside a second one.

The waits are long (minutes) because each is bounded by an event, not a guess: a worker starting
on a loaded machine can take many seconds before it takes a job."""

import pytest

from chat import assistant
from chat.models import AssistantTurn, ChatMessage, LanguageModel
from tests.chat.model_server import ModelServer
from tests.factories import ProjectFactory, UserFactory
from tests.jobs.conftest import wait_for

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]

VISIBILITY = 2  # seconds before a job a dead worker held goes to another worker
WAIT = 180  # the most any one step of these tests may take


@pytest.fixture
def provider():
    server = ModelServer().start()
    yield server
    server.stop()


@pytest.fixture
def project(provider):
    user = UserFactory()
    LanguageModel.objects.create(
        name="Stub", base_url=provider.url, model_id="stub-1", api_key="sk-model-key-123456"
    )
    return ProjectFactory(owner=user, name="Queue app")


def replies(project):
    return list(ChatMessage.objects.filter(project=project, role="assistant").order_by("id"))


def kill_and_finish_on_another(workers, first, turn, broker):
    """Kill the worker running the turn, start another, and wait until it has ended the turn and
    the broker holds the job no more (acknowledged: it cannot come a third time)."""
    workers.kill(first)
    turn.refresh_from_db()
    assert turn.state == AssistantTurn.State.RUNNING  # nothing finished it

    workers.start(visibility_timeout=VISIBILITY)

    def finished():
        turn.refresh_from_db()
        return turn.state != AssistantTurn.State.RUNNING

    wait_for(finished, timeout=WAIT, step=0.25, what="the second worker to finish the turn")
    wait_for(
        lambda: broker.llen("celery") == 0 and broker.hlen("unacked") == 0,
        timeout=WAIT,
        step=0.25,
        what="the job to be acknowledged",
    )
    turn.refresh_from_db()
    assert turn.state == AssistantTurn.State.DONE, turn.reason


def test_a_turn_whose_worker_is_killed_mid_answer_completes_once_on_another(
    workers, celery_broker, provider, project
):
    provider.answer(hang=WAIT)  # the first worker dies while waiting on this
    provider.answer("Answered once.", pieces=2)

    first = workers.start(visibility_timeout=VISIBILITY)
    turn = assistant.assistant_turn_start(user=project.owner, project=project, content="Hello")
    wait_for(lambda: len(provider.requests) == 1, timeout=WAIT, what="the first worker's call")

    kill_and_finish_on_another(workers, first, turn, celery_broker)

    assert [reply.content for reply in replies(project)] == ["Answered once."]
    assert len(provider.requests) == 2
    assert ChatMessage.objects.filter(project=project, role="user").count() == 1


def test_a_reply_killed_mid_stream_is_finished_in_the_same_message(
    workers, celery_broker, provider, project
):
    # The first worker streams the first piece of its reply, then dies before the second.
    provider.answer("First half;second half", pieces=2, stall_after=1, stall=WAIT)
    provider.answer("The whole reply, from its first word.", pieces=3)

    first = workers.start(visibility_timeout=VISIBILITY)
    turn = assistant.assistant_turn_start(user=project.owner, project=project, content="Hello")
    [partial] = wait_for(lambda: replies(project), timeout=WAIT, what="the first piece")
    assert partial.content == "First half;"
    assert partial.metadata["streaming"] is True

    kill_and_finish_on_another(workers, first, turn, celery_broker)

    [reply] = replies(project)
    assert reply.pk == partial.pk  # the reader's message grows again, no second one appears
    assert reply.content == "The whole reply, from its first word."
    assert reply.metadata["streaming"] is False
    assert len(provider.requests) == 2
    # The step was asked again as it was first asked: the dead half is not in its context.
    first_ask, second_ask = (request.body["messages"] for request in provider.requests)
    assert second_ask == first_ask
