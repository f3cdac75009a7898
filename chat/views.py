"""A project's chat thread: oldest first, a post form, and polling for new messages."""

from django.contrib.auth.decorators import login_required
from django.shortcuts import redirect, render
from django.views.decorators.http import require_http_methods

from chat import selectors, services
from chat.forms import ChatMessageForm
from config.errors import DomainError, NotFound
from config.forms import add_domain_error
from config.views import domain_errors
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
            services.chat_message_create(
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
