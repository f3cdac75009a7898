"""The Content-Security-Policy header: only the app's own files run; Swagger UI still works."""

import os
import re
from pathlib import Path

import pytest
from django.test import Client

pytestmark = pytest.mark.django_db

CHROMIUM = os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium")


def policy(response) -> dict[str, list[str]]:
    header = response["Content-Security-Policy"]
    return {
        name: values
        for name, *values in (part.split() for part in header.split(";") if part.strip())
    }


@pytest.mark.parametrize("url", ["/", "/accounts/login/", "/admin/login/", "/api/v1/auth/me/"])
def test_every_answer_carries_a_strict_policy(url):
    response = Client().get(url)

    directives = policy(response)
    assert directives["default-src"] == ["'self'"]
    assert directives["script-src"] == ["'self'"]  # no inline script, no eval, no other host
    assert directives["style-src"] == ["'self'"]
    assert directives["object-src"] == ["'none'"]
    assert directives["frame-ancestors"] == ["'none'"]
    assert response["X-Frame-Options"] == "DENY"
    assert response["X-Content-Type-Options"] == "nosniff"
    assert response["Referrer-Policy"] == "same-origin"


def test_a_page_that_asks_for_a_nonce_gets_one_in_the_policy(rf):
    from django.http import HttpResponse

    from config.middleware import CSPMiddleware  # the app's, django-csp's underneath

    request = rf.get("/")

    def view(request):
        return HttpResponse(f"<script nonce='{request.csp_nonce}'></script>")

    response = CSPMiddleware(view)(request)
    nonce = re.search(r"nonce='([^']+)'", response.content.decode()).group(1)
    assert f"'nonce-{nonce}'" in policy(response)["script-src"]


def test_swagger_ui_runs_no_inline_script():
    client = Client()
    page = client.get("/api/docs/")
    script = client.get("/api/docs/?script=")

    assert page.status_code == 200
    html = page.content.decode()
    assert all("src=" in tag for tag in re.findall(r"<script[^>]*>", html))
    assert policy(page)["script-src"] == ["'self'"]
    assert policy(page)["style-src"] == ["'self'", "'unsafe-inline'"]  # its inline styles
    assert script.status_code == 200
    assert script["Content-Type"].startswith("application/javascript")
    for src in re.findall(r'(?:src|href)="(/static/[^"]+)"', html):
        assert client.get(src).status_code == 200, src


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_swagger_ui_renders_under_the_policy_in_chromium(live_server):
    if not Path(CHROMIUM).exists():
        pytest.skip(f"Chromium is not installed at {CHROMIUM}")
    from playwright.sync_api import sync_playwright

    previous = os.environ.get("DJANGO_ALLOW_ASYNC_UNSAFE")
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    violations: list[str] = []
    try:
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(
                executable_path=CHROMIUM, headless=True, args=["--no-sandbox", "--disable-gpu"]
            )
            page = browser.new_page()
            page.on(
                "console",
                lambda message: (
                    violations.append(message.text)
                    if "Content Security Policy" in message.text
                    else None
                ),
            )
            page.goto(f"{live_server.url}/api/docs/")
            page.wait_for_selector(".opblock", timeout=15_000)  # the operations are listed
            operations = page.locator(".opblock").count()
            browser.close()
    finally:
        if previous is None:
            os.environ.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
        else:
            os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = previous

    assert operations > 20
    assert violations == []


def test_inline_code_in_our_pages_carries_the_policy_nonce(client):
    from tests.factories import ProjectFactory, StaffFactory, UserFactory

    user = UserFactory()
    project = ProjectFactory(owner=user)
    client.force_login(user)
    chat = client.get(f"/projects/{project.pk}/chat/")
    client.force_login(StaffFactory())
    stats = client.get("/admin/marketplace/revenueevent/stats/")

    for response, tag in ((chat, "script"), (stats, "style")):
        assert response.status_code == 200
        nonce = re.search(r"'nonce-([^']+)'", response["Content-Security-Policy"]).group(1)
        inline = re.findall(rf"<{tag}(?![^>]*\bsrc=)([^>]*)>", response.content.decode())
        assert inline, tag
        assert all(f'nonce="{nonce}"' in attrs for attrs in inline), inline


def test_plain_responses_get_the_policy_django_csp_builds(settings):
    """The site-wide text is built once; it must stay what django-csp builds, and follow the
    settings when they change."""
    from csp.utils import build_policy

    for url in ("/api/v1/marketplace/listings/", "/healthz"):
        assert Client().get(url)["Content-Security-Policy"] == build_policy()
    assert "Content-Security-Policy-Report-Only" not in Client().get("/healthz")

    settings.CONTENT_SECURITY_POLICY = {"DIRECTIVES": {"default-src": ["'none'"]}}
    settings.CONTENT_SECURITY_POLICY_REPORT_ONLY = {
        "DIRECTIVES": {"default-src": ["'self'"], "report-uri": "/csp-report/"}
    }
    response = Client().get("/healthz")
    assert response["Content-Security-Policy"] == build_policy() == "default-src 'none'"
    assert response["Content-Security-Policy-Report-Only"] == build_policy(report_only=True)
