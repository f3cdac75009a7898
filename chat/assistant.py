"""The assistant: a turn of model steps and tool calls that answers one user message.

A turn runs outside the web request (chat.runner), writes its reply into the thread as it
streams in, and pauses before a destructive tool call until the user approves or refuses it.
It ends when the model stops calling tools, after ASSISTANT_MAX_STEPS steps, when the user
stops it, when the user's daily tokens for the model run out, or when the provider fails;
each end but the first leaves a message saying why."""

import json
import logging
import time
from datetime import timedelta

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.db import IntegrityError, transaction
from django.db.models import F
from django.utils import timezone

from chat import runner, services
from chat.llm import ProviderError, Step, stream_step
from chat.models import AssistantTurn, ChatMessage, LanguageModel, TokenUsage
from chat.tools import Tool, Toolbox, ToolResult
from config.errors import Conflict, DomainError, NotFound
from projects import selectors as project_selectors
from projects.models import Project

logger = logging.getLogger(__name__)

State = AssistantTurn.State
CHARS_PER_TOKEN = 4  # a rough, provider-independent estimate for trimming and missing usage
HISTORY_MESSAGES = 200
# How often a streaming reply is written to the database and the stop button looked at.
FLUSH_SECONDS = 0.25
TOUCH_SECONDS = 5.0

SYSTEM_PROMPT = """You are the assistant of Atelier, helping the user build the software project \
"{name}". You can list, read and write the project's files with your tools, and use the other \
tools offered. The user confirms every write before it happens. Answer concisely.

Files in the project ({count}):
{files}"""


class AssistantUnavailable(DomainError):
    status_code = 503
    default_code = "assistant_unavailable"
    default_message = "No assistant model is configured."


class TokenLimitReached(DomainError):
    status_code = 429
    default_code = "token_limit_reached"
    default_message = "You have used today's tokens for this model."


# Reads ---------------------------------------------------------------------------------------


def language_model_list_enabled():
    return LanguageModel.objects.filter(enabled=True).defer("api_key").order_by("position", "name")


def language_model_default() -> LanguageModel | None:
    return language_model_list_enabled().first()


def language_model_get_enabled(*, pk) -> LanguageModel:
    try:
        return language_model_list_enabled().get(pk=pk)
    except (LanguageModel.DoesNotExist, ValueError, TypeError) as exc:
        raise NotFound("Model not found.", field="model") from exc


def assistant_turn_list_for_user(*, user: AbstractBaseUser, project_id=None):
    queryset = (
        AssistantTurn.objects.filter(owner=user).select_related("model").defer("model__api_key")
    )
    if project_id is not None:
        queryset = queryset.filter(project_id=project_id)
    return queryset.order_by("-id")


def assistant_turn_get_for_user(*, user: AbstractBaseUser, pk) -> AssistantTurn:
    try:
        return assistant_turn_list_for_user(user=user).get(pk=pk)
    except (AssistantTurn.DoesNotExist, ValueError, TypeError) as exc:
        raise NotFound("Turn not found.") from exc


def assistant_turn_live(*, user: AbstractBaseUser, project: Project) -> AssistantTurn | None:
    return (
        assistant_turn_list_for_user(user=user, project_id=project.pk)
        .filter(state__in=AssistantTurn.LIVE_STATES)
        .first()
    )


def assistant_turn_messages(*, turn: AssistantTurn):
    """The user message that started the turn and everything the turn wrote, oldest first."""
    queryset = ChatMessage.objects.filter(owner_id=turn.owner_id, project_id=turn.project_id)
    if turn.user_message_id is not None:
        queryset = queryset.filter(id__gte=turn.user_message_id)
    return [
        message
        for message in queryset.order_by("id")
        if message.pk == turn.user_message_id or (message.metadata or {}).get("turn") == turn.pk
    ]


def tokens_used_today(*, user: AbstractBaseUser, model: LanguageModel) -> int:
    usage = TokenUsage.objects.filter(user=user, model=model, day=timezone.now().date()).first()
    return usage.total_tokens if usage else 0


# Writes --------------------------------------------------------------------------------------


