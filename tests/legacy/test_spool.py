import copy
import pickle
import random
import uuid

import pytest

from legacy.compact import (
    Budget,
    FileTotals,
    HashSet,
    PackedMap,
    ProjectFacts,
    PurchaseFacts,
    UserFacts,
)
from legacy.dump import KeySpool, KeyUuid, SortedSpool, legacy_uuid, uuid_bytes, uuid_of_bytes


@pytest.mark.parametrize("fan_in", [32, 3])
def test_sorted_spool_merges_its_runs_in_key_order_keeping_equal_keys_in_file_order(
    monkeypatch, fan_in
):
    monkeypatch.setattr(SortedSpool, "FAN_IN", fan_in)  # 3: merged in steps
    rng = random.Random(3)
    rows = [(rng.choice([1.5, 2.0, 0.25, 9.0]), f"row {n}") for n in range(100)]
    spool = SortedSpool(7)  # runs of 7 rows on disk
    for stamp, text in rows:
        spool.add(stamp, text)

    assert len(spool.runs) == 14
    assert list(spool.rows()) == [text for _, text in sorted(rows, key=lambda row: row[0])]


# No room at all (every id on disk), room for some (memory, then disk), room for all.
BUDGETS = [0, 60_000, 1 << 30]


@pytest.mark.parametrize("budget", BUDGETS)
def test_hash_set_keeps_every_value_through_its_growth(budget):
    seen = HashSet(Budget(budget))
    values = [f"id-{n}" for n in range(5000)] + [("user", n) for n in range(5000)]

    assert all(seen.add(value) for value in values)
    assert not any(seen.add(value) for value in values)  # each one is there already
    assert all(value in seen for value in values)
    assert "id-5000" not in seen
    assert ("user", -1) not in seen
    spilled = seen.spill.count if seen.spill is not None else 0
    assert seen.count + spilled == 10_000
    if budget == BUDGETS[-1]:
        assert len(seen.hashes) == 16_384  # grown from 1,024, at most two thirds full
    assert seen.budget.used == (8 * len(seen.hashes) if seen.count else 0)


@pytest.mark.parametrize("budget", BUDGETS)
def test_facts_tables_give_back_what_was_put_in_through_their_growth(budget):
    memory = Budget(budget)
    users, projects, purchases = UserFacts(memory), ProjectFacts(memory), PurchaseFacts(memory)
    for n in range(3000):
        users[f"user-{n}"] = -n - 1  # a placeholder first, as in a strict run
        users[f"user-{n}"] = 10 * n
        project = KeyUuid(legacy_uuid("projects", f"proj-{n}"))
        projects.add(f"proj-{n}", project, 10 * n, n % 2 == 0)
        purchases.add(f"pur-{n}", 10 * n, project, n, "EUR" if n % 3 else "USD")
    purchases.remove("pur-7")

    assert (len(users), len(projects), len(purchases)) == (3000, 3000, 2999)
    assert users.get("user-2999") == 29990
    assert users.get("user-3000") is None
    project = KeyUuid(legacy_uuid("projects", "proj-41"))
    assert projects.get("proj-41") == (project, 410, False)
    assert str(projects.get("proj-41")[0]) == str(project)
    assert "proj-3000" not in projects
    assert purchases.get("pur-41") == (410, project, 41, "EUR")
    assert purchases.get("pur-7") is None
    assert "pur-8" in purchases
    assert memory.used <= budget
    assert (memory.spilled > 0) == (budget < BUDGETS[-1])


def test_a_key_uuid_made_from_its_text_is_the_uuid():
    value = uuid.uuid4()
    made = KeyUuid.of_text(str(value))

    assert made == value
    assert value == made
    assert hash(made) == hash(value)
    assert {value: 1}[made] == 1
    assert (made.hex, made.bytes, made.version) == (value.hex, value.bytes, value.version)
    assert copy.deepcopy(made) == value
    assert pickle.loads(pickle.dumps(made)) == value  # noqa: S301 - our own bytes


@pytest.mark.parametrize("budget", BUDGETS)
def test_file_totals_and_packed_maps_through_the_budget(budget):
    memory = Budget(budget)
    totals, packed = FileTotals(memory), PackedMap(memory)
    for n in range(3000):
        totals[f"proj-{n}"] = (1, n)
        totals[f"proj-{n}"] = (2, 2 * n)
        packed.add(f"proj-{n}", f"listing {n}".encode())

    assert totals.get("proj-2999") == (2, 5998)
    assert totals.get("proj-3000") == (0, 0)
    assert "proj-5" in packed
    assert packed.pop("proj-5") == b"listing 5"
    assert packed.pop("proj-5") is None
    assert "proj-5" not in packed
    assert packed.pop("proj-2998") == b"listing 2998"
    left = [f"listing {n}".encode() for n in range(3000) if n not in (5, 2998)]
    assert list(packed.values()) == left  # in the order they came
    assert memory.used <= budget


def test_a_closed_table_gives_its_memory_back_and_drops_its_spilled_ids():
    memory = Budget(20_000)
    first = HashSet(memory)
    for n in range(3000):
        first.add(f"id-{n}")
    assert memory.used == 16_384  # 2,048 slots, not 4,096
    assert memory.spilled == 3000 - 1365  # two thirds of 2,048 in memory

    first.close()
    second = HashSet(memory)
    second.add("x")

    assert memory.used == 8192
    assert [name for (name,) in memory.db.execute("SELECT name FROM sqlite_master")] == []
    memory.close()


def test_a_key_spool_gives_its_keys_back_in_chunks_from_disk():
    values = [uuid.uuid4() for _ in range(10)]
    keys = KeySpool(3, uuid_bytes, uuid_of_bytes)
    for value in values:
        keys.append(value)

    assert keys.file is not None  # all but the last, partial chunk are on disk
    assert list(keys.chunks()) == [values[0:3], values[3:6], values[6:9], values[9:]]
    few = KeySpool(3)
    few.append("user1")
    assert list(few.chunks()) == [["user1"]]
