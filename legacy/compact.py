"""What the import keeps per row: flat arrays in memory up to a budget, then a file on disk.

Ids are kept as a stable 128-bit digest (BLAKE2b) in open-addressing tables at most two
thirds full, as two 64-bit halves; the facts about a row sit in dense arrays in the order the
rows came, far smaller than a dict entry of a string and a tuple. The digest is the same in
every run (Python's hash() is salted per process) and two ids sharing one is out of reach, so
no two ids are ever taken for one.

The tables of one import share a Budget of bytes. A table grows while the budget has room
for its old and new arrays at once (both are alive while it is rehashed); once it has none,
the table keeps what it holds and puts every later id in a table of a temporary SQLite file
(_Spill), written in sorted batches and read one id at a time, only when a filter of the
spilled hashes in memory says the id may be there. So memory does not grow with the dump
past the budget; the file is deleted when the import ends.
"""

import hashlib
import sqlite3
import struct
import sys
import uuid
from array import array

from legacy.dump import KeyUuid

_new = object.__new__
_set_number = KeyUuid._number.__set__
_set_text = KeyUuid.text.__set__

_EMPTY, _GONE = 0, -1  # slot markers: a digest's first half that is either is made 1
_HALVES = struct.Struct("<qq").unpack
_blake2b = hashlib.blake2b
_STR_HASHER = _blake2b(b"s", digest_size=16)  # text ids: tagged as _key_bytes tags them
DIGEST_MEMO = 8192  # ids whose digests are remembered


def _key_bytes(key) -> bytes:
    """An id as bytes, one encoding per value: the kinds of keys the import uses (text, a
    UUID, a number, a tuple of them), each tagged so that no two kinds meet."""
    if isinstance(key, str):
        return b"s" + key.encode("utf-8", "surrogatepass")
    if isinstance(key, uuid.UUID):
        return b"u" + str(key).encode()  # KeyUuid's str() is its text: no number worked out
    if isinstance(key, int):
        return b"i%d" % key
    if isinstance(key, tuple):
        parts = [_key_bytes(part) for part in key]
        return b"t" + b"".join(len(part).to_bytes(4, "little") + part for part in parts)
    raise TypeError(f"not an id the import keys by: {type(key).__name__}")


# One row asks for the same id several times (is it held, was it rejected, hold it) and many
# rows name the same user or project: a memo computes each digest once while the id is in
# use. Equal keys have equal bytes (_key_bytes), so answering by equality is exact. It is
# emptied when full, so it holds at most DIGEST_MEMO ids whatever the dump; each of its steps
# is one dict operation, safe between threads, and a lost entry is only computed again.
_memo: dict = {}


def key_digest(key) -> tuple[int, int]:
    """The id's 128-bit digest as two signed 64-bit halves, the first never a slot marker."""
    halves = _memo.get(key)
    if halves is not None:
        return halves
    if type(key) is str:  # most ids: hashed after the tag without building b"s" + text
        hasher = _STR_HASHER.copy()
        hasher.update(key.encode("utf-8", "surrogatepass"))
        halves = _HALVES(hasher.digest())
    else:
        halves = _HALVES(_blake2b(_key_bytes(key), digest_size=16).digest())
    if halves[0] in (_EMPTY, _GONE):
        halves = 1, halves[1]
    if len(_memo) >= DIGEST_MEMO:
        _memo.clear()
    _memo[key] = halves
    return halves


_START = 1024
# For a budget of B bytes, SQLite's page cache for the spill file takes B/8 and each spilled
# table's filter B/16, within these bounds.
CACHE_BYTES = (1 << 19, 1 << 24)
FILTER_BYTES = (1 << 16, 1 << 23)


