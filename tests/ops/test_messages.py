"""The message storage is built only for a request that shows or adds a message."""

import pytest
from django.contrib import messages
from django.contrib.messages.storage import default_storage
from django.contrib.sessions.backends.signed_cookies import SessionStore
from django.http import HttpResponse
from django.utils.functional import empty

from config.middleware import LazyMessageMiddleware


def test_a_request_without_messages_builds_no_storage_and_sets_no_cookie(rf):
    request = rf.get("/api/v1/marketplace/listings/")
    request.session = SessionStore()

    response = LazyMessageMiddleware(lambda request: HttpResponse())(request)

    assert request._messages._wrapped is empty
    assert "messages" not in response.cookies


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

    response = LazyMessageMiddleware(view)(request)

    assert request._messages._wrapped is not empty
    if touch == "read":
        assert "messages" not in response.cookies
        return
    following = rf.get("/projects/")
    following.COOKIES["messages"] = response.cookies["messages"].value
    following.session = request.session
    assert [str(message) for message in default_storage(following)] == ["Project saved."]
