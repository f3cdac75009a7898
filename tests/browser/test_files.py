"""A project's files in Chromium: names that look like links, and renaming a file."""

import pytest
from playwright.sync_api import expect

from projects.models import ProjectFile
from tests.factories import PASSWORD, ProjectFactory, ProjectFileFactory

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.browser]


@pytest.mark.parametrize("width", [1280, 375])
def test_a_file_name_looks_like_a_link_and_the_file_can_be_renamed(
    new_page, screenshot, user, width
):
    project = ProjectFactory(owner=user, name="Invoices")
    ProjectFileFactory(project=project, path="src/app.py", content="x = 1\n")
    page = new_page(width=width)
    page.goto("/accounts/login/")
    page.fill("#id_username", user.username)
    page.fill("#id_password", PASSWORD)
    page.click("button:has-text('Log in')")
    page.goto(f"/projects/{project.pk}/")

    link = page.locator("a.file-link", has_text="src/app.py")
    style = link.evaluate(
        "a => { const s = getComputedStyle(a), p = getComputedStyle(a.closest('td'));"
        " return {line: s.textDecorationLine, color: s.color, text: p.color}; }"
    )
    assert "underline" in style["line"]
    assert style["color"] != style["text"]  # the link colour, not the table's text colour
    screenshot(page, f"project-files-{width}")

    link.click()
    page.fill("#id_path", "lib/app.py")
    page.click("button:has-text('Save file')")

    expect(page.locator(".messages")).to_contain_text("renamed src/app.py to lib/app.py")
    expect(page.locator("a.file-link")).to_have_text("lib/app.py")
    assert list(ProjectFile.objects.values_list("path", "content")) == [("lib/app.py", "x = 1\n")]
    screenshot(page, f"project-file-renamed-{width}")
