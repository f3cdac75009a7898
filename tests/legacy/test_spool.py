import copy
import os
import pickle
import random
import subprocess
import sys
import uuid

import pytest

from legacy import compact
from legacy.compact import (
    Budget,
    FileTotals,
    HashSet,
    PackedMap,
    ProjectFacts,
    PurchaseFacts,
    UserFacts,
    key_digest,
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
    assert seen.budget.used == (16 * len(seen.hashes) if seen.count else 0)


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
    memory = Budget(60_000)
    first = HashSet(memory)
    for n in range(3000):
        first.add(f"id-{n}")
    assert memory.used == 32_768  # 2,048 slots of 16 bytes, not 4,096
    assert memory.spilled == 3000 - 1365  # two thirds of 2,048 in memory

    first.close()
    second = HashSet(memory)
    second.add("x")

    assert memory.used == 16_384
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


def packed_rows(count: int) -> list[tuple[str, bytes]]:
    return [(f"proj-{n}", f"listing {n} ".encode() * (1 + n % 5)) for n in range(count)]


def packed_bytes(packed: PackedMap) -> int:
    """What a PackedMap that has not spilled holds: its bytes, an offset and a flag for each
    row until its next growth, and 20 bytes a slot (the digest's halves, a row number)."""
    slots = len(packed.hashes)
    return len(packed.data) + 9 * (2 * slots // 3) + 20 * slots


def test_a_packed_map_holds_its_rows_in_one_buffer_charged_per_byte():
    memory = Budget(1 << 30)
    packed = PackedMap(memory)
    rows = packed_rows(3000)
    for key, value in rows:
        packed.add(key, value)

    assert packed.spill is None
    assert len(packed.data) == sum(len(value) for _, value in rows)
    assert len(packed.hashes) == 8192  # two thirds of 4,096 is 2,730
    assert memory.used == packed_bytes(packed)
    assert packed.pop("proj-7") == rows[7][1]
    assert memory.used == packed_bytes(packed)  # a popped row's bytes stay until the close
    packed.close()
    assert memory.used == 0
    assert len(packed.data) == 0


@pytest.mark.parametrize("budget", [0, 40_000, 1 << 30])
def test_a_packed_map_gives_back_what_is_left_in_the_order_it_came(budget):
    memory = Budget(budget)
    packed = PackedMap(memory)
    rows = packed_rows(3000)
    for key, value in rows:
        packed.add(key, value)
    in_memory = packed.count
    popped = {5, 1000, 2500, 2999}  # in memory or on disk, depending on the budget
    for n in sorted(popped):
        assert packed.pop(f"proj-{n}") == rows[n][1]

    assert packed.pop("proj-5") is None
    assert packed.pop("proj-3000") is None
    assert "proj-5" not in packed
    assert "proj-6" in packed
    assert "proj-2998" in packed
    assert list(packed.values()) == [value for n, (_, value) in enumerate(rows) if n not in popped]
    assert memory.used <= budget
    if budget == 40_000:  # memory first, then the file
        assert 0 < in_memory < 1000
        assert packed.spill.count == 3000 - in_memory - 3
        assert memory.used == packed_bytes(packed)
    assert (memory.spilled > 0) == (budget < 1 << 30)


def test_a_packed_map_past_its_budget_rejects_a_second_row_of_an_id_like_before():
    memory = Budget(20_000)
    packed = PackedMap(memory)
    for key, value in packed_rows(2000):
        packed.add(key, value)

    assert packed.spill is not None
    assert "proj-1" in packed  # in memory
    assert "proj-1999" in packed  # on disk
    assert "proj-2000" not in packed


def test_a_growing_table_needs_room_for_its_old_and_new_slots_at_once():
    # 1,024 slots (16 KiB) hold 682 ids; the 683rd needs 2,048 (32 KiB) beside the 16 KiB.
    tight, roomy = Budget(16_384 + 32_768 - 1), Budget(16_384 + 32_768)
    spilled, grown = HashSet(tight), HashSet(roomy)
    for n in range(683):
        spilled.add(f"id-{n}")
        grown.add(f"id-{n}")

    assert len(spilled.hashes) == 1024
    assert spilled.spill.count == 1
    assert tight.used == 16_384
    assert tight.most == 16_384 + 16  # 16: the one slot a table starts with
    assert len(grown.hashes) == 2048
    assert grown.spill is None
    assert roomy.most == 16_384 + 32_768  # old and new table, for the rehash
    assert roomy.used == 32_768  # the old one given back


def test_a_growing_facts_table_is_charged_its_old_and_new_arrays_at_once():
    # At 1,024 slots: 20 bytes a slot (the digest's halves, a row number) and 8 a row for 682
    # rows; at 2,048: 40,960 + 8 x 1,365, while the 20,480 bytes of the old slots are alive.
    small, new, old = 20 * 1024 + 8 * 682, 20 * 2048 + 8 * 1365, 20 * 1024
    for budget, grows in ((new + old - 1, False), (new + old, True)):
        memory = Budget(budget)
        users = UserFacts(memory)
        for n in range(683):
            users[f"user-{n}"] = n

        assert (users.spill is None) == grows
        assert users.get("user-682") == 682
        assert users.get("user-0") == 0
        if grows:
            assert memory.most == new + old
            assert memory.used == new
        else:
            assert memory.most == small + 20  # 20: the one slot a table starts with
            assert memory.used == small


def test_ids_are_keyed_by_a_128_bit_digest_that_is_the_same_in_every_process():
    """Python's hash() is salted per process: a collision would merge two ids differently on
    each run. The digest is the same everywhere, and equal ids of either UUID kind meet."""
    value = uuid.UUID("7d6f7c1e-2b1a-4c55-9a0e-0f3c1b6b9a01")
    keys = ["user-1", value, 42, ("user-1", KeyUuid.of_text(str(value))), (7, "src/app.py")]
    here = [key_digest(key) for key in keys]
    script = (
        "import uuid; from legacy.compact import key_digest; "
        "v = uuid.UUID('7d6f7c1e-2b1a-4c55-9a0e-0f3c1b6b9a01'); "
        "print([key_digest(k) for k in ['user-1', v, 42, ('user-1', v), (7, 'src/app.py')]])"
    )
    for seed in ("1", "2"):
        elsewhere = subprocess.run(  # noqa: S603 - this interpreter, our own module
            [sys.executable, "-c", script],
            env=os.environ | {"PYTHONHASHSEED": seed},
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        assert elsewhere.strip() == repr(here)
    assert key_digest(KeyUuid.of_text(str(value))) == key_digest(value)
    assert len(set(here)) == len(here)
    assert key_digest("42") != key_digest(42)
    assert key_digest(("a", "bc")) != key_digest(("ab", "c"))
    assert all(-(2**63) <= half < 2**63 for digest in here for half in digest)


@pytest.mark.parametrize("budget", [1_000_000, 0])  # in memory, and all in the spill file
def test_ids_whose_digests_share_a_first_half_stay_apart(monkeypatch, budget):
    monkeypatch.setattr(compact, "key_digest", lambda key: (7, len(key)))
    seen, users = HashSet(Budget(budget)), UserFacts(Budget(budget))
    assert seen.add("a")
    assert seen.add("bb")
    assert not seen.add("cc")  # the same digest as "bb": one id, as far as the table knows
    assert ("a" in seen, "bb" in seen, "ddd" in seen) == (True, True, False)
    users["a"], users["bb"] = 1, 2
    assert (users.get("a"), users.get("bb"), users.get("ddd")) == (1, 2, None)


def test_an_id_looked_up_again_is_not_digested_again(monkeypatch):
    """A row asks for its id several times (held? rejected? hold it): the digest is computed
    once, not once a lookup, and an equal id of another UUID kind meets the remembered one."""
    computed = []
    halves = compact._HALVES
    monkeypatch.setattr(compact, "_HALVES", lambda data: computed.append(data) or halves(data))
    monkeypatch.setattr(compact, "_memo", {}, raising=False)
    value = uuid.uuid4()
    budget = Budget(1_000_000)
    projects, rejected = ProjectFacts(budget), HashSet(budget)
    for key in ("project-1", value):
        assert key not in projects
        assert key not in rejected
        projects.add(key, KeyUuid(value), 7, True)
        assert key in projects
        assert projects.get(key)[1] == 7
    assert KeyUuid.of_text(str(value)) in projects
    assert len(computed) == 2


def test_the_digest_memo_holds_a_bounded_number_of_ids_and_gives_the_same_digests(monkeypatch):
    monkeypatch.setattr(compact, "DIGEST_MEMO", 64)
    monkeypatch.setattr(compact, "_memo", {})
    keys = [f"user-{n}" for n in range(1000)] + [(n, "src/app.py") for n in range(1000)]
    first = [key_digest(key) for key in keys]
    assert len(compact._memo) <= 64
    compact._memo.clear()
    assert [key_digest(key) for key in reversed(keys)] == first[::-1]
    assert key_digest(42) != key_digest("42")  # equal ids only: 42 and "42" are two
