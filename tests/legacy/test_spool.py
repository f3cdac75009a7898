import copy
import pickle
import random
import uuid

from legacy.compact import HashSet, ProjectFacts, PurchaseFacts, UserFacts
from legacy.dump import KeyUuid, SortedSpool, legacy_uuid


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
    assert len(seen.hashes) == 16_384  # grown from 1,024, at most two thirds full


def test_facts_tables_give_back_what_was_put_in_through_their_growth():
    users, projects, purchases = UserFacts(), ProjectFacts(), PurchaseFacts()
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