def assistant_turn_start(
    *,
    user: AbstractBaseUser,
    project: Project,
    content: str,
    model: LanguageModel | None = None,
) -> AssistantTurn:
    """Save the user's message and start the assistant's answer to it."""
    project = project_selectors.project_get_for_user(user=user, pk=project.pk)
    model = model or language_model_default()
    if model is None or not model.enabled:
        raise AssistantUnavailable(
            "No assistant model is configured, so nobody can answer yet. "
            "An administrator adds one under Admin, Chat, Language models."
        )
    if tokens_used_today(user=user, model=model) >= model.daily_token_limit:
        raise TokenLimitReached(
            f"You have used today's {model.daily_token_limit:,} tokens for {model.name}; "
            "try again tomorrow or pick another model."
        )
    _expire_stale(user=user, project=project)
    with transaction.atomic():
        message = services.chat_message_create(owner=user, project=project, content=content)
        try:
            with transaction.atomic():
                turn = AssistantTurn.objects.create(
                    owner=user, project=project, model=model, user_message=message
                )
        except IntegrityError:
            raise Conflict(
                "The assistant is still answering your last message: wait for it, answer its "
                "question, or stop it.",
                field="content",
            ) from None
        TokenUsage.objects.get_or_create(user=user, model=model, day=timezone.now().date())
        TokenUsage.objects.filter(user=user, model=model, day=timezone.now().date()).update(
            turns=F("turns") + 1
        )
    runner.submit(assistant_turn_run, turn.pk)
    return turn


def assistant_turn_confirm(*, user: AbstractBaseUser, turn_id, approve: bool) -> AssistantTurn:
    """The user's answer to the tool call the turn waits on; the turn then goes on."""
    with transaction.atomic():
        turn = _locked(user=user, turn_id=turn_id)
        if turn.state != State.WAITING or not turn.pending_call:
            raise Conflict("Nothing is waiting for your confirmation.")
        pending = turn.pending_call
        turn.state, turn.pending_call = State.RUNNING, None
        turn.save(update_fields=["state", "pending_call", "updated_at"])
    runner.submit(assistant_turn_resume, turn.pk, pending, approve)
    return turn


def assistant_turn_stop(*, user: AbstractBaseUser, turn_id) -> AssistantTurn:
    """Stop a live turn: at once when it waits on the user, after the current piece of the
    reply when it runs. A turn that already ended is left as it is."""
    with transaction.atomic():
        turn = _locked(user=user, turn_id=turn_id)
        if turn.state == State.WAITING:
            _settle_call(turn.pending_call, ToolResult("Refused: the turn was stopped."), "refused")
            turn.pending_call = None
            _finish(turn, State.STOPPED, "Stopped at your request.")
        elif turn.state == State.RUNNING:
            turn.stop_requested = True
            turn.save(update_fields=["stop_requested", "updated_at"])
    return turn


def _locked(*, user: AbstractBaseUser, turn_id) -> AssistantTurn:
    try:
        return AssistantTurn.objects.select_for_update().get(pk=turn_id, owner=user)
    except (AssistantTurn.DoesNotExist, ValueError, TypeError) as exc:
        raise NotFound("Turn not found.") from exc


def _expire_stale(*, user: AbstractBaseUser, project: Project) -> None:
    """A running turn whose process died (a restart, a crash) stops blocking the chat."""
    cutoff = timezone.now() - timedelta(seconds=settings.ASSISTANT_STALE_SECONDS)
    for turn in AssistantTurn.objects.filter(
        owner=user, project=project, state=State.RUNNING, updated_at__lt=cutoff
    ):
        _finish(turn, State.FAILED, "The answer was interrupted (the server restarted).")


@transaction.atomic
def _finish(turn: AssistantTurn, state: str, reason: str) -> None:
    """End the turn and say why in the thread, together: a reader sees both or neither."""
    turn.state, turn.reason = state, reason
    turn.save(update_fields=["state", "reason", "pending_call", "updated_at"])
    abandoned = _abandoned_reply(turn)  # a turn whose worker died mid-reply, now given up
    if abandoned is not None:
        services.chat_message_replace(
            message=abandoned,
            content=abandoned.content,
            metadata={**abandoned.metadata, "streaming": False},
        )
    _settle_interrupted_calls(turn)
    if state != State.DONE:
        services.chat_message_create(
            owner=turn.owner,
            project=turn.project,
            role=ChatMessage.Role.SYSTEM,
            content=reason,
            metadata={"turn": turn.pk, "turn_end": state},
        )


