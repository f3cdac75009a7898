"""Past its memory budget the import keeps ids and facts in a temporary file: a generated
dump with invalid rows of many kinds imports to the same rows, summary and rejections
whether its ids sit in memory, partly on disk, or all on disk."""

import copy
import json
import re

import pytest

from tests.legacy.conftest import delete_everything, run_import, snapshot
from tests.legacy.generate import write_dump

pytestmark = pytest.mark.django_db
ROWS = 10_000
BAD = "'bad-project'"


@pytest.fixture(scope="module")
def generated(tmp_path_factory) -> dict:
    path = tmp_path_factory.mktemp("budget") / "dump.json"
    with path.open("w", encoding="utf-8") as out:
        write_dump(out, ROWS, seed=7)
    return json.loads(path.read_text())


def with_invalid_rows(data: dict) -> dict:
    """Invalid rows at the ends of their maps, where they meet ids that went to disk."""
    data = copy.deepcopy(data)
    users, projects = data["users"], data["projects"]
    listings, files = data["marketplaceProjects"], data["projectFiles"]
    chat, purchases = data["chatMessages"], data["marketplacePurchases"]
    reviews, events = data["marketplaceReviews"], data["revenueEvents"]
    users.append(users[1] | {"id": "user-late"})  # its username is taken
    users.append(users[2])  # an id twice
    projects.append(projects[3])  # an id twice
    projects.append(projects[5] | {"id": "bad-project", "name": ""})
    listings.append(listings[1] | {"id": "mp-bad", "projectId": "bad-project"})
    listings.append(listings[2] | {"id": "mp-none", "projectId": "proj-x"})
    listings.append(listings[3] | {"id": "mp-twice"})  # a second listing of a project
    files.append(files[0])  # a path twice in a project
    chat.append(chat[10])  # an id twice
    chat.append(chat[20] | {"id": "m-bad", "projectId": "bad-project"})
    chat.append(chat[21] | {"id": "m-none", "userId": "user-x"})
    purchases.append(purchases[0])  # an id twice
    purchases.append(purchases[1] | {"id": "pur-bad", "projectId": "bad-project"})
    reviews.append(reviews[0] | {"id": "rev-again"})  # a second review of the project
    events.append(events[0])  # an id twice
    events.append(events[1] | {"id": "evt-bad", "purchaseId": "pur-bad"})
    events.append(events[2] | {"id": "evt-none", "purchaseId": "pur-x"})
    return data


def test_ids_spilled_to_disk_give_the_same_import(generated, write_dump, tmp_path):
    dump = write_dump(with_invalid_rows(generated))
    report = tmp_path / "report.json"
    results = {}
    for budget in (None, 0.05, 0):  # MB: the default, room for a few tables' first ids, none
        options = {"skip_invalid": True, "report": str(report)}
        if budget is not None:
            options["memory_budget"] = budget
        out, err = run_import(dump, **options)
        spilled = int(re.search(r"([\d,]+) ids spilled", err).group(1).replace(",", ""))
        results[budget] = (out, json.loads(report.read_text()), snapshot())
        delete_everything()
        assert (spilled == 0) == (budget is None), err

    assert results[0.05] == results[None]
    assert results[0] == results[None]
    out, rejected, _ = results[None]
    assert "17 invalid rows were skipped" in out
    assert [
        (row["map"], row["id"], row["problems"][-1]["reason"]) for row in rejected["rejected"]
    ] == [
        ("users", "user-late", "is taken by an earlier row of users"),
        ("users", "user-2", "appears twice in users (the first row is kept)"),
        (
            "marketplaceProjects",
            "mp-twice",
            "project 'proj-3' already has a marketplace row (the first is kept)",
        ),
        ("projects", "proj-3", "appears twice in projects (the first row is kept)"),
        ("projects", "bad-project", "must not be blank"),
        ("marketplaceProjects", "mp-bad", f"refers to projects row {BAD}, which is invalid"),
        ("marketplaceProjects", "mp-none", "refers to no row of projects: 'proj-x'"),
        ("projectFiles", 250, "'src/module_0.py' appears twice in this project (first kept)"),
        (
            "marketplacePurchases",
            "pur-0",
            "this user already has a completed purchase of this project (the first is kept)",
        ),
        ("marketplacePurchases", "pur-bad", f"refers to projects row {BAD}, which is invalid"),
        (
            "marketplaceReviews",
            "rev-again",
            "this user already reviewed this project (the first is kept)",
        ),
        ("revenueEvents", "evt-0", "appears twice in revenueEvents (the first is kept)"),
        (
            "revenueEvents",
            "evt-bad",
            "refers to marketplacePurchases row 'pur-bad', which is invalid",
        ),
        ("revenueEvents", "evt-none", "refers to no row of marketplacePurchases: 'pur-x'"),
        ("chatMessages", "m10", "appears twice in chatMessages (the first row is kept)"),
        ("chatMessages", "m-bad", f"refers to projects row {BAD}, which is invalid"),
        ("chatMessages", "m-none", "refers to no row of users: 'user-x'"),
    ]
