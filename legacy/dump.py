"""The old store's dump format (memstorage-v1): its maps, ids, and reading it as a stream."""

import codecs
import datetime as dt
import gzip
import hashlib
import heapq
import json
import marshal
import operator
import os
import re
import shutil
import sys
import tempfile
import uuid
from collections.abc import Iterable, Iterator
from contextlib import contextmanager

FORMAT = "memstorage-v1"
# Fixed forever: non-UUID ids of the old store map to uuid5(NAMESPACE, "<map>:<id>").
NAMESPACE = uuid.UUID("5d0c3f4e-8a61-4b7e-9c2a-6f1e0b7d4a90")

USERS = "users"
PROJECTS = "projects"
PROJECT_FILES = "projectFiles"
MCP_SERVERS = "mcpServers"
CHAT_MESSAGES = "chatMessages"
LISTINGS = "marketplaceProjects"
PURCHASES = "marketplacePurchases"
REVIEWS = "marketplaceReviews"
DOWNLOADS = "marketplaceDownloads"
REVENUE_EVENTS = "revenueEvents"
MAPS = (
    USERS,
    PROJECTS,
    PROJECT_FILES,
    MCP_SERVERS,
    CHAT_MESSAGES,
    LISTINGS,
    PURCHASES,
    REVIEWS,
    DOWNLOADS,
    REVENUE_EVENTS,
)


class DumpError(Exception):
    """The file as a whole cannot be read as a memstorage-v1 dump."""


def legacy_uuid(map_name: str, raw_id: str) -> uuid.UUID:
    """The row's primary key: its id when that is a UUID, else uuid5 of "<map>:<id>"."""
    if len(raw_id) == 36 and raw_id[8] == "-":
        try:
            return uuid.UUID(raw_id)
        except ValueError:
            pass
    return _uuid5(map_name, raw_id)


class KeyUuid(uuid.UUID):
    """A UUID that many rows refer to, kept as its text (a million rows print it); its number
    is worked out when first asked for."""

    __slots__ = ("_number", "text")

    def __init__(self, value: uuid.UUID):
        _set_number(self, value.int)
        _set_text(self, str(value))

    @staticmethod
    def of_text(text: str) -> "KeyUuid":
        """The UUID whose str() is this text."""
        made = _new(KeyUuid)
        _set_number(made, None)
        _set_text(made, text)
        return made

    def __str__(self) -> str:
        return self.text

    def __reduce__(self):  # copy and pickle: uuid.UUID's own way sets `int`
        return KeyUuid.of_text, (self.text,)

    @property
    def is_safe(self) -> uuid.SafeUUID:
        return uuid.SafeUUID.unknown

    @property
    def int(self):  # the field uuid.UUID's methods read
        number = self._number
        if number is None:
            number = int(self.text.replace("-", ""), 16)
            _set_number(self, number)
        return number


_new = object.__new__
_set_number = KeyUuid._number.__set__
_set_text = KeyUuid.text.__set__


_UUID5_PREFIXES: dict[str, "hashlib._Hash"] = {}
_VERSION_5 = (0xF000 << 64, 0x5000 << 64, 0xC000 << 48, 0x8000 << 48)


def _uuid5(map_name: str, raw_id: str) -> uuid.UUID:
    """uuid.uuid5(NAMESPACE, f"{map_name}:{raw_id}"), a third of its time (a million ids)."""
    prefix = _UUID5_PREFIXES.get(map_name)
    if prefix is None:
        prefix = hashlib.sha1(NAMESPACE.bytes + f"{map_name}:".encode(), usedforsecurity=False)
        _UUID5_PREFIXES[map_name] = prefix
    sha = prefix.copy()
    sha.update(raw_id.encode())
    clear_version, version, clear_variant, variant = _VERSION_5
    value = int.from_bytes(sha.digest()[:16], "big") & ~clear_version | version
    value = value & ~clear_variant | variant
    made = object.__new__(uuid.UUID)  # what UUID(int=...) does, without its checks
    object.__setattr__(made, "int", value)
    object.__setattr__(made, "is_safe", uuid.SafeUUID.unknown)
    return made


def parse_timestamp(value) -> dt.datetime:
    """An ISO 8601 string as an aware UTC datetime; no zone means UTC. Raises ValueError."""
    if not isinstance(value, str):
        raise ValueError("must be an ISO 8601 timestamp string")
    moment = dt.datetime.fromisoformat(value)
    if moment.tzinfo is None:
        return moment.replace(tzinfo=dt.UTC)
    return moment.astimezone(dt.UTC)


def format_timestamp(moment: dt.datetime | None) -> str | None:
    if moment is None:
        return None
    return moment.astimezone(dt.UTC).isoformat().replace("+00:00", "Z")


def frozen(value):
    """A JSON value as something hashable and equal for equal JSON."""
    if value:
        return json.dumps(value, sort_keys=True)
    return "{}" if isinstance(value, dict) else "[]"


