"""Every response an API test receives is checked for credential plaintext."""

import pytest
from django.test.client import Client

# Every credential value the API tests create contains this marker.
SECRET_MARKER = "PLAINTEXT-SECRET"


@pytest.fixture(autouse=True)
def no_secret_in_any_response(monkeypatch):
    seen: list[tuple[str, int, bytes]] = []
    original = Client.request

    def request(self, **request):
        response = original(self, **request)
        if not response.streaming:
            seen.append((request.get("PATH_INFO", ""), response.status_code, response.content))
        return response

    monkeypatch.setattr(Client, "request", request)
    yield seen
    leaks = [(path, code) for path, code, body in seen if SECRET_MARKER.encode() in body]
    assert not leaks, f"credential plaintext in responses: {leaks}"


def secret(n: int = 0) -> str:
    return f"{SECRET_MARKER}-value-{n:04d}-abcdefgh"