class Budget:
    """The bytes the tables of one import may hold in memory, and the temporary SQLite file
    that takes what they cannot hold."""

    def __init__(self, limit: float):
        self.limit = limit
        self.used = 0
        self.most = 0  # the most the tables held at once
        self.spilled = 0  # ids written to the file
        self.db: sqlite3.Connection | None = None
        self.tables = 0
        low, high = FILTER_BYTES
        self.filter_bytes = 1 << (min(max(int(limit) // 16, low), high).bit_length() - 1)
        low, high = CACHE_BYTES
        self.cache_kib = min(max(int(limit) // 8, low), high) // 1024

    def take(self, size: int) -> bool:
        """Room for `size` more bytes; False (nothing taken) when the budget has none."""
        if self.used + size > self.limit:
            return False
        self.used += size
        self.most = max(self.most, self.used)
        return True

    def give(self, size: int) -> None:
        self.used -= size

    def spill(self) -> "_Spill":
        if self.db is None:
            # "": a private temporary file, deleted by SQLite when the connection closes.
            self.db = sqlite3.connect("", isolation_level=None)
            for pragma in (
                "journal_mode = OFF",
                "synchronous = OFF",
                "locking_mode = EXCLUSIVE",
                f"cache_size = -{self.cache_kib}",
            ):
                self.db.execute(f"PRAGMA {pragma}")
        self.tables += 1
        return _Spill(self, f"spill{self.tables}")

    def close(self) -> None:
        if self.db is not None:
            self.db.close()
            self.db = None


class _Spill:
    """One table's ids past the budget: digest -> packed facts in the spill file, the latest
    batch in a dict, and a filter (two bits per digest) that answers most lookups of absent
    ids without the file."""

    BATCH = 4096

    def __init__(self, budget: Budget, name: str):
        self.budget = budget
        self.db = budget.db
        self.name = name
        self.db.execute(
            f"CREATE TABLE {name} (h INTEGER, g INTEGER, n INTEGER, v BLOB, "
            "PRIMARY KEY (h, g)) WITHOUT ROWID"
        )
        self.select = f"SELECT v FROM {name} WHERE h = ? AND g = ?"  # noqa: S608 - our own table
        self.insert = f"INSERT OR REPLACE INTO {name} VALUES (?, ?, ?, ?)"  # noqa: S608
        self.bits = bytearray(budget.filter_bytes)
        self.mask = 8 * len(self.bits) - 1
        self.batch: dict[tuple[int, int], tuple] = {}  # digest -> (order, packed facts)
        self.count = 0

    def get(self, wanted: tuple[int, int]) -> bytes | None:
        bits, mask = self.bits, self.mask
        low, high = wanted[0] & mask, wanted[1] & mask
        if not (bits[low >> 3] >> (low & 7) & 1 and bits[high >> 3] >> (high & 7) & 1):
            return None
        found = self.batch.get(wanted)
        if found is not None:
            return found[1]
        row = self.db.execute(self.select, wanted).fetchone()
        return row[0] if row is not None else None

    def put(self, wanted: tuple[int, int], packed: bytes, *, new: bool = True) -> None:
        """Hold an id (new=False: one held already, with new facts)."""
        bits, mask = self.bits, self.mask
        low, high = wanted[0] & mask, wanted[1] & mask
        bits[low >> 3] |= 1 << (low & 7)
        bits[high >> 3] |= 1 << (high & 7)
        if new:
            self.count += 1
            self.budget.spilled += 1
        self.batch[wanted] = (self.count, packed)
        if len(self.batch) >= self.BATCH:
            self.flush()

    def take(self, wanted: tuple[int, int]) -> bytes | None:
        """Remove an id and give its packed facts (None, and nothing removed, if absent)."""
        found = self.get(wanted)
        if found is not None:
            self.count -= 1
            if self.batch.pop(wanted, None) is None:
                delete = f"DELETE FROM {self.name} WHERE h = ? AND g = ?"  # noqa: S608
                self.db.execute(delete, wanted)
        return found

    def flush(self) -> None:
        if not self.batch:
            return
        # In digest order: each insert lands next to the one before, in pages just read.
        self.db.execute("BEGIN")
        self.db.executemany(
            self.insert, [(*digest, *rest) for digest, rest in sorted(self.batch.items())]
        )
        self.db.execute("COMMIT")
        self.batch.clear()

    def values(self):
        """The packed facts in the order the ids came."""
        self.flush()
        for (packed,) in self.db.execute(f"SELECT v FROM {self.name} ORDER BY n"):  # noqa: S608
            yield packed

    def drop(self) -> None:
        if self.budget.db is self.db:
            self.db.execute(f"DROP TABLE {self.name}")
        self.batch = {}


class _Table:
    """What HashSet and _Facts share: the budget, what they took of it, and the spill."""

    budget: Budget
    charged = 0
    spill: _Spill | None = None

    def _charge(self, total: int, old: int = 0) -> bool:
        """Hold `total` bytes of the budget in all, if it has room, and `old` more for the
        arrays a growth replaces (alive beside the new ones until the caller gives them back)."""
        if not self.budget.take(total - self.charged + old):
            return False
        self.charged = total
        return True

    def _start_spill(self) -> None:
        self.spill = self.budget.spill()

    def close(self) -> None:
        """Give the memory back to the budget and drop the spilled ids (a table, once done)."""
        self.budget.give(self.charged)
        self.charged = 0
        if self.spill is not None:
            self.spill.drop()
            self.spill = None

    def __del__(self):
        self.close()


class HashSet(_Table):
    """A set of ids: 24-48 bytes each in memory (a digest's two halves a slot), far less than
    a set of Python objects."""

    SLOT_BYTES = 16

    def __init__(self, budget: Budget):
        self.budget = budget
        self.hashes = array("q", [_EMPTY])  # one slot, never filled: grown on the first add
        self.highs = array("q", [0])
        self.count = 0

    def __contains__(self, key) -> bool:
        wanted = key_digest(key)
        low, high = wanted
        hashes, highs = self.hashes, self.highs
        mask = len(hashes) - 1
        slot = low & mask
        while True:
            found = hashes[slot]
            if found == low and highs[slot] == high:
                return True
            if found == _EMPTY:
                return self.spill is not None and self.spill.get(wanted) is not None
            slot = (slot + 1) & mask

    def add(self, key) -> bool:
        """Add the id; False if it was there already."""
        return self._add_digest(key_digest(key))

    def _add_digest(self, wanted: tuple[int, int]) -> bool:
        low, high = wanted
        hashes, highs = self.hashes, self.highs
        mask = len(hashes) - 1
        slot = low & mask
        while (found := hashes[slot]) != _EMPTY:
            if found == low and highs[slot] == high:
                return False
            slot = (slot + 1) & mask
        if self.spill is None:
            if 3 * (self.count + 1) <= 2 * len(hashes):
                hashes[slot] = low
                highs[slot] = high
                self.count += 1
                return True
            size = max(2 * len(hashes), _START)
            old = self.SLOT_BYTES * len(hashes)
            if self._charge(self.SLOT_BYTES * size, old):
                self.hashes, self.highs, _ = _rehash(hashes, highs, size)
                del hashes, highs  # the old table: freed, so its bytes go back
                self.budget.give(old)
                return self._add_digest(wanted)
            self._start_spill()
        if self.spill.get(wanted) is not None:
            return False
        self.spill.put(wanted, b"")
        return True


def _rehash(hashes: array, highs: array, size: int, rows: array | None = None) -> tuple:
    """The digests (other than removed ones) in a new table of `size` slots, and with `rows`
    the row number of each slot moved along in a new array (else None)."""
    table = array("q", bytes(8 * size))
    table_highs = array("q", bytes(8 * size))
    moved = array(rows.typecode, bytes(rows.itemsize * size)) if rows is not None else None
    mask = size - 1
    for old_slot, low in enumerate(hashes):
        if low in (_EMPTY, _GONE):
            continue
        slot = low & mask
        while table[slot] != _EMPTY:
            slot = (slot + 1) & mask
        table[slot] = low
        table_highs[slot] = highs[old_slot]
        if moved is not None:
            moved[slot] = rows[old_slot]
    return table, table_highs, moved


class _Facts(_Table):
    """Ids -> row numbers 0, 1, 2 ... in the order the ids came; subclasses keep each row's
    facts in dense arrays at that number (ROW_BYTES a row), or packed (pack, unpack) in the
    spill file past the budget."""

    ROW_BYTES = 0
    SLOT_BYTES = 20  # a digest's two halves and a row number
    extra = 0  # bytes held beyond ROW_BYTES a row

    def __init__(self, budget: Budget):
        self.budget = budget
        self.hashes = array("q", [_EMPTY])  # one slot, never filled: grown on the first add
        self.highs = array("q", [0])
        self.rows = array("i", [0])
        self.count = 0  # ids held in memory
        self.added = 0  # rows, removed ids' included
        self.used = 0  # slots taken, removed ids' included

    def __len__(self) -> int:
        return self.count + (self.spill.count if self.spill is not None else 0)

    def __contains__(self, key) -> bool:
        wanted = key_digest(key)
        if self._slot(wanted) >= 0:
            return True
        return self.spill is not None and self.spill.get(wanted) is not None

    def _slot(self, wanted: tuple[int, int]) -> int:
        """The slot in memory of the id with this digest, or -1."""
        low, high = wanted
        hashes, highs = self.hashes, self.highs
        mask = len(hashes) - 1
        slot = low & mask
        while True:
            found = hashes[slot]
            if found == low and highs[slot] == high:
                return slot
            if found == _EMPTY:
                return -1
            slot = (slot + 1) & mask

    def _spilled(self, wanted: tuple[int, int]):
        """The facts about an id not in memory, or None."""
        if self.spill is None:
            return None
        packed = self.spill.get(wanted)
        return self.unpack(packed) if packed is not None else None

    def _add(self, wanted: tuple[int, int], *facts, extra: int = 0) -> bool:
        """Hold an id not held yet, by its digest: True at the next row number in memory (the
        caller appends its facts, and `extra` bytes beyond ROW_BYTES), False in the spill file
        when the budget has no room."""
        if self.spill is None:
            size = len(self.hashes)
            if 3 * (self.used + 1) > 2 * size:
                # Twice the slots; as many when removed ids took the room (they are dropped).
                size = max(2 * size if 3 * self.count >= size else size, _START)
                rows = self.added + 2 * size // 3 - self.count  # rows until the next growth
                old = self.SLOT_BYTES * len(self.hashes)  # alive until replaced
                if self._charge(self.SLOT_BYTES * size + self.ROW_BYTES * rows + self.extra, old):
                    self.hashes, self.highs, self.rows = _rehash(
                        self.hashes, self.highs, size, self.rows
                    )
                    self.budget.give(old)
                    self.used = self.count
                else:
                    self._start_spill()
            if extra and self.spill is None:
                if self._charge(self.charged + extra):
                    self.extra += extra
                else:
                    self._start_spill()
        if self.spill is not None:
            self.spill.put(wanted, self.pack(*facts))
            return False
        hashes = self.hashes
        mask = len(hashes) - 1
        slot = wanted[0] & mask
        while hashes[slot] != _EMPTY:
            slot = (slot + 1) & mask
        hashes[slot] = wanted[0]
        self.highs[slot] = wanted[1]
        self.rows[slot] = self.added
        self.added += 1
        self.count += 1
        self.used += 1
        return True

    def remove(self, key) -> None:
        self._take(key)

    def _take(self, key) -> tuple[int, bytes | None]:
        """Remove an id: (its row number, None) when it was in memory, (-1, its packed facts)
        when it was in the spill file, (-1, None) when absent."""
        wanted = key_digest(key)
        slot = self._slot(wanted)
        if slot >= 0:
            self.hashes[slot] = _GONE
            self.count -= 1
            return self.rows[slot], None
        if self.spill is None:
            return -1, None
        return -1, self.spill.take(wanted)


_USER = struct.Struct("<q")


class UserFacts(_Facts):
    """A user's id in the dump -> the user's primary key."""

    ROW_BYTES = 8
    pack = staticmethod(_USER.pack)

    def __init__(self, budget: Budget):
        super().__init__(budget)
        self.pks = array("q")

    @staticmethod
    def unpack(packed: bytes) -> int:
        return _USER.unpack(packed)[0]

    def get(self, key) -> int | None:
        wanted = key_digest(key)
        slot = self._slot(wanted)
        if slot < 0:
            return self._spilled(wanted)
        return self.pks[self.rows[slot]]

    def __setitem__(self, key, pk: int) -> None:
        wanted = key_digest(key)
        slot = self._slot(wanted)
        if slot >= 0:
            self.pks[self.rows[slot]] = pk
        elif self.spill is not None and self.spill.get(wanted) is not None:
            self.spill.put(wanted, self.pack(pk), new=False)
        elif self._add(wanted, pk):
            self.pks.append(pk)


_PROJECT = struct.Struct("<36sq?")


class ProjectFacts(_Facts):
    """A project's id in the dump -> (its UUID, its owner's pk, whether it is active)."""

    ROW_BYTES = 45

    def __init__(self, budget: Budget):
        super().__init__(budget)
        self.texts = bytearray()
        self.owners = array("q")
        self.active = bytearray()

    @staticmethod
    def pack(pk: KeyUuid, owner: int, active: bool) -> bytes:
        return _PROJECT.pack(pk.text.encode(), owner, active)

    @staticmethod
    def unpack(packed: bytes) -> tuple:
        text, owner, active = _PROJECT.unpack(packed)
        return KeyUuid.of_text(text.decode()), owner, active

    def get(self, key) -> tuple | None:
        wanted = key_digest(key)
        slot = self._slot(wanted)
        if slot < 0:
            return self._spilled(wanted)
        row = self.rows[slot]
        pk = _new(KeyUuid)  # KeyUuid.of_text, written out
        _set_number(pk, None)
        _set_text(pk, self.texts[36 * row : 36 * row + 36].decode())
        return pk, self.owners[row], self.active[row] == 1

    def add(self, key, pk: KeyUuid, owner: int, active: bool) -> None:
        """Facts about a project not held yet."""
        if self._add(key_digest(key), pk, owner, active):
            self.texts += pk.text.encode()
            self.owners.append(owner)
            self.active.append(active)


_PURCHASE = struct.Struct("<q36sq3s")


class PurchaseFacts(_Facts):
    """A purchase's id in the dump -> (buyer pk, project UUID, amount in cents, currency)."""

    ROW_BYTES = 60

    def __init__(self, budget: Budget):
        super().__init__(budget)
        self.buyers = array("q")
        self.projects = bytearray()
        self.cents = array("q")
        self.currencies: list[str] = []  # the same few interned strings

    @staticmethod
    def pack(buyer: int, project: KeyUuid, cents: int, currency: str) -> bytes:
        return _PURCHASE.pack(buyer, project.text.encode(), cents, currency.encode())

    @staticmethod
    def unpack(packed: bytes) -> tuple:
        buyer, project, cents, currency = _PURCHASE.unpack(packed)
        return buyer, KeyUuid.of_text(project.decode()), cents, sys.intern(currency.decode())

    def get(self, key) -> tuple | None:
        wanted = key_digest(key)
        slot = self._slot(wanted)
        if slot < 0:
            return self._spilled(wanted)
        row = self.rows[slot]
        project = KeyUuid.of_text(self.projects[36 * row : 36 * row + 36].decode())
        return self.buyers[row], project, self.cents[row], self.currencies[row]

    def add(self, key, buyer: int, project: KeyUuid, cents: int, currency: str) -> None:
        """Facts about a purchase not held yet (currency: an ISO 4217 code)."""
        if self._add(key_digest(key), buyer, project, cents, currency):
            self.buyers.append(buyer)
            self.projects += project.text.encode()
            self.cents.append(cents)
            self.currencies.append(currency)


_TOTALS = struct.Struct("<qq")


class FileTotals(_Facts):
    """A project's id in the dump -> (files, bytes) of its files accepted so far."""

    ROW_BYTES = 16
    pack = staticmethod(_TOTALS.pack)
    unpack = staticmethod(_TOTALS.unpack)

    def __init__(self, budget: Budget):
        super().__init__(budget)
        self.figures = array("q")  # files and bytes, two numbers a row

    def get(self, key) -> tuple[int, int]:
        wanted = key_digest(key)
        slot = self._slot(wanted)
        if slot < 0:
            return self._spilled(wanted) or (0, 0)
        row = self.rows[slot]
        return self.figures[2 * row], self.figures[2 * row + 1]

    def __setitem__(self, key, figures: tuple[int, int]) -> None:
        wanted = key_digest(key)
        slot = self._slot(wanted)
        if slot >= 0:
            row = self.rows[slot]
            self.figures[2 * row : 2 * row + 2] = array("q", figures)
        elif self.spill is not None and self.spill.get(wanted) is not None:
            self.spill.put(wanted, self.pack(*figures), new=False)
        elif self._add(wanted, *figures):
            self.figures.extend(figures)


class PackedMap(_Facts):
    """Ids -> bytes, read back in the order the ids came (the listings waiting for their
    project): the bytes one after the other in one bytearray, an array of where each row
    ends, and a flag a row for the ones popped. Charged what it holds: the bytes, 9 bytes a
    row (offset and flag) and the table's slots."""

    ROW_BYTES = 9

    def __init__(self, budget: Budget):
        super().__init__(budget)
        self.data = bytearray()
        self.ends = array("q", [0])  # row n is data[ends[n]:ends[n + 1]]
        self.live = bytearray()  # 1 while row n is held, 0 once popped

    @staticmethod
    def pack(packed: bytes) -> bytes:
        return packed

    @staticmethod
    def unpack(packed: bytes) -> bytes:
        return packed

    def add(self, key, packed: bytes) -> None:
        """An id not held yet."""
        if self._add(key_digest(key), packed, extra=len(packed)):
            self.data += packed
            self.ends.append(len(self.data))
            self.live.append(1)

    def pop(self, key) -> bytes | None:
        row, spilled = self._take(key)
        if row < 0:
            return spilled
        self.live[row] = 0
        return bytes(self.data[self.ends[row] : self.ends[row + 1]])

    def values(self):
        """What is held, in the order the ids came: the ones in memory came first."""
        data, ends, live = self.data, self.ends, self.live
        for row in range(self.added):
            if live[row]:
                yield bytes(data[ends[row] : ends[row + 1]])
        if self.spill is not None:
            yield from self.spill.values()

    def close(self) -> None:
        super().close()
        self.extra = 0
        self.data, self.ends, self.live = bytearray(), array("q", [0]), bytearray()