class _Reader:
    """JSON text read in windows from a byte stream, each value parsed by the json module's C
    scanner: one pass over the file at C speed, without holding more than a window of it."""

    CHUNK = 1 << 20
    # A value parsed this close to the end of the window may have been cut short (a number):
    # read on and parse it again.
    MARGIN = 4096
    SPACE = re.compile(r"[ \t\n\r]*")

    def __init__(self, stream):
        self.stream = stream
        self.decode = codecs.getincrementaldecoder("utf-8")().decode
        self.text = ""
        self.pos = 0
        self.eof = False
        self.scan = json.JSONDecoder(parse_constant=_no_constant).scan_once

    def fill(self) -> bool:
        """Read the next window; False at the end of the file."""
        if self.eof:
            return False
        data = self.stream.read(self.CHUNK)
        self.eof = not data
        self.text = self.text[self.pos :] + self.decode(data, final=self.eof)
        self.pos = 0
        return True

    def peek(self) -> str:
        """The next character that is not white space ("" at the end), not consumed."""
        while True:
            self.pos = self.SPACE.match(self.text, self.pos).end()
            if self.pos < len(self.text):
                return self.text[self.pos]
            if not self.fill():
                return ""

    def take(self) -> str:
        char = self.peek()
        self.pos += 1
        return char

    def value(self):
        self.peek()
        while True:
            try:
                value, end = self.scan(self.text, self.pos)
            except (StopIteration, json.JSONDecodeError) as exc:
                if self.fill():
                    continue
                raise DumpError(f"The dump is not valid JSON: {_reason(exc)}") from exc
            if end > len(self.text) - self.MARGIN and self.fill():
                continue
            self.pos = end
            return value

    def items(self):
        """The values of the array whose "[" was just taken."""
        if self.peek() == "]":
            self.pos += 1
            return
        scan, space, margin = self.scan, self.SPACE.match, self.MARGIN
        while True:
            text = self.text
            try:
                value, end = scan(text, self.pos)
            except (StopIteration, json.JSONDecodeError) as exc:
                if self.fill():
                    self.pos = space(self.text, self.pos).end()
                    continue
                raise DumpError(f"The dump is not valid JSON: {_reason(exc)}") from exc
            if end > len(text) - margin and self.fill():
                continue  # parse it again with what follows
            end = space(text, end).end()
            char = text[end : end + 1]
            if char == ",":
                self.pos = space(text, end + 1).end()
                yield value
            elif char == "]":
                self.pos = end + 1
                yield value
                return
            else:
                self.pos = end
                char = self.take()  # white space longer than the margin, or an error
                if char not in (",", "]"):
                    raise DumpError(f"The dump is not valid JSON: expected , or ] not {char!r}")
                yield value
                if char == "]":
                    return


def _no_constant(name: str):
    raise ValueError(f"{name} is not JSON")


def _reason(exc: Exception) -> str:
    if isinstance(exc, StopIteration):
        return "unexpected end or character"
    return str(exc)


class DumpSource:
    """A dump on disk (plain or gzip), read in one pass, map by map in file order."""

    def __init__(self, path: str):
        self.path = path
        with open(path, "rb") as raw:
            self.gzipped = raw.read(2) == b"\x1f\x8b"
        self.fields: dict = {}  # the top-level scalars read so far (format, exportedAt ...)

    def open(self):
        if self.gzipped:
            return gzip.open(self.path, "rb")
        return open(self.path, "rb")

    def header(self) -> dict:
        """The top-level scalar fields; stops reading once `format` and `exportedAt` are known."""
        arrays = self.arrays()
        try:
            for _name, rows in arrays:
                if "format" in self.fields and "exportedAt" in self.fields:
                    break  # the arrays are read later
                for _row in rows:
                    pass
        finally:
            arrays.close()
        return dict(self.fields)

    def arrays(self) -> Iterator[tuple[str, Iterator]]:
        """(map name, its rows) for each map's array in file order; take the rows before the next.

        Top-level scalars land in `fields` as they are read.
        """
        try:
            with self.open() as stream:
                reader = _Reader(stream)
                if reader.take() != "{":
                    raise DumpError("The dump must be a JSON object.")
                seen: set[str] = set()
                if reader.peek() == "}":
                    reader.pos += 1
                else:
                    yield from self._members(reader, seen)
                if reader.peek() != "":
                    raise DumpError("The dump is not valid JSON: more data after the object")
        except (UnicodeDecodeError, OSError, EOFError) as exc:
            raise DumpError(f"The dump is not valid JSON: {exc}") from exc

    def _members(self, reader: _Reader, seen: set):
        while True:
            if reader.peek() != '"':
                raise DumpError("The dump is not valid JSON: expected a key")
            key = reader.value()
            if reader.take() != ":":
                raise DumpError("The dump is not valid JSON: expected :")
            if key in MAPS and reader.peek() == "[":
                if key in seen:
                    raise DumpError(f"{key} appears twice in the dump")
                seen.add(key)
                reader.pos += 1
                rows = reader.items()
                yield key, rows
                for _row in rows:  # what the caller left unread
                    pass
            else:
                value = reader.value()
                if key in MAPS and value is not None:
                    raise DumpError(f"{key} must be an array")
                if not isinstance(value, dict | list):
                    self.fields[key] = value
            char = reader.take()
            if char == "}":
                return
            if char != ",":
                raise DumpError(f"The dump is not valid JSON: expected , or }} not {char!r}")


