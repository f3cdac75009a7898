"""A project's chat thread: oldest first, a post form, polling for new messages, and running
a tool of an MCP server with the result appended to the thread."""

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.shortcuts import redirect, render
from django.views.decorators.http import require_http_methods

from chat import selectors, services
from chat.forms import ChatMessageForm, ToolArgumentsForm
from config.api.throttling import McpCallThrottle
from config.errors import DomainError, NotFound
from config.forms import add_domain_error
from config.views import domain_errors, throttled
from mcp_servers.models import McpServer
from mcp_servers.selectors import mcp_server_list_for_user
from mcp_servers.services import mcp_tool_call
from projects.selectors import project_get_for_user

THREAD_LIMIT = 200
POLL_SECONDS = 3


def _after(request) -> int:
    try:
        return max(int(request.GET.get("after", 0)), 0)
    except ValueError:
        return 0


def _recent(user, project) -> list:
    """The latest messages of the thread, oldest first."""
    latest = selectors.chat_message_list_for_user(user=user, project_id=project.pk).order_by("-id")
    return list(reversed(latest[:THREAD_LIMIT]))


@login_required
@domain_errors
@require_http_methods(["GET", "POST"])
def thread(request, pk):
    project = project_get_for_user(user=request.user, pk=pk)
    form = ChatMessageForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            services.chat_message_post(
                owner=request.user, project=project, content=form.cleaned_data["content"]
            )
        except DomainError as exc:
            if isinstance(exc, NotFound):
                raise
            add_domain_error(form, exc)
        else:
            if request.htmx:
                # A fresh form; the poller fetches the new message at once.
                response = render(
                    request, "chat/_form.html", {"project": project, "form": ChatMessageForm()}
                )
                response["HX-Trigger"] = "chat-sent"
                return response
            return redirect("chat:thread", pk=project.pk)
    if request.htmx and request.method == "POST":
        return render(request, "chat/_form.html", {"project": project, "form": form})
    chat = _recent(request.user, project)
    return render(
        request,
        "chat/thread.html",
        {
            "project": project,
            "chat": chat,
            "form": form,
            "after": chat[-1].pk if chat else 0,
            "poll_seconds": POLL_SECONDS,
            "tool_servers": _tool_servers(request.user),
        },
    )


@login_required
@domain_errors
@require_http_methods(["GET"])
def new_messages(request, pk):
    """Messages after `after`, followed by the next poller (an htmx fragment)."""
    project = project_get_for_user(user=request.user, pk=pk)
    after = _after(request)
    chat = list(
        selectors.chat_message_list_for_user(user=request.user, project_id=project.pk, after=after)[
            :THREAD_LIMIT
        ]
    )
    return render(
        request,
        "chat/_new_messages.html",
        {
            "project": project,
            "chat": chat,
            "after": chat[-1].pk if chat else after,
            "poll_seconds": POLL_SECONDS,
        },
    )


def _tool_servers(user) -> list[McpServer]:
    """Servers whose tools the user may run here: visible to them and active, tools not awaiting
    an administrator's review, run over the network (not stdio), with at least one tool."""
    servers = (
        mcp_server_list_for_user(user=user)
        .filter(tools_changed=False)
        .exclude(transport=McpServer.Transport.STDIO)
        .order_by("name")
    )
    return [server for server in servers if server.visible_tools]


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
    servers = _tool_servers(request.user)
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
