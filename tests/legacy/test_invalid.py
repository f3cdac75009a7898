import json
from decimal import Decimal
from io import StringIO

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.core.management.base import CommandError

from chat.models import ChatMessage
from legacy.dump import MAPS, legacy_uuid
from marketplace.models import Purchase, RevenueEvent, Review
from projects.models import Project, ProjectFile
from tests.factories import ProjectFactory
from tests.legacy.conftest import INVOICE, run_import, snapshot

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("memory_budget")]
User = get_user_model()


@pytest.fixture
def strict(capsys, sample, write_dump):
    """Run the strict import of the (changed) sample; return the problem lines it printed."""

    def run():
        before = snapshot()
        from io import StringIO

        from django.core.management import call_command

        err = StringIO()
        with pytest.raises(CommandError) as failure:
            call_command("import_legacy_store", write_dump(sample), stdout=StringIO(), stderr=err)
        assert "nothing was written" in str(failure.value)
        assert snapshot() == before  # strict mode leaves the database untouched
        lines = err.getvalue().splitlines()
        return [line for line in lines if line.split(" ")[0] in MAPS and "rows read" not in line]

    return run


def test_a_missing_required_field(sample, strict):
    del sample["projects"][1]["name"]

    assert "projects 'proj-42': name: is required" in strict()


def test_a_dangling_reference(sample, strict):
    sample["chatMessages"][0]["userId"] = "user-404"

    assert "chatMessages 'm1': userId: refers to no row of users: 'user-404'" in strict()


def test_a_rating_of_seven(sample, strict):
    sample["marketplaceReviews"][0]["rating"] = 7

    assert (
        "marketplaceReviews 'rev-1': rating: must be a whole number from 1 to 5, not 7" in strict()
    )


def test_a_negative_price(sample, strict):
    sample["marketplaceProjects"][0]["price"] = "-5.00"

    assert "marketplaceProjects 'mp-1': price: must not be negative" in strict()


def test_an_unknown_currency(sample, strict):
    sample["marketplacePurchases"][0]["currency"] = "XYZ"

    lines = strict()

    assert (
        "marketplacePurchases 'pur-1': currency: is not an ISO 4217 currency code: 'XYZ'" in lines
    )
    # The revenue event of that purchase leads to an invalid row, so it is invalid too.
    assert any(line.startswith("revenueEvents 'rev-evt-1': purchaseId:") for line in lines)


def test_a_path_with_dot_dot(sample, strict):
    sample["projectFiles"][2]["path"] = "../etc/passwd"

    (line,) = strict()

    assert line.startswith("projectFiles 2: path: A file path may not contain")


def test_two_reviews_by_one_user_of_one_project(sample, strict):
    sample["marketplaceReviews"].append(dict(sample["marketplaceReviews"][0], id="rev-2"))

    assert strict() == [
        "marketplaceReviews 'rev-2': userId: this user already reviewed this project "
        "(the first is kept)"
    ]


def test_two_marketplace_rows_for_one_project(sample, strict):
    sample["marketplaceProjects"].append(dict(sample["marketplaceProjects"][0], id="mp-3"))

    assert strict() == [
        f"marketplaceProjects 'mp-3': projectId: project '{INVOICE}' already has a marketplace "
        "row (the first is kept)"
    ]


def test_a_wrong_format(sample, write_dump):
    sample["format"] = "memstorage-v0"

    with pytest.raises(CommandError, match="format must be 'memstorage-v1'"):
        run_import(write_dump(sample))
    assert not User.objects.exists()


def test_strict_mode_leaves_an_existing_database_untouched(sample, write_dump):
    ProjectFactory(name="Already here")
    run_import(write_dump(json.loads(json.dumps(sample))))
    before = snapshot()
    sample["projects"][0]["name"] = "Renamed"  # a valid change ...
    sample["marketplaceReviews"][0]["rating"] = 0  # ... and an invalid row

    with pytest.raises(CommandError):
        run_import(write_dump(sample, "second.json"))

    assert snapshot() == before
    assert Project.objects.get(pk=INVOICE).name == "Invoice parser agent"


def test_skip_invalid_imports_the_rest_and_reports_the_rejected_rows(sample, write_dump, tmp_path):
    sample["users"][2]["username"] = "not valid!"  # linus: his project, messages ... follow
    sample["marketplaceReviews"][0]["rating"] = 7
    report = tmp_path / "report.json"

    out, _ = run_import(write_dump(sample), skip_invalid=True, report=str(report))

    data = json.loads(report.read_text())
    rejected = {(entry["map"], entry["id"]): entry for entry in data["rejected"]}
    assert rejected[("users", "user-3")]["problems"] == [
        {"field": "username", "reason": "may hold only letters, digits and @.+-_"}
    ]
    assert rejected[("users", "user-3")]["row"]["username"] == "not valid!"
    # Rows whose references lead to a rejected row are rejected with them.
    assert rejected[("projects", "proj-43")]["problems"] == [
        {"field": "userId", "reason": "refers to users row 'user-3', which is invalid"}
    ]
    assert ("chatMessages", "m3") in rejected
    assert ("marketplacePurchases", "pur-1") in rejected
    assert ("revenueEvents", "rev-evt-1") in rejected
    assert rejected[("marketplaceReviews", "rev-1")]["problems"][0]["field"] in {
        "rating", "userId"
    }  # fmt: skip
    assert data["summary"]["projects"] == {
        "read": 3, "created": 2, "updated": 0, "unchanged": 0, "rejected": 1
    }  # fmt: skip
    assert "invalid rows were skipped" in out
    # The valid rows are in.
    assert set(User.objects.values_list("username", flat=True)) == {"ada", "grace"}
    assert Project.objects.count() == 2
    assert ChatMessage.objects.count() == 2
    assert ProjectFile.objects.count() == 3
    assert not Purchase.objects.exists()
    assert not Review.objects.exists()
    invoice = Project.objects.get(pk=INVOICE)
    assert (invoice.purchase_count, invoice.download_count, invoice.review_count) == (0, 0, 0)


