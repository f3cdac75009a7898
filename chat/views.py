"""A project's chat thread: oldest first, a post form that asks the assistant, polling for new
messages and the assistant's live answer, its confirmations and stop, and running a tool of an
MCP server by hand with the result appended to the thread."""

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_http_methods

from chat import assistant, selectors, services
from chat.forms import ChatMessageForm, ToolArgumentsForm
from config.api.throttling import McpCallThrottle
from config.errors import Conflict, DomainError, NotFound
from config.forms import add_domain_error
from config.views import domain_errors, throttled
from mcp_servers.models import McpServer
from mcp_servers.selectors import mcp_server_list_callable_for_user, mcp_servers_needing_sign_in
from mcp_servers.services import mcp_tool_call
from projects.selectors import project_get_for_user

THREAD_LIMIT = 200
POLL_SECONDS = 3
# While the assistant answers, the page asks for the growing reply this often.
LIVE_POLL_SECONDS = 1


def _after(request) -> int:
    try:
        return max(int(request.GET.get("after", 0)), 0)
    except ValueError:
        return 0


def _is_live(message) -> bool:
    """A message the assistant is still writing: a streaming reply or a tool call not settled."""
    metadata = message.metadata or {}
    return bool(metadata.get("streaming")) or metadata.get("state") in ("running", "waiting")


def _split_live(chat: list) -> tuple[list, list]:
    """Settled messages, and the live ones from the first that still changes (always a tail:
    a turn settles its messages in order)."""
    for index, message in enumerate(chat):
        if _is_live(message):
            return chat[:index], chat[index:]
    return chat, []


def _live_context(request, project, chat: list, after: int) -> dict:
    settled, live = _split_live(chat)
    turn = assistant.assistant_turn_live(user=request.user, project=project)
    return {
        "project": project,
        "chat": settled,
        "live_messages": live,
        "turn": turn,
        "after": settled[-1].pk if settled else after,
        "poll_seconds": LIVE_POLL_SECONDS if turn or live else POLL_SECONDS,
    }


def _recent(user, project) -> list:
    """The latest messages of the thread, oldest first."""
    latest = selectors.chat_message_list_for_user(user=user, project_id=project.pk).order_by("-id")
    return list(reversed(latest[:THREAD_LIMIT]))


def _chat_form(request, project, data=None) -> ChatMessageForm:
    """The message form, with the model picker when models exist; the project's chat keeps
    the model its last answer used."""
    models = list(assistant.language_model_list_enabled())
    last = assistant.assistant_turn_list_for_user(user=request.user, project_id=project.pk).first()
    initial = last.model if last and last.model in models else None
    return ChatMessageForm(data, models=models, initial_model=initial)


@login_required
@domain_errors
@require_http_methods(["GET", "POST"])
def thread(request, pk):
    project = project_get_for_user(user=request.user, pk=pk)
    form = _chat_form(request, project, request.POST or None)
    if request.method == "POST" and form.is_valid():
        content = form.cleaned_data["content"]
        try:
            if "model" in form.fields:
                assistant.assistant_turn_start(
                    user=request.user,
                    project=project,
                    content=content,
                    model=form.cleaned_data.get("model"),
                )
            else:  # no model configured: the message is kept, the page says nobody answers
                services.chat_message_post(owner=request.user, project=project, content=content)
        except DomainError as exc:
            if isinstance(exc, NotFound):
                raise
            add_domain_error(form, exc)
        else:
            if request.htmx:
                # A fresh form; the poller fetches the new message at once.
                response = render(
                    request,
                    "chat/_form.html",
                    {"project": project, "form": _chat_form(request, project)},
                )
                response["HX-Trigger"] = "chat-sent"
                return response
            return redirect("chat:thread", pk=project.pk)
    if request.htmx and request.method == "POST":
        return render(request, "chat/_form.html", {"project": project, "form": form})
    context = _live_context(request, project, _recent(request.user, project), 0)
    tool_servers = mcp_server_list_callable_for_user(user=request.user)
    return render(
        request,
        "chat/thread.html",
        {
            **context,
            "form": form,
            "has_models": "model" in form.fields,
            "tool_servers": tool_servers,
            "sign_in_servers": mcp_servers_needing_sign_in(user=request.user, servers=tool_servers),
        },
    )


@login_required
@domain_errors
@require_http_methods(["GET"])
def new_messages(request, pk):
    """Settled messages after `after`, the assistant's live answer (swapped in place), then the
    next poller (an htmx fragment)."""
    project = project_get_for_user(user=request.user, pk=pk)
    after = _after(request)
    chat = list(
        selectors.chat_message_list_for_user(user=request.user, project_id=project.pk, after=after)[
            :THREAD_LIMIT
        ]
    )
    return render(request, "chat/_new_messages.html", _live_context(request, project, chat, after))


@login_required
@domain_errors
@require_http_methods(["POST"])
def turn_confirm(request, pk, turn_id):
    """Approve or refuse the tool call the assistant waits on."""
    project = project_get_for_user(user=request.user, pk=pk)
    try:
        assistant.assistant_turn_confirm(
            user=request.user, turn_id=turn_id, approve=request.POST.get("approve") == "1"
        )
    except Conflict as exc:
        messages.info(request, exc.message)
    return _after_turn_action(request, project)


@login_required
@domain_errors
@require_http_methods(["POST"])
def turn_stop(request, pk, turn_id):
    project = project_get_for_user(user=request.user, pk=pk)
    assistant.assistant_turn_stop(user=request.user, turn_id=turn_id)
    return _after_turn_action(request, project)


def _after_turn_action(request, project):
    if request.htmx:
        response = HttpResponse(status=204)
        response["HX-Trigger"] = "chat-sent"  # the poller looks at once
        return response
    return redirect("chat:thread", pk=project.pk)


def _tool_choice(servers: list[McpServer], choice: str) -> tuple[McpServer, dict]:
    """`<server id>/<tool name>` from the picker; a 404 for anything not offered."""
    server_pk, _, name = choice.partition("/")
    server = next((s for s in servers if str(s.pk) == server_pk), None)
    tool = (
        next((t for t in server.visible_tools if t.get("name") == name), None) if server else None
    )
    if tool is None:
        raise NotFound("Tool not found.")
    return server, tool


@login_required
@domain_errors
@require_http_methods(["GET", "POST"])
@throttled(McpCallThrottle)
def tool_run(request, pk):
    """Pick a tool (GET ?tool=<server id>/<name>), fill its arguments, run it (POST)."""
    project = project_get_for_user(user=request.user, pk=pk)
    servers = mcp_server_list_callable_for_user(user=request.user)
    choice = request.GET.get("tool", "")
    context = {"project": project, "tool_servers": servers, "choice": choice}
    if not choice:
        return render(request, "chat/tool_run.html", context)
    server, tool = _tool_choice(servers, choice)
    form = ToolArgumentsForm(request.POST if request.method == "POST" else None, tool=tool)
    if request.method == "POST" and form.is_valid():
        try:
            mcp_tool_call(
                user=request.user,
                server=server,
                tool=tool["name"],
                arguments=form.arguments(),
                project=project,
            )
        except DomainError as exc:
            if isinstance(exc, NotFound):
                raise
            add_domain_error(form, exc)
        else:
            messages.success(request, f"Ran {tool['name']} on {server.name}.")
            return redirect("chat:thread", pk=project.pk)
    return render(
        request, "chat/tool_run.html", {**context, "server": server, "tool": tool, "form": form}
    )
