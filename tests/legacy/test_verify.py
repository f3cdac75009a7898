"""The verification after the write, and reading the dump in one pass whatever its order."""

import json

import pytest
from django.core.management.base import CommandError

import legacy.importer
from chat.models import ChatMessage
from legacy.canonical import jsonb_text
from marketplace.models import Review
from tests.legacy.conftest import SAMPLE_PATH, delete_everything, run_import, snapshot

pytestmark = pytest.mark.django_db


@pytest.fixture
def tamper(monkeypatch):
    """Run `change` on the database after the write and before the verification."""

    def install(change):
        restore = legacy.importer.restore_after_load

        def restore_then_change(statements):
            restore(statements)
            change()

        monkeypatch.setattr(legacy.importer, "restore_after_load", restore_then_change)

    return install


@pytest.mark.parametrize(
    ("change", "map_name"),
    [
        (lambda: Review.objects.filter(title="Works").update(title="Wroks"), "marketplaceReviews"),
        (
            lambda: ChatMessage.objects.filter(metadata={}).update(metadata={"k": 1}),
            "chatMessages",
        ),
        (
            lambda: ChatMessage.objects.filter(role="user").update(content="Parse the\ttotals"),
            "chatMessages",
        ),
    ],
)
def test_a_stored_row_that_differs_from_the_dump_fails_the_verification(tamper, change, map_name):
    before = snapshot()
    tamper(change)

    with pytest.raises(CommandError, match="Verification failed") as failure:
        run_import(str(SAMPLE_PATH))

    assert f"{map_name}: " in str(failure.value)
    assert "the checksum differs" in str(failure.value)
    assert snapshot() == before  # nothing was committed


def test_a_missing_row_fails_the_verification(tamper):
    before = snapshot()
    tamper(lambda: Review.objects.filter(pk=Review.objects.values("pk")[:1]).delete())

    with pytest.raises(CommandError, match=r"marketplaceReviews: .* the database holds \d+"):
        run_import(str(SAMPLE_PATH))

    assert snapshot() == before


def test_awkward_text_and_json_pass_the_verification_exactly(sample, write_dump):
    # What the checksum's text must write exactly as the database prints it back.
    metadata = {
        "é": 1,
        "b": [1.5, -0.0, 1e16, 1.25e-7, 3.0, None, True],
        "aa": {"z": "tab\there", "y": 'quote " back \\ nl \n cr \r \x07 \u2028 ☃ 𝄞'},
        "ab": 123456789012345678901234567890,
    }
    sample["chatMessages"][0]["metadata"] = metadata
    sample["chatMessages"][0]["content"] = "back\\slash\ttab\nnew line\r\\N"
    sample["mcpServers"][0]["args"] = ["--flag", "a\\b", ""]

    out, _ = run_import(write_dump(sample))

    assert "Imported" in out
    message = ChatMessage.objects.get(content__startswith="back")
    assert message.metadata == json.loads(json.dumps(metadata))
    assert message.content == "back\\slash\ttab\nnew line\r\\N"


def test_jsonb_text_orders_keys_by_length_then_bytes():
    # "é" is two bytes in UTF-8, as long as "bb" and after it.
    assert jsonb_text({"bb": 1, "a": [], "é": {}, "c": None}) == (
        '{"a": [], "c": null, "bb": 1, "é": {}}'
    )
    assert jsonb_text([1e16, 1.25e-7, -0.0, 2.50]) == "[10000000000000000, 0.000000125, 0.0, 2.5]"


def test_maps_in_any_order_import_the_same_rows(sample, write_dump):
    run_import(str(SAMPLE_PATH))
    expected = snapshot(passwords=False)
    delete_everything()
    # Chat messages first, users last: every map refers to one read after it.
    reordered = {"format": sample["format"], "exportedAt": sample["exportedAt"]}
    for name in reversed([key for key in sample if key not in reordered]):
        reordered[name] = sample[name]

    run_import(write_dump(reordered))

    assert snapshot(passwords=False) == expected


def test_a_stored_row_that_differs_fails_the_verification_of_a_second_import(tamper):
    run_import(str(SAMPLE_PATH))  # the tables hold rows now: the rows are checked by key
    before = snapshot()
    tamper(lambda: Review.objects.filter(title="Works").update(title="Wroks"))

    with pytest.raises(CommandError, match="Verification failed") as failure:
        run_import(str(SAMPLE_PATH))

    assert "marketplaceReviews: " in str(failure.value)
    assert "the checksum differs" in str(failure.value)
    assert snapshot() == before