class RowSpool:
    """Rows kept in a temporary file until the maps they refer to have been read."""

    BATCH = 1000  # rows per marshal record

    def __init__(self, rows: Iterable):
        self.file = tempfile.TemporaryFile()  # noqa: SIM115 - closed by rows()
        self.count = 0
        batch: list = []
        for row in rows:
            batch.append(row)
            if len(batch) >= self.BATCH:
                self._write_batch(batch)
        if batch:  # all on disk: a sorted run of chat messages is one of many
            self._write_batch(batch)

    def _write_batch(self, batch: list) -> None:
        # Length-prefixed: marshal.load() on a file reads it a few bytes at a time (10x slower).
        data = marshal.dumps(batch)
        self.file.write(len(data).to_bytes(8, "big"))
        self.file.write(data)
        self.count += len(batch)
        batch.clear()

    def rows(self) -> Iterator:
        with self.file:
            self.file.seek(0)
            left = self.count
            while left > 0:
                size = int.from_bytes(self.file.read(8), "big")
                batch = marshal.loads(self.file.read(size))  # noqa: S302 - our own file
                left -= len(batch)
                yield from batch


@contextmanager
def open_dump(path: str):
    """A DumpSource for a path, `-` (standard input, spooled to a temporary file) or a .gz."""
    if path != "-":
        if not os.path.exists(path):
            raise DumpError(f"No such file: {path}")
        yield DumpSource(path)
        return
    with tempfile.NamedTemporaryFile(prefix="legacy-dump-", suffix=".json") as spool:
        shutil.copyfileobj(sys.stdin.buffer, spool, length=1024 * 1024)
        spool.flush()
        yield DumpSource(spool.name)


class SortedSpool:
    """Rows kept in temporary files and read back in the order of their sort keys (stable):
    an external merge sort, so memory holds one run of rows, not all of them."""

    RUN = 100_000  # rows sorted in memory at a time, at most
    FAN_IN = 32  # runs merged at once; each holds a batch of rows in memory meanwhile

    def __init__(self, run: int = RUN):
        self.run_rows = min(run, self.RUN)
        self.runs: list[RowSpool] = []
        self.run: list[tuple] = []

    def add(self, sort_key, row) -> None:
        self.run.append((sort_key, row))
        if len(self.run) >= self.run_rows:
            self._write_run()

    def _write_run(self) -> None:
        self.run.sort(key=_first)  # stable: equal keys keep the order they came in
        self.runs.append(RowSpool(self.run))
        self.run = []

    def rows(self) -> Iterator:
        if self.run:
            self._write_run()
        runs, self.runs = self.runs, []
        # Stable too: of equal keys, the earlier run's row comes first. Past FAN_IN runs,
        # each FAN_IN runs in a row are merged into one first, which keeps that order.
        while len(runs) > self.FAN_IN:
            runs = [
                RowSpool(heapq.merge(*(run.rows() for run in group), key=_first))
                for group in (runs[i : i + self.FAN_IN] for i in range(0, len(runs), self.FAN_IN))
            ]
        for _sort_key, row in heapq.merge(*(run.rows() for run in runs), key=_first):
            yield row


_first = operator.itemgetter(0)


class KeySpool:
    """Keys appended one at a time and read back in chunks, kept in a temporary file a chunk
    at a time: the keys the verification looks up when a table held rows before. `encode`
    makes a key something marshal writes (a UUID its 16 bytes), `decode` makes it back."""

    def __init__(self, chunk: int, encode=None, decode=None):
        self.chunk = chunk
        self.encode, self.decode = encode, decode
        self.file = None
        self.batch: list = []

    def append(self, key) -> None:
        self.batch.append(key if self.encode is None else self.encode(key))
        if len(self.batch) >= self.chunk:
            self._write_batch()

    def _write_batch(self) -> None:
        if self.file is None:
            self.file = tempfile.TemporaryFile()  # noqa: SIM115 - closed by chunks()
        data = marshal.dumps(self.batch)
        self.file.write(len(data).to_bytes(8, "big"))
        self.file.write(data)
        self.batch.clear()

    def chunks(self) -> Iterator[list]:
        """The keys in chunks of at most `chunk`, once."""
        if self.file is not None:
            with self.file:
                if self.batch:
                    self._write_batch()
                self.file.seek(0)
                while size := int.from_bytes(self.file.read(8), "big"):
                    batch = marshal.loads(self.file.read(size))  # noqa: S302 - our own file
                    yield batch if self.decode is None else [self.decode(k) for k in batch]
        elif self.batch:
            yield self.batch if self.decode is None else [self.decode(k) for k in self.batch]


def uuid_bytes(value: uuid.UUID) -> bytes:
    return value.bytes


def uuid_of_bytes(value: bytes) -> uuid.UUID:
    return uuid.UUID(bytes=value)