# The loop ------------------------------------------------------------------------------------


def assistant_turn_run(turn_id: int) -> None:
    """Run a turn from its first step (chat.runner calls this outside the request)."""
    _guarded(turn_id, lambda turn, toolbox: _loop(turn, toolbox))


def assistant_turn_resume(turn_id: int, pending: dict, approve: bool) -> None:
    """Go on after the user answered a confirmation: the call, the rest of its step, the loop."""

    def resume(turn: AssistantTurn, toolbox: Toolbox) -> None:
        tool = toolbox.get(pending["name"])
        if _already_settled(pending):
            pass  # a job run again after a worker died: the call ran once, it is not repeated
        elif not approve:
            _settle_call(pending, ToolResult("Refused by the user; not run."), "refused")
        elif tool is None:
            _settle_call(pending, ToolResult("This tool is no longer available.", True), "error")
        else:
            _settle_call(
                pending, *_timed_run(toolbox, tool, pending["arguments"], pending.get("message"))
            )
        if _run_calls(turn, toolbox, pending.get("rest", []), pending["step"]):
            _loop(turn, toolbox)

    _guarded(turn_id, resume)


def _already_settled(call: dict) -> bool:
    message = ChatMessage.objects.filter(pk=call.get("message")).only("metadata").first()
    return message is not None and message.metadata.get("state") not in (None, "waiting")


def _guarded(turn_id: int, body) -> None:
    turn = (
        AssistantTurn.objects.select_related("project", "owner")
        .filter(pk=turn_id, state=State.RUNNING)
        .first()
    )
    if turn is None:
        return
    # The key stays encrypted until the provider is called (chat.llm), so a key no configured
    # Fernet key opens fails the turn with a message instead of failing every read.
    turn.model = LanguageModel.objects.defer("api_key").filter(pk=turn.model_id).first()
    try:
        if turn.model is None:
            _finish(turn, State.FAILED, "The model of this chat was removed by an administrator.")
            return
        body(turn, Toolbox(user=turn.owner, project=turn.project))
    except ProviderError as exc:
        _finish(turn, State.FAILED, f"{exc.message} Your message is saved; send it again later.")
    except Exception:
        logger.exception("Assistant turn %s failed", turn_id)
        _finish(turn, State.FAILED, "The assistant failed while answering; please try again.")


def _loop(turn: AssistantTurn, toolbox: Toolbox) -> None:
    model = turn.model
    while True:
        turn.refresh_from_db(fields=["stop_requested", "steps"])
        if turn.stop_requested:
            return _finish(turn, State.STOPPED, "Stopped at your request.")
        if turn.steps >= settings.ASSISTANT_MAX_STEPS:
            return _finish(
                turn,
                State.STOPPED,
                f"Stopped after {turn.steps} steps, the most one answer may take. "
                "Send a message to let the assistant go on.",
            )
        if tokens_used_today(user=turn.owner, model=model) >= model.daily_token_limit:
            return _finish(
                turn,
                State.STOPPED,
                f"Stopped: you have used today's {model.daily_token_limit:,} tokens for "
                f"{model.name}.",
            )
        step_number = turn.steps + 1
        AssistantTurn.objects.filter(pk=turn.pk).update(
            steps=step_number, updated_at=timezone.now()
        )
        turn.steps = step_number
        _settle_interrupted_calls(turn)
        messages = _context(turn, toolbox)
        writer = _ReplyWriter(turn, step_number, abandoned=_abandoned_reply(turn))
        started = time.monotonic()
        try:
            step = stream_step(
                model=model, messages=messages, tools=toolbox.definitions(), on_text=writer.write
            )
        except ProviderError:
            writer.close(None, started)
            raise
        _count_usage(turn, step, messages)
        writer.close(step, started)
        if step.interrupted and writer.stopped:
            return _finish(turn, State.STOPPED, "Stopped at your request.")
        if writer.too_long:
            return _finish(
                turn, State.STOPPED, "Stopped: the reply reached the longest a message may be."
            )
        if not step.tool_calls:
            return _finish(turn, State.DONE, "Answered.")
        usage = {"prompt_tokens": step.prompt_tokens, "completion_tokens": step.completion_tokens}
        calls = [
            {
                "id": call.id,
                "name": call.name,
                "arguments_json": call.arguments,
                "step": step_number,
                # A step that wrote no text keeps its figures on its calls.
                **({} if writer.message else {"usage": usage}),
            }
            for call in step.tool_calls
        ]
        if not _run_calls(turn, toolbox, calls, step_number):
            return None  # waiting for the user's confirmation


