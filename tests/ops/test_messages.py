"""Messages go through Django's own middleware: what a request adds is shown on the next."""

import pytest
from django.contrib import messages
from django.contrib.messages.middleware import MessageMiddleware
from django.contrib.messages.storage import default_storage
from django.contrib.sessions.backends.signed_cookies import SessionStore
from django.http import HttpResponse


@pytest.mark.parametrize("touch", ["add", "read"])
def test_a_request_that_adds_or_reads_messages_stores_what_is_left(rf, touch):
    request = rf.post("/projects/new/")
    request.session = SessionStore()

    def view(request):
        if touch == "add":
            messages.success(request, "Project saved.")
        else:
            list(messages.get_messages(request))
        return HttpResponse()

    response = MessageMiddleware(view)(request)

    if touch == "read":
        assert "messages" not in response.cookies
        return
    following = rf.get("/projects/")
    following.COOKIES["messages"] = response.cookies["messages"].value
    following.session = request.session
    assert [str(message) for message in default_storage(following)] == ["Project saved."]
