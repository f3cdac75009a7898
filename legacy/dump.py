"""The old store's dump format (memstorage-v1): its maps, ids, and reading it as a stream."""

import datetime as dt
import gzip
import json
import os
import shutil
import sys
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import ijson

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
    return uuid.uuid5(NAMESPACE, f"{map_name}:{raw_id}")


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


class DumpSource:
    """A dump on disk (plain or gzip), read as often as needed, one map at a time."""

    def __init__(self, path: str):
        self.path = path
        with open(path, "rb") as raw:
            self.gzipped = raw.read(2) == b"\x1f\x8b"

    def open(self):
        if self.gzipped:
            return gzip.open(self.path, "rb")
        return open(self.path, "rb")

    def header(self) -> dict:
        """The top-level scalar fields; stops reading once `format` and `exportedAt` are known."""
        header: dict = {}
        key = None
        try:
            with self.open() as stream:
                events = ijson.parse(stream, use_float=True)
                prefix, event, _value = next(events)
                if event != "start_map":
                    raise DumpError("The dump must be a JSON object.")
                for prefix, event, value in events:
                    if prefix == "" and event == "map_key":
                        key = value
                    elif prefix == key and event in ("string", "number", "boolean", "null"):
                        header[key] = value
                    if "format" in header and "exportedAt" in header:
                        break  # the arrays are read later, map by map
        except (ijson.JSONError, StopIteration, UnicodeDecodeError, OSError, EOFError) as exc:
            raise DumpError(f"The dump is not valid JSON: {exc}") from exc
        return header

    def rows(self, map_name: str) -> Iterator:
        """The rows of one map, in file order, parsed one at a time."""
        try:
            with self.open() as stream:
                yield from ijson.items(stream, f"{map_name}.item", use_float=True)
        except (ijson.JSONError, UnicodeDecodeError, OSError, EOFError) as exc:
            raise DumpError(f"The dump is not valid JSON (in {map_name}): {exc}") from exc


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


class UuidList:
    """UUIDs packed 16 bytes each, read back in chunks."""

    def __init__(self):
        self._data = bytearray()

    def append(self, value: uuid.UUID) -> None:
        self._data += value.bytes

    def __len__(self) -> int:
        return len(self._data) // 16

    def chunks(self, size: int):
        step = 16 * size
        for start in range(0, len(self._data), step):
            block = self._data[start : start + step]
            yield [uuid.UUID(bytes=bytes(block[i : i + 16])) for i in range(0, len(block), 16)]