def _abandoned_reply(turn: AssistantTurn) -> ChatMessage | None:
    """The reply a step of this turn was streaming when its worker died (killed, lost): a live
    run closes its reply before the next step, so at a step's start any reply of the turn still
    marked streaming is one. The step that runs again writes into it rather than beside it."""
    return (
        ChatMessage.objects.filter(
            owner_id=turn.owner_id,
            project_id=turn.project_id,
            role=ChatMessage.Role.ASSISTANT,
            metadata__turn=turn.pk,
            metadata__streaming=True,
        )
        .order_by("id")
        .first()
    )


INTERRUPTED = (
    "Interrupted: the worker running this tool stopped before it answered, so whether it ran "
    "is not known."
)


def _settle_interrupted_calls(turn: AssistantTurn) -> None:
    """Tool calls a dead worker left running: a live run settles each call before its next
    step, so at a step's start any of the turn's calls still running is one. Each becomes an
    error result the model reads, instead of its "Running …" placeholder."""
    running = ChatMessage.objects.filter(
        owner_id=turn.owner_id,
        project_id=turn.project_id,
        role=ChatMessage.Role.TOOL,
        metadata__turn=turn.pk,
        metadata__state="running",
    )
    for message in running:
        _settle_call({"message": message.pk}, ToolResult(INTERRUPTED, True), "error")


def _run_calls(turn: AssistantTurn, toolbox: Toolbox, calls: list[dict], step: int) -> bool:
    """Run a step's tool calls in order; False when one waits for the user's confirmation."""
    for index, call in enumerate(calls):
        tool = toolbox.get(call["name"])
        arguments, problem = _arguments(call)
        message = _record_call(turn, call, tool, arguments, step)
        call = {**call, "arguments": arguments, "message": message.pk, "step": step}
        if tool is None:
            _settle_call(call, ToolResult(f"There is no tool named {call['name']}.", True), "error")
        elif problem:
            _settle_call(call, ToolResult(problem, True), "error")
        elif tool.destructive:
            call["label"] = tool.call_label(arguments)
            call["rest"] = calls[index + 1 :]
            turn.state, turn.pending_call = State.WAITING, call
            turn.save(update_fields=["state", "pending_call", "updated_at"])
            return False
        else:
            _settle_call(call, *_timed_run(toolbox, tool, arguments, message.pk))
    return True


def _arguments(call: dict) -> tuple[dict, str]:
    if "arguments" in call:  # a call carried over from before a confirmation
        return call["arguments"], ""
    try:
        arguments = json.loads(call["arguments_json"] or "{}")
    except ValueError:
        return {}, "The arguments were not valid JSON."
    if not isinstance(arguments, dict):
        return {}, "The arguments must be a JSON object."
    return arguments, ""


def _timed_run(
    toolbox: Toolbox, tool: Tool, arguments: dict, message_id: int | None = None
) -> tuple[ToolResult, str]:
    def progress(value: dict) -> None:
        services.chat_message_progress(message_id=message_id, progress=value)

    started = time.monotonic()
    result = toolbox.run(tool, arguments, on_progress=progress if message_id else None)
    result.duration_ms = round((time.monotonic() - started) * 1000)
    return result, "error" if result.is_error else "done"


def _record_call(turn, call: dict, tool: Tool | None, arguments: dict, step: int) -> ChatMessage:
    label = tool.call_label(arguments) if tool else call["name"]
    waiting = tool is not None and tool.destructive
    return services.chat_message_create(
        owner=turn.owner,
        project=turn.project,
        role=ChatMessage.Role.TOOL,
        content=f"Waiting for your confirmation: {label}" if waiting else f"Running {label}…",
        metadata={
            "turn": turn.pk,
            "step": step,
            "model": turn.model.name,
            "state": "waiting" if waiting else "running",
            **({"usage": call["usage"]} if "usage" in call else {}),
            "tool_call": {
                "id": call["id"],
                "name": call["name"],
                "label": label,
                "destructive": bool(tool and tool.destructive),
                "arguments": _shortened(arguments),
            },
        },
    )