def test_every_problem_of_a_row_is_reported(sample, strict):
    sample["marketplacePurchases"][0].update(amount="-1", status="lost")

    lines = strict()

    assert "marketplacePurchases 'pur-1': amount: must not be negative" in lines
    assert any(
        line.startswith("marketplacePurchases 'pur-1': status: must be one of") for line in lines
    )


def test_strict_mode_names_a_review_that_collides_with_one_only_in_the_database(sample, write_dump):
    run_import(write_dump(sample))
    # Another review by the same user of the same project, under a new id.
    sample["marketplaceReviews"][0]["id"] = "rev-new"

    lines = _strict_problems(write_dump(sample, "second.json"))

    assert lines == [
        "marketplaceReviews 'rev-new': userId: this user already reviewed this project "
        "(in the database)"
    ]


def test_skip_invalid_reports_a_review_that_collides_with_one_only_in_the_database(
    sample, write_dump, tmp_path
):
    run_import(write_dump(sample))
    sample["marketplaceReviews"][0]["id"] = "rev-new"
    sample["marketplaceReviews"][0]["title"] = "Changed"
    sample["projects"][0]["name"] = "Renamed"
    report = tmp_path / "report.json"

    run_import(write_dump(sample, "second.json"), "--skip-invalid", "--report", str(report))

    rejected = json.loads(report.read_text())["rejected"]
    assert [(entry["map"], entry["id"]) for entry in rejected] == [
        ("marketplaceReviews", "rev-new")
    ]
    assert rejected[0]["problems"][0]["reason"] == (
        "this user already reviewed this project (in the database)"
    )
    assert Review.objects.get().title != "Changed"  # the review in the database stays
    assert Project.objects.filter(name="Renamed").exists()  # the rest is imported


def _strict_problems(path: str) -> list[str]:
    """The problem lines of a strict import that fails, after checking it wrote nothing."""
    before = snapshot()
    err = StringIO()
    with pytest.raises(CommandError, match="nothing was written"):
        call_command("import_legacy_store", path, stdout=StringIO(), stderr=err)
    assert snapshot() == before
    return [line for line in err.getvalue().splitlines() if line.split(" ")[0] in MAPS]


def _second_purchase_under_a_new_id(sample: dict) -> None:
    """pur-1 (in the database) is left out; pur-new, the same buyer and project, comes in with
    the revenue event that now refers to it."""
    sample["marketplacePurchases"][0]["id"] = "pur-new"
    sample["revenueEvents"][0]["purchaseId"] = "pur-new"


def test_strict_mode_names_a_purchase_that_collides_with_one_only_in_the_database(
    sample, write_dump
):
    run_import(write_dump(sample))
    _second_purchase_under_a_new_id(sample)

    lines = _strict_problems(write_dump(sample, "second.json"))

    assert lines == [
        "marketplacePurchases 'pur-new': projectId: this user already has a completed purchase "
        "of this project (in the database)",
        "revenueEvents 'rev-evt-1': purchaseId: refers to marketplacePurchases row 'pur-new', "
        "which is invalid",
    ]


def test_skip_invalid_reports_a_purchase_that_collides_with_one_only_in_the_database(
    sample, write_dump, tmp_path
):
    run_import(write_dump(sample))
    _second_purchase_under_a_new_id(sample)
    sample["projects"][0]["name"] = "Renamed"
    report = tmp_path / "report.json"

    run_import(write_dump(sample, "second.json"), "--skip-invalid", "--report", str(report))

    rejected = json.loads(report.read_text())["rejected"]
    assert [(entry["map"], entry["id"]) for entry in rejected] == [
        ("marketplacePurchases", "pur-new"),
        ("revenueEvents", "rev-evt-1"),  # it refers only to the rejected purchase
    ]
    assert Purchase.objects.get().pk == legacy_uuid("marketplacePurchases", "pur-1")
    event = RevenueEvent.objects.get()
    assert event.purchase_id == legacy_uuid("marketplacePurchases", "pur-1")  # unchanged
    assert Project.objects.get(pk=INVOICE).name == "Renamed"  # the rest is imported


def test_strict_mode_names_a_revenue_event_that_collides_with_one_only_in_the_database(
    sample, write_dump
):
    run_import(write_dump(sample))
    sample["revenueEvents"][0]["id"] = "rev-evt-new"  # a second purchase event of pur-1

    lines = _strict_problems(write_dump(sample, "second.json"))

    assert lines == [
        "revenueEvents 'rev-evt-new': purchaseId: this purchase already has a purchase event "
        "(in the database)"
    ]


def test_skip_invalid_reports_a_revenue_event_that_collides_with_one_only_in_the_database(
    sample, write_dump, tmp_path
):
    run_import(write_dump(sample))
    sample["revenueEvents"][0].update(id="rev-evt-new", amount="5.00")
    sample["projects"][0]["name"] = "Renamed"
    report = tmp_path / "report.json"

    run_import(write_dump(sample, "second.json"), "--skip-invalid", "--report", str(report))

    rejected = json.loads(report.read_text())["rejected"]
    assert [(entry["map"], entry["id"]) for entry in rejected] == [("revenueEvents", "rev-evt-new")]
    event = RevenueEvent.objects.get()
    assert event.pk == legacy_uuid("revenueEvents", "rev-evt-1")
    assert event.gross == Decimal("19.99")
    assert Project.objects.get(pk=INVOICE).name == "Renamed"
