import random

from legacy.dump import HashSet, SortedSpool


def test_sorted_spool_merges_its_runs_in_key_order_keeping_equal_keys_in_file_order(
    monkeypatch,
):
    monkeypatch.setattr(SortedSpool, "RUN", 7)  # several runs on disk
    rng = random.Random(3)
    rows = [(rng.choice([1.5, 2.0, 0.25, 9.0]), f"row {n}") for n in range(100)]
    spool = SortedSpool()
    for stamp, text in rows:
        spool.add(stamp, text)

    assert len(spool.runs) == 14
    assert list(spool.rows()) == [text for _, text in sorted(rows, key=lambda row: row[0])]


def test_hash_set_keeps_every_value_through_its_growth():
    seen = HashSet()
    values = [f"id-{n}" for n in range(5000)] + [("user", n) for n in range(5000)]

    assert all(seen.add(value) for value in values)
    assert not any(seen.add(value) for value in values)  # each one is there already
    assert all(value in seen for value in values)
    assert "id-5000" not in seen
    assert ("user", -1) not in seen
    assert seen.count == 10_000
    assert len(seen.table) == 16_384  # grown from 1,024, at most two thirds full