def _settle_call(call: dict | None, result: ToolResult, state: str) -> None:
    if not call:
        return
    message = ChatMessage.objects.filter(pk=call.get("message")).first()
    if message is None:
        return
    metadata = {**message.metadata, "state": state, "is_error": result.is_error}
    if result.duration_ms is not None:
        metadata["duration_ms"] = result.duration_ms
    services.chat_message_replace(message=message, content=result.text, metadata=metadata)


def _shortened(arguments: dict, limit: int = 400) -> dict:
    """Arguments as stored beside the call: long strings cut, so the metadata stays small."""

    def cut(value):
        if isinstance(value, str) and len(value) > limit:
            return f"{value[:limit]}… [{len(value):,} characters]"
        if isinstance(value, dict):
            return {k: cut(v) for k, v in value.items()}
        if isinstance(value, list):
            return [cut(v) for v in value[:50]]
        return value

    return cut(arguments)


class _ReplyWriter:
    """Writes the streaming reply into one assistant message as it arrives: a new one, or the
    abandoned reply of a run that died, which the new text replaces from its first piece (and
    which goes when the step writes no text)."""

    def __init__(self, turn: AssistantTurn, step: int, abandoned: ChatMessage | None = None):
        self.turn, self.step = turn, step
        self.parts: list[str] = []
        self.size = 0
        self.message: ChatMessage | None = abandoned
        self.adopted = abandoned is not None  # holds the dead run's text until the first piece
        self.flushed = self.checked = self.touched = time.monotonic()
        self.stopped = self.too_long = False

    def write(self, text: str) -> bool:
        self.parts.append(text)
        self.size += len(text)
        now = time.monotonic()
        if self.message is None or self.adopted:
            if "".join(self.parts).strip():
                if self.message is None:
                    self.message = services.chat_message_create(
                        owner=self.turn.owner,
                        project=self.turn.project,
                        role=ChatMessage.Role.ASSISTANT,
                        content=services.chat_text("".join(self.parts)),
                        metadata=self._metadata(streaming=True),
                    )
                else:
                    services.chat_message_replace(
                        message=self.message,
                        content="".join(self.parts),
                        metadata=self._metadata(streaming=True),
                    )
                    self.adopted = False
                self.flushed = now
        elif now - self.flushed >= FLUSH_SECONDS:
            services.chat_message_replace(message=self.message, content="".join(self.parts))
            self.flushed = now
        if now - self.touched >= TOUCH_SECONDS:
            AssistantTurn.objects.filter(pk=self.turn.pk).update(updated_at=timezone.now())
            self.touched = now
        if now - self.checked >= FLUSH_SECONDS:
            self.checked = now
            if AssistantTurn.objects.filter(pk=self.turn.pk, stop_requested=True).exists():
                self.stopped = True
                return False
        if self.size >= services.MAX_CONTENT_LENGTH:
            self.too_long = True
            return False
        return True

    def close(self, step: Step | None, started: float) -> None:
        if self.message is None:
            return
        if self.adopted:  # this run wrote no text: the dead run's half reply has no place
            ChatMessage.objects.filter(pk=self.message.pk).delete()
            self.message = None
            return
        metadata = self._metadata(streaming=False)
        metadata["duration_ms"] = round((time.monotonic() - started) * 1000)
        if step is not None:
            metadata["usage"] = {
                "prompt_tokens": step.prompt_tokens,
                "completion_tokens": step.completion_tokens,
            }
            metadata["finish_reason"] = step.finish_reason
        services.chat_message_replace(
            message=self.message, content="".join(self.parts), metadata=metadata
        )

    def _metadata(self, *, streaming: bool) -> dict:
        return {
            "turn": self.turn.pk,
            "step": self.step,
            "model": self.turn.model.name,
            "streaming": streaming,
        }


