"""What the import keeps in memory per row, in flat arrays instead of Python objects.

Ids are kept as their 64-bit hashes (Python's, salted per process) in open-addressing
tables at most two thirds full; the facts about a row sit in dense arrays in the order the
rows came. A project costs about 80 bytes this way, against about 400 as a dict entry of a
string and a tuple. Two ids with one hash count as one id: with a million ids, the odds that
two share a hash are about 1 in 40 million.
"""

from array import array

from legacy.dump import KeyUuid

_new = object.__new__
_set_number = KeyUuid._number.__set__
_set_text = KeyUuid.text.__set__

_EMPTY, _GONE = 0, -1  # slot markers; hash() never gives -1, and 0 is made 1
_START = 1024


class HashSet:
    """A set of ids: 12-24 bytes each, against about 70 for a set of their hashes."""

    def __init__(self):
        self.hashes = array("q", bytes(8 * _START))
        self.count = 0

    def __contains__(self, key) -> bool:
        wanted = hash(key) or 1
        hashes = self.hashes
        mask = len(hashes) - 1
        slot = wanted & mask
        while (found := hashes[slot]) != wanted:
            if found == _EMPTY:
                return False
            slot = (slot + 1) & mask
        return True

    def add(self, key) -> bool:
        """Add the id; False if it was there already."""
        wanted = hash(key) or 1
        hashes = self.hashes
        mask = len(hashes) - 1
        slot = wanted & mask
        while (found := hashes[slot]) != _EMPTY:
            if found == wanted:
                return False
            slot = (slot + 1) & mask
        hashes[slot] = wanted
        self.count += 1
        if 3 * self.count > 2 * len(hashes):
            self.hashes = _rehash(hashes, 2 * len(hashes))
        return True


def _rehash(hashes: array, size: int, rows: array | None = None) -> array:
    """The hashes (other than removed ones) in a table of `size` slots; with `rows`, the row
    number of each slot moves along (into rows' new contents, in place)."""
    table = array("q", bytes(8 * size))
    moved = array(rows.typecode, bytes(rows.itemsize * size)) if rows is not None else None
    mask = size - 1
    for old_slot, wanted in enumerate(hashes):
        if wanted in (_EMPTY, _GONE):
            continue
        slot = wanted & mask
        while table[slot] != _EMPTY:
            slot = (slot + 1) & mask
        table[slot] = wanted
        if moved is not None:
            moved[slot] = rows[old_slot]
    if rows is not None:
        rows[:] = moved
    return table


class _Facts:
    """Ids -> row numbers 0, 1, 2 ... in the order the ids came; subclasses keep each row's
    facts in dense arrays at that number."""

    def __init__(self):
        self.hashes = array("q", bytes(8 * _START))
        self.rows = array("i", bytes(4 * _START))
        self.count = 0  # ids held
        self.added = 0  # rows, removed ids' included
        self.used = 0  # slots taken, removed ids' included

    def __len__(self) -> int:
        return self.count

    def __contains__(self, key) -> bool:
        return self._slot(key) >= 0

    def _slot(self, key) -> int:
        wanted = hash(key) or 1
        hashes = self.hashes
        mask = len(hashes) - 1
        slot = wanted & mask
        while (found := hashes[slot]) != wanted:
            if found == _EMPTY:
                return -1
            slot = (slot + 1) & mask
        return slot

    def _row(self, key) -> int:
        """The id's row number, or -1."""
        slot = self._slot(key)
        return self.rows[slot] if slot >= 0 else -1

    def _add(self, key) -> None:
        """Hold an id not held yet, at the next row number (the caller appends its facts)."""
        size = len(self.hashes)
        if 3 * (self.used + 1) > 2 * size:
            # Twice the slots; as many when removed ids took the room (they are dropped).
            self.hashes = _rehash(
                self.hashes, 2 * size if 3 * self.count >= size else size, self.rows
            )
            self.used = self.count
        wanted = hash(key) or 1
        hashes = self.hashes
        mask = len(hashes) - 1
        slot = wanted & mask
        while hashes[slot] != _EMPTY:
            slot = (slot + 1) & mask
        hashes[slot] = wanted
        self.rows[slot] = self.added
        self.added += 1
        self.count += 1
        self.used += 1

    def remove(self, key) -> None:
        slot = self._slot(key)
        if slot >= 0:
            self.hashes[slot] = _GONE
            self.count -= 1


class UserFacts(_Facts):
    """A user's id in the dump -> the user's primary key."""

    def __init__(self):
        super().__init__()
        self.pks = array("q")

    def get(self, key) -> int | None:
        wanted = hash(key) or 1
        hashes = self.hashes
        mask = len(hashes) - 1
        slot = wanted & mask
        while (found := hashes[slot]) != wanted:
            if found == _EMPTY:
                return None
            slot = (slot + 1) & mask
        return self.pks[self.rows[slot]]

    def __setitem__(self, key, pk: int) -> None:
        slot = self._slot(key)
        if slot >= 0:
            self.pks[self.rows[slot]] = pk
        else:
            self._add(key)
            self.pks.append(pk)


class ProjectFacts(_Facts):
    """A project's id in the dump -> (its UUID, its owner's pk, whether it is active)."""

    def __init__(self):
        super().__init__()
        self.texts = bytearray()
        self.owners = array("q")
        self.active = bytearray()

    def get(self, key) -> tuple | None:
        wanted = hash(key) or 1  # _slot(key), written out: it runs for most rows
        hashes = self.hashes
        mask = len(hashes) - 1
        slot = wanted & mask
        while (found := hashes[slot]) != wanted:
            if found == _EMPTY:
                return None
            slot = (slot + 1) & mask
        row = self.rows[slot]
        pk = _new(KeyUuid)  # KeyUuid.of_text, written out
        _set_number(pk, None)
        _set_text(pk, self.texts[36 * row : 36 * row + 36].decode())
        return pk, self.owners[row], self.active[row] == 1

    def add(self, key, pk: KeyUuid, owner: int, active: bool) -> None:
        """Facts about a project not held yet."""
        self._add(key)
        self.texts += pk.text.encode()
        self.owners.append(owner)
        self.active.append(active)


class PurchaseFacts(_Facts):
    """A purchase's id in the dump -> (buyer pk, project UUID, amount in cents, currency)."""

    def __init__(self):
        super().__init__()
        self.buyers = array("q")
        self.projects = bytearray()
        self.cents = array("q")
        self.currencies: list[str] = []  # the same few interned strings

    def get(self, key) -> tuple | None:
        row = self._row(key)
        if row < 0:
            return None
        project = KeyUuid.of_text(self.projects[36 * row : 36 * row + 36].decode())
        return self.buyers[row], project, self.cents[row], self.currencies[row]

    def add(self, key, buyer: int, project: KeyUuid, cents: int, currency: str) -> None:
        """Facts about a purchase not held yet."""
        self._add(key)
        self.buyers.append(buyer)
        self.projects += project.text.encode()
        self.cents.append(cents)
        self.currencies.append(currency)