def _count_usage(turn: AssistantTurn, step: Step, messages: list[dict]) -> None:
    """Add the step's tokens to the turn and to the user's day (estimated when the provider
    sends no usage figures)."""
    prompt = step.prompt_tokens
    if prompt is None:
        prompt = len(json.dumps(messages)) // CHARS_PER_TOKEN
    completion = step.completion_tokens
    if completion is None:
        written = step.content + "".join(call.arguments for call in step.tool_calls)
        completion = len(written) // CHARS_PER_TOKEN
    AssistantTurn.objects.filter(pk=turn.pk).update(
        prompt_tokens=F("prompt_tokens") + prompt,
        completion_tokens=F("completion_tokens") + completion,
        updated_at=timezone.now(),
    )
    day = timezone.now().date()
    TokenUsage.objects.get_or_create(user=turn.owner, model=turn.model, day=day)
    TokenUsage.objects.filter(user=turn.owner, model=turn.model, day=day).update(
        prompt_tokens=F("prompt_tokens") + prompt,
        completion_tokens=F("completion_tokens") + completion,
    )


# The context ---------------------------------------------------------------------------------


def _context(turn: AssistantTurn, toolbox: Toolbox) -> list[dict]:
    """System prompt, earlier conversation (newest kept first) and this turn's exchange, within
    three quarters of the model's context window (the rest is left for the reply)."""
    files = list(
        project_selectors.project_file_list(project=turn.project).values_list("path", "size")[:300]
    )
    system = SYSTEM_PROMPT.format(
        name=turn.project.name,
        count=len(files),
        files="\n".join(f"- {path} ({size:,} bytes)" for path, size in files) or "(none yet)",
    )
    budget = turn.model.context_window * 3 // 4 * CHARS_PER_TOKEN
    budget -= len(system) + len(json.dumps(toolbox.definitions()))
    current = _turn_exchange(turn)
    size = sum(_size(message) for message in current)
    for message in current:  # the oldest tool results give way first
        if size <= budget:
            break
        if message["role"] == "tool" and len(message["content"]) > 200:
            size -= len(message["content"])
            message["content"] = "[result left out to fit the model's context window]"
            size += len(message["content"])
    history = []
    earlier = ChatMessage.objects.filter(
        owner_id=turn.owner_id,
        project_id=turn.project_id,
        role__in=[ChatMessage.Role.USER, ChatMessage.Role.ASSISTANT],
    )
    if turn.user_message_id is not None:
        earlier = earlier.filter(id__lt=turn.user_message_id)
    for message in earlier.order_by("-id")[:HISTORY_MESSAGES]:
        if (message.metadata or {}).get("streaming"):
            continue
        entry = {"role": message.role, "content": message.content}
        size += _size(entry)
        if size > budget:
            break
        history.append(entry)
    history.reverse()
    return [{"role": "system", "content": system}, *history, *current]


def _turn_exchange(turn: AssistantTurn) -> list[dict]:
    """The turn's messages in the API's shape: each step's assistant message carries its tool
    calls, followed by one `tool` message per call."""
    exchange: list[dict] = []
    assistant_of_step: dict[int, dict] = {}
    for message in assistant_turn_messages(turn=turn):
        metadata = message.metadata or {}
        if message.pk == turn.user_message_id:
            exchange.append({"role": "user", "content": message.content})
        elif message.role == ChatMessage.Role.ASSISTANT:
            if metadata.get("streaming"):
                continue  # abandoned by a worker that died: its step runs again
            entry = {"role": "assistant", "content": message.content}
            assistant_of_step[metadata.get("step")] = entry
            exchange.append(entry)
        elif message.role == ChatMessage.Role.TOOL and "tool_call" in metadata:
            call = metadata["tool_call"]
            entry = assistant_of_step.get(metadata.get("step"))
            if entry is None:
                entry = {"role": "assistant", "content": None}
                assistant_of_step[metadata.get("step")] = entry
                exchange.append(entry)
            entry.setdefault("tool_calls", []).append(
                {
                    "id": call["id"],
                    "type": "function",
                    "function": {"name": call["name"], "arguments": json.dumps(call["arguments"])},
                }
            )
            exchange.append(
                {"role": "tool", "tool_call_id": call["id"], "content": message.content}
            )
    return exchange


def _size(message: dict) -> int:
    return len(message.get("content") or "") + len(json.dumps(message.get("tool_calls", [])))
