"""Import of the old store's dump: check every row, write in one transaction, verify.

The dump is read map by map (each a streaming pass over the file) in the order of the
references between maps, so a row is checked against rows already accepted. Only compact
facts about the rows other maps refer to stay in memory (legacy.compact); the rows
themselves go to the database in batches.
"""

import datetime as dt
import gc
import json
import marshal
import re
import secrets
import sys
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from decimal import Decimal
from typing import NamedTuple

from django.contrib.auth import get_user_model
from django.contrib.auth.hashers import UNUSABLE_PASSWORD_PREFIX
from django.core.exceptions import ValidationError
from django.core.validators import EmailValidator, URLValidator
from django.db import IntegrityError, connection, transaction
from django.db.models.functions import Lower

from accounts.services import USERNAME_CHARACTERS, username_clean, username_key
from chat.models import MAX_CONTENT_LENGTH, MAX_METADATA_BYTES, ChatMessage
from config.errors import Invalid
from legacy import dump
from legacy.bulk import Background, drop_for_load, restore_after_load, search_vector_sql
from legacy.canonical import DIGEST_SQL, RowText, digest
from legacy.compact import (
    Budget,
    FileTotals,
    HashSet,
    PackedMap,
    ProjectFacts,
    PurchaseFacts,
    UserFacts,
)
from legacy.dump import (
    DumpError,
    DumpSource,
    KeySpool,
    KeyUuid,
    RowSpool,
    SortedSpool,
    legacy_uuid,
    uuid_bytes,
    uuid_of_bytes,
)
from legacy.rows import RowCheck, ref_key
from legacy.writer import copy_lines, insert_rows, reset_sequence, sqlite_value, update_rows
from marketplace.generations import LISTINGS, STATS, cache_bump_on_commit
from marketplace.limits import (
    RATING_MAX,
    RATING_MIN,
    REVIEW_BODY_MAX_LENGTH,
    REVIEW_TITLE_MAX_LENGTH,
)
from marketplace.models import Download, Purchase, RevenueEvent, Review
from marketplace.services import split_amount
from mcp_servers.models import McpServer, validate_credential_spec
from mcp_servers.services import mcp_server_slug
from projects.models import (
    MAX_DESCRIPTION,
    MAX_FILE_BYTES,
    MAX_FILES_PER_PROJECT,
    MAX_PRICE,
    MAX_PROJECT_BYTES,
    NAME_MAX_LENGTH,
    Project,
    ProjectFile,
)
from projects.services import project_refresh_search_vector
from projects.validation import normalize_file_path, normalize_tags, validate_currency

User = get_user_model()
ZERO = Decimal("0.00")
LOOKUP_CHUNK = 5000
# Bytes the tables of ids and facts may hold in memory; past it they spill to disk
# (legacy.compact).
MB = 1024 * 1024
DEFAULT_MEMORY_BUDGET = 128 * MB
CHAT_RUN_ROW_BYTES = 400  # a chat message's line while its run is sorted, about
TRANSPORTS = {"http": "streamable_http", "streamable_http": "streamable_http", "sse": "sse"}
TRANSPORTS["stdio"] = "stdio"
# The importer's wording ("username: may hold only ...") for the account service's messages.
_USERNAME_REASONS = {USERNAME_CHARACTERS: "may hold only letters, digits and @.+-_"}
SLUG_RE = re.compile(r"^[a-z0-9]+(?:-[a-z0-9]+)*$")
_email_validator = EmailValidator()
_url_validator = URLValidator(schemes=["http", "https"])

# The key fields of each map, in the order of the tuples the import builds and the checksum
# reads back; the first one is the key the rows are found by.
FIELDS = {
    dump.USERS: ("username", "email", "is_staff", "date_joined"),
    dump.PROJECTS: ("id", "owner_id", "name", "description", "status", "created_at", "updated_at"),
    dump.LISTINGS: ("id", "is_published", "published_at", "price", "currency", "category", "tags"),
    dump.PROJECT_FILES: ("project_id", "path", "content"),
    dump.MCP_SERVERS: (
        "id",
        "name",
        "description",
        "transport",
        "url",
        "command",
        "args",
        "credential_spec",
        "status",
        "deleted_at",
        "created_at",
    ),
    dump.CHAT_MESSAGES: (
        "legacy_id",
        "owner_id",
        "project_id",
        "role",
        "content",
        "metadata",
        "created_at",
    ),
    dump.PURCHASES: (
        "id",
        "buyer_id",
        "project_id",
        "amount",
        "currency",
        "status",
        "created_at",
        "refunded_at",
    ),
    dump.REVIEWS: ("id", "author_id", "project_id", "rating", "title", "body", "created_at"),
    dump.DOWNLOADS: ("id", "user_id", "project_id", "created_at"),
    dump.REVENUE_EVENTS: (
        "id",
        "kind",
        "project_id",
        "seller_id",
        "buyer_id",
        "purchase_id",
        "gross",
        "platform_fee",
        "seller_net",
        "currency",
        "metadata",
        "created_at",
    ),
}
MODELS = {
    dump.USERS: User,
    dump.PROJECTS: Project,
    dump.LISTINGS: Project,
    dump.PROJECT_FILES: ProjectFile,
    dump.MCP_SERVERS: McpServer,
    dump.CHAT_MESSAGES: ChatMessage,
    dump.PURCHASES: Purchase,
    dump.REVIEWS: Review,
    dump.DOWNLOADS: Download,
    dump.REVENUE_EVENTS: RevenueEvent,
}
LISTING_DEFAULTS = (False, None, ZERO, "USD", Project.Category.OTHER.value, [])
# Tables loaded without their secondary indexes and foreign keys when empty (legacy.bulk).
BULK_LOADED = {Project, ProjectFile, ChatMessage, Purchase, Review, Download, RevenueEvent}
ROW_TEXT = {name: RowText(MODELS[name], FIELDS[name]) for name in dump.MAPS}
# The maps each map refers to: it is imported once they are. The file is read once; a map
# that comes before what it refers to waits in a temporary file.
DEPENDS = {
    dump.USERS: (),
    dump.MCP_SERVERS: (),
    dump.LISTINGS: (),
    dump.PROJECTS: (dump.USERS, dump.LISTINGS),
    dump.PROJECT_FILES: (dump.PROJECTS,),
    dump.PURCHASES: (dump.USERS, dump.PROJECTS),
    dump.REVIEWS: (dump.USERS, dump.PROJECTS),
    dump.DOWNLOADS: (dump.USERS, dump.PROJECTS),
    dump.REVENUE_EVENTS: (dump.USERS, dump.PROJECTS, dump.PURCHASES),
    # Only users and projects, but last: see _finish_others_in_background.
    dump.CHAT_MESSAGES: tuple(name for name in dump.MAPS if name != dump.CHAT_MESSAGES),
}
# Choices as plain tuples: TextChoices.values builds a new list on every call.
CATEGORIES = tuple(Project.Category.values)
PROJECT_STATUSES = tuple(Project.Status.values)
PURCHASE_STATUSES = tuple(Purchase.Status.values)
REVENUE_KINDS = tuple(RevenueEvent.Kind.values)
UUID_KEYED = set(dump.MAPS) - {dump.USERS, dump.PROJECT_FILES}
# The events a purchase has at most one of each kind (revenue_one_event_per_purchase_kind).
PER_PURCHASE_EVENTS = RevenueEvent.objects.filter(kind__in=("purchase", "refund"))


class Problem(NamedTuple):
    map: str
    ref: object  # the row's own id, or its index in the array for rows without one
    index: int
    errors: list  # [(field, reason)]
    row: object


class ImportFailed(Exception):
    """Strict mode found invalid rows, or the verification found a difference."""


@dataclass
class MapStats:
    name: str
    read: int = 0
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    rejected: int = 0
    # What was accepted, to verify against the database afterwards: the sum of each row's
    # digest (legacy.canonical), and the keys when the table holds other rows too.
    accepted: int = 0
    checksum: int = 0
    keys: object = None

    def keep_keys(self) -> None:
        if self.name in UUID_KEYED:
            self.keys = KeySpool(LOOKUP_CHUNK, uuid_bytes, uuid_of_bytes)
        elif self.name == dump.PROJECT_FILES:  # (project, path)
            self.keys = KeySpool(LOOKUP_CHUNK, _file_key_bytes, _file_key_of_bytes)
        else:  # usernames
            self.keys = KeySpool(LOOKUP_CHUNK)

    def accept(self, values: tuple) -> str:
        """Count the row in; its line of key fields (COPY text)."""
        line = ROW_TEXT[self.name].line(values)
        self.accepted += 1
        self.checksum += digest(line)
        if self.keys is not None:
            self.keys.append(values[:2] if self.name == dump.PROJECT_FILES else values[0])
        return line


def _file_key_bytes(key: tuple) -> tuple:
    return key[0].bytes, key[1]


def _file_key_of_bytes(key: tuple) -> tuple:
    return uuid_of_bytes(key[0]), key[1]


def where_in(queryset, column: str, keys: list):
    """`column IN keys`; on PostgreSQL as `= ANY(array)`, one parameter however many keys."""
    if connection.vendor == "postgresql":
        table = connection.ops.quote_name(queryset.model._meta.db_table)
        return queryset.extra(  # noqa: S610 - column names come from FIELDS, keys are a param
            where=[f"{table}.{connection.ops.quote_name(column)} = ANY(%s)"], params=[keys]
        )
    return queryset.filter(**{f"{column}__in": keys})


def _chunks(items: list, size: int = LOOKUP_CHUNK) -> Iterable[list]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def _extra_defaults(model, columns: Iterable[str]) -> tuple[list[str], list]:
    """NOT NULL columns the import does not set, with their model defaults."""
    names, values = [], []
    taken = set(columns)
    for model_field in model._meta.concrete_fields:
        if model_field.column in taken or model_field.null or model_field.primary_key:
            continue
        names.append(model_field.column)
        values.append(model_field.get_default())
    return names, values


class LegacyImport:
    def __init__(
        self,
        source: DumpSource,
        *,
        skip_invalid: bool = False,
        batch_size: int = 5000,
        memory_budget: float = DEFAULT_MEMORY_BUDGET,
        on_problem: Callable[[Problem], None] = lambda problem: None,
        progress: Callable[[str], object] | None = None,
        log: Callable[[str], None] = lambda message: None,
    ):
        self.source = source
        self.skip_invalid = skip_invalid
        self.batch_size = batch_size
        self.on_problem = on_problem
        self.progress = progress
        self.log = log
        self.stats = {name: MapStats(name) for name in dump.MAPS}
        self.problem_count = 0
        # Compact facts about accepted rows that later maps refer to, within the budget.
        self.memory = Budget(memory_budget)
        self.users = UserFacts(self.memory)
        self.projects = ProjectFacts(self.memory)
        self.purchases = PurchaseFacts(self.memory)
        self.listings = PackedMap(self.memory)  # project's legacy id -> marshal of its row
        self.rejected = {
            name: HashSet(self.memory) for name in (dump.USERS, dump.PROJECTS, dump.PURCHASES)
        }
        self.changed_projects = 0
        self.had_rows: dict[str, bool] = {}
        # Columns written on insert only, after the key fields.
        self.extra_columns = {
            dump.USERS: ("password",),
            dump.CHAT_MESSAGES: ("id",),
            dump.REVIEWS: ("updated_at",),
            dump.MCP_SERVERS: ("slug", "updated_at"),
        }

    # ------------------------------------------------------------------ driver

    @property
    def writing(self) -> bool:
        """Strict mode stops writing at the first invalid row (the transaction rolls back)."""
        return self.skip_invalid or self.problem_count == 0

    def run(self, *, dry_run: bool = False) -> dict[str, MapStats]:
        header = self.source.header()
        if header.get("format") != dump.FORMAT:
            raise DumpError(
                f"format must be {dump.FORMAT!r}, not {str(header.get('format'))[:40]!r}."
            )
        try:
            self.exported_at = dump.parse_timestamp(header.get("exportedAt"))
        except ValueError as exc:
            raise DumpError("exportedAt must be an ISO 8601 timestamp.") from exc
        # The import makes millions of objects and frees them by reference counting; the
        # cycle collector, run every few hundred allocations, would walk them all again and
        # again (a fifth of the time).
        collecting = gc.isenabled()
        gc.disable()
        try:
            self._run(dry_run=dry_run)
        except IntegrityError as exc:
            raise ImportFailed(
                "A row of the dump conflicts with a row already in the database that is not "
                f"in the dump; nothing was written. The database says: {exc}"
            ) from exc
        finally:
            if collecting:
                gc.enable()
            self.memory.close()  # deletes the spill file
        return self.stats

    def _run(self, *, dry_run: bool) -> None:
        with transaction.atomic():
            self.had_rows = {name: model.objects.exists() for name, model in MODELS.items()}
            for name, stats in self.stats.items():
                if self.had_rows[name] or name == dump.LISTINGS:
                    stats.keep_keys()
            self.restore = []
            if connection.vendor == "postgresql":
                self.restore = drop_for_load(
                    [
                        model._meta.db_table
                        for name, model in MODELS.items()
                        if model in BULK_LOADED and not self.had_rows[name]
                    ]
                )
            self.finishing = None
            self.import_maps()
            memory = self.memory
            self.log(
                f"ids and facts: at most {memory.most / MB:,.1f} MB in memory (budget "
                f"{memory.limit / MB:,.1f} MB), {memory.spilled:,} ids spilled to disk"
            )
            if not self.writing:
                raise ImportFailed(
                    f"{self.problem_count} invalid rows; nothing was written. "
                    "Fix the dump, or import the valid rows with --skip-invalid."
                )
            if self.finishing is None:
                if self.changed_projects and not self.had_rows[dump.PROJECTS]:
                    self._timed("search vectors", project_refresh_search_vector)
                self._timed("counters recomputed", self.refresh_counters)
            restore = [statement for _, statement in self.restore]
            self._timed("indexes and foreign keys created", lambda: restore_after_load(restore))
            self._timed("verified", self.verify)
            # Cached listing counts and stats were computed from the rows before the import.
            cache_bump_on_commit(LISTINGS, STATS)
            if dry_run:
                transaction.set_rollback(True)
            started = time.monotonic()
        finished = "rolled back" if dry_run else "committed"
        self.log(f"{finished} in {time.monotonic() - started:.1f} s")

    def import_maps(self) -> None:
        """Read the file once; import each map as soon as the maps it refers to are in."""
        steps = {
            dump.USERS: self.import_users,
            dump.MCP_SERVERS: self.import_mcp_servers,
            dump.LISTINGS: self.collect_listings,
            dump.PROJECTS: self.import_projects,
            dump.PROJECT_FILES: self.import_files,
            dump.PURCHASES: self.import_purchases,
            dump.REVIEWS: self.import_reviews,
            dump.DOWNLOADS: self.import_downloads,
            dump.REVENUE_EVENTS: self.import_revenue_events,
            dump.CHAT_MESSAGES: self.import_chat_messages,
        }
        done: set[str] = set()
        waiting: dict[str, RowSpool] = {}

        def step(name: str, rows) -> None:
            if name == dump.CHAT_MESSAGES:
                self._finish_others_in_background()
            try:
                steps[name](self._rows(name, rows))
            except BaseException:
                if self.finishing is not None:
                    self.finishing.close()  # the connection is needed to roll back
                raise
            done.add(name)
            if name == dump.REVENUE_EVENTS:
                self.purchases.close()  # nothing else refers to purchases
                self.purchases = PurchaseFacts(self.memory)

        def ready(name: str) -> bool:
            return all(dependency in done for dependency in DEPENDS[name])

        for name, rows in self.source.arrays():
            if not ready(name):
                waiting[name] = RowSpool(rows)
                continue
            step(name, rows)
            while ready_now := [n for n in waiting if ready(n)]:
                step(ready_now[0], waiting.pop(ready_now[0]).rows())
        # Maps missing from the file are empty; the rest in the order of their references.
        for name in DEPENDS:
            if name not in done:
                step(name, waiting.pop(name).rows() if name in waiting else ())

    def _finish_others_in_background(self) -> None:
        """Chat messages come last and are checked without the database: meanwhile the
        database refreshes search vectors and counters and creates the other tables'
        indexes and foreign keys, on the other core."""
        if not (
            connection.vendor == "postgresql"
            and self.writing
            and not self.had_rows[dump.CHAT_MESSAGES]
        ):
            return
        chat_table = ChatMessage._meta.db_table
        statements = []
        if self.changed_projects and not self.had_rows[dump.PROJECTS]:
            statements.append(search_vector_sql())
        statements += self.counters_sql()
        statements += [statement for table, statement in self.restore if table != chat_table]
        self.restore = [
            (table, statement) for table, statement in self.restore if table == chat_table
        ]
        self.finishing = Background(statements)

    def _timed(self, what: str, step: Callable) -> None:
        started = time.monotonic()
        step()
        self.log(f"{what} in {time.monotonic() - started:.1f} s")

    def _rows(self, map_name: str, rows):
        stats = self.stats[map_name]
        bar = self.progress(map_name) if self.progress else None
        for index, row in enumerate(rows):
            stats.read += 1
            if bar is not None and index % 1000 == 999:
                bar.update(1000)
            yield index, row
        if bar is not None:
            bar.update(stats.read % 1000)
            bar.close()

    def reject(self, map_name: str, index: int, row, errors: list) -> None:
        self.stats[map_name].rejected += 1
        self.problem_count += 1
        own_id = row.get("id") if isinstance(row, dict) and map_name != dump.PROJECT_FILES else None
        ref = own_id if isinstance(own_id, str | int) and own_id != "" else index
        self.on_problem(Problem(map_name, ref, index, errors, row))

    def _reference(self, check: RowCheck, key: str, target: str, facts, *, required=True):
        """The facts about the referenced row, or None with the problem recorded."""
        ref = check.ref(key, required=required)
        if ref is None:
            return None
        found = facts.get(ref)
        if found is None:
            if ref in self.rejected[target]:
                check.fail(key, f"refers to {target} row {ref!r}, which is invalid")
            else:
                check.fail(key, f"refers to no row of {target}: {ref!r}")
        return found

    def _upsert(
        self, map_name: str, records: list, *, extra: Callable | None = None, insert=True
    ) -> list:
        """Insert new rows and update changed ones; returns the records that changed.

        insert=False leaves the new rows to the caller and returns only them.
        """
        stats = self.stats[map_name]
        model = MODELS[map_name]
        names = FIELDS[map_name]
        existing = {}
        if self.had_rows[map_name]:
            for chunk in _chunks([record[0] for record in records]):
                for values in where_in(model.objects, names[0], chunk).values_list(*names):
                    existing[values[0]] = values
        inserts, lines, updates, changed = [], [], [], []
        for record in records:
            line = stats.accept(record)
            old = existing.get(record[0])
            if old is None:
                stats.created += 1
                inserts.append(record + extra(record) if extra else record)
                lines.append(line)
                changed.append(record)
            elif old == record:
                stats.unchanged += 1
            else:
                stats.updated += 1
                updates.append((*record[1:], record[0]))
                changed.append(record)
        update_rows(model, names[0], list(names[1:]), updates)
        if not insert:
            return inserts
        columns = list(names) + list(self.extra_columns.get(map_name, ()))
        defaults_columns, defaults = _extra_defaults(model, columns)
        if defaults:
            inserts = [(*row, *defaults) for row in inserts]
        insert_rows(model, columns + defaults_columns, inserts, lines=lines)
        return changed

    # ------------------------------------------------------------------ users

    def import_users(self, rows) -> None:
        name = dump.USERS
        usernames = HashSet(self.memory)
        pending: list[tuple] = []  # (legacy key, record)
        placeholder = 0
        for index, row in rows:
            check = RowCheck(row)
            key = check.ref("id")
            username = check.text("username", required=True, max_length=150, min_length=1)
            if username:
                try:  # the account service's rule: NFKC first, no mixed-script confusables
                    username = username_clean(username)
                except Invalid as exc:
                    check.fail("username", _USERNAME_REASONS.get(exc.message, exc.message))
                    username = None
            email = check.text("email", max_length=254)
            if email:
                try:
                    _email_validator(email)
                except ValidationError:
                    check.fail("email", "is not an email address")
            is_staff = check.boolean("isAdmin", False)
            joined = check.timestamp("createdAt", self.exported_at)
            if key is not None and (key in self.users or key in self.rejected[name]):
                check.fail("id", "appears twice in users (the first row is kept)")
            elif username is not None and username_key(username) in usernames:
                check.fail("username", "is taken by an earlier row of users")
            if check.errors:
                if key is not None and key not in self.users:
                    self.rejected[name].add(key)
                self.reject(name, index, row, check.errors)
                continue
            usernames.add(username_key(username))
            placeholder -= 1
            self.users[key] = placeholder
            pending.append((key, (username, email, is_staff, joined)))
            if len(pending) >= self.batch_size:
                self._flush_users(pending)
        self._flush_users(pending)

    def _flush_users(self, pending: list) -> None:
        if self.writing and pending:
            if self.had_rows[dump.USERS]:
                self._match_existing_spelling(pending)
            self._upsert(
                dump.USERS,
                [record for _, record in pending],
                extra=lambda record: (UNUSABLE_PASSWORD_PREFIX + secrets.token_urlsafe(30),),
            )
            usernames = [record[0] for _, record in pending]
            pks = dict(where_in(User.objects, "username", usernames).values_list("username", "id"))
            for key, record in pending:
                self.users[key] = pks[record[0]]
        pending.clear()

    @staticmethod
    def _match_existing_spelling(pending: list) -> None:
        """A name already in the database in another case is that user (one person, one
        name, as user_create has it): the row takes the stored spelling and updates them."""
        keys = list({username_key(record[0]) for _, record in pending})
        stored = {}
        for chunk in _chunks(keys):
            stored.update(
                User.objects.annotate(key=Lower("username"))
                .filter(key__in=chunk)
                .values_list("key", "username")
            )
        for i, (key, record) in enumerate(pending):
            spelling = stored.get(username_key(record[0]))
            if spelling is not None and spelling != record[0]:
                pending[i] = (key, (spelling, *record[1:]))

    # ------------------------------------------------------------------ listings, projects

    def collect_listings(self, rows) -> None:
        """Marketplace rows by project, checked on their own; merged as projects are read."""
        name = dump.LISTINGS
        listings = PackedMap(self.memory)
        seen_ids = HashSet(self.memory)
        for index, row in rows:
            check = RowCheck(row)
            key = check.ref("id")
            project = check.ref("projectId")
            price = check.money("price", ZERO, minimum=ZERO, maximum=MAX_PRICE)
            currency = self._currency(check, "USD")
            category = check.choice("category", CATEGORIES, "other")
            tags = check.row.get("tags")
            if tags is None:
                tags = []
            else:
                try:
                    tags = normalize_tags(tags)
                except ValidationError as exc:
                    check.fail("tags", exc.messages[0])
            published = check.boolean("isPublished", False)
            published_at = check.timestamp("publishedAt", None)
            if published and published_at is None and "publishedAt" not in check.row:
                published_at = self.exported_at
            if key is not None and not seen_ids.add(key):
                check.fail("id", "appears twice in marketplaceProjects (the first is kept)")
            elif project is not None and project in listings:
                check.fail(
                    "projectId",
                    f"project {project!r} already has a marketplace row (the first is kept)",
                )
            if check.errors:
                self.reject(name, index, row, check.errors)
                continue
            packed = marshal.dumps(
                (
                    index,
                    row["id"],
                    project,
                    published,
                    published_at.isoformat() if published_at is not None else None,
                    str(price),
                    currency,
                    category,
                    tags,
                )
            )
            listings.add(project, packed)
        self.listings = listings

    @staticmethod
    def _listing(packed: bytes | None) -> tuple | None:
        """A listing kept by collect_listings as (index, id, project id, values), or None."""
        if packed is None:
            return None
        values = marshal.loads(packed)  # noqa: S302 - bytes this import made
        index, ref, project, published, published_at, price, currency, category, tags = values
        if published_at is not None:
            published_at = dt.datetime.fromisoformat(published_at)
        values = (published, published_at, Decimal(price), currency, category, tags)
        return index, ref, project, values

    def _currency(self, check: RowCheck, default: str) -> str | None:
        value = check.row.get("currency")
        if value is None:
            return default
        if not isinstance(value, str):
            check.fail("currency", "must be a string")
            return None
        value = value.upper()
        try:
            validate_currency(value)
        except ValidationError:
            check.fail("currency", f"is not an ISO 4217 currency code: {value[:10]!r}")
            return None
        return sys.intern(value)  # one string per code, not one per purchase

    def import_projects(self, rows) -> None:
        name = dump.PROJECTS
        listings, self.listings = self.listings, None  # freed when the projects are in
        pending: list[tuple] = []
        for index, row in rows:
            check = RowCheck(row)
            key = check.ref("id")
            owner = self._reference(check, "userId", dump.USERS, self.users)
            title = check.text(
                "name", required=True, max_length=NAME_MAX_LENGTH, min_length=1, strip=True
            )
            description = check.text("description", max_length=MAX_DESCRIPTION)
            status = check.choice("status", PROJECT_STATUSES, "active")
            created = check.timestamp("createdAt", self.exported_at)
            updated = check.timestamp("updatedAt", created)
            if key is not None and (key in self.projects or key in self.rejected[name]):
                check.fail("id", "appears twice in projects (the first row is kept)")
                key = None  # the first row keeps the id
            listing = self._listing(listings.pop(key)) if key is not None else None
            if check.errors:
                if key is not None:
                    self.rejected[name].add(key)
                self.reject(name, index, row, check.errors)
                if listing is not None:
                    self._reject_listing(
                        listing, "projectId", f"refers to projects row {key!r}, which is invalid"
                    )
                continue
            pk = KeyUuid(legacy_uuid(name, key))
            if listing is not None and listing[3][0] and status != "active":
                self._reject_listing(
                    listing,
                    "isPublished",
                    "a listing can only be published while its project is active",
                )
                listing = None
            self.projects.add(key, pk, owner, status == "active")
            pending.append(
                (
                    (pk, owner, title, description, status, created, updated),
                    listing[3] if listing is not None else None,
                )
            )
            if len(pending) >= self.batch_size:
                self._flush_projects(pending)
        self._flush_projects(pending)
        for packed in listings.values():
            listing = self._listing(packed)
            project = listing[2]
            reason = (
                f"refers to projects row {project!r}, which is invalid"
                if project in self.rejected[name]
                else f"refers to no row of projects: {project!r}"
            )
            self._reject_listing(listing, "projectId", reason)

    def _reject_listing(self, listing: tuple, field_name: str, reason: str) -> None:
        index, ref, _, _ = listing
        stats = self.stats[dump.LISTINGS]
        stats.rejected += 1
        self.problem_count += 1
        self.on_problem(Problem(dump.LISTINGS, ref, index, [(field_name, reason)], None))

    def _flush_projects(self, pending: list) -> None:
        if not (self.writing and pending):
            pending.clear()
            return
        projects, listings = self.stats[dump.PROJECTS], self.stats[dump.LISTINGS]
        names = FIELDS[dump.PROJECTS] + FIELDS[dump.LISTINGS][1:]
        existing = {}
        if self.had_rows[dump.PROJECTS]:
            for chunk in _chunks([record[0] for record, _ in pending]):
                for values in where_in(Project.objects, "id", chunk).values_list(*names):
                    existing[values[0]] = values
        inserts, lines, updates, changed = [], [], [], []
        for record, listing in pending:
            line = projects.accept(record)
            if listing is not None:
                listings.accept((record[0], *listing))
            old = existing.get(record[0])
            if old is None:
                projects.created += 1
                if listing is not None:
                    listings.created += 1
                row = record + (listing or LISTING_DEFAULTS)
                inserts.append(row)
                lines.append(line)
                changed.append(record[0])
            else:
                old_record, old_listing = old[:7], old[7:]
                new_listing = listing if listing is not None else old_listing
                if record[4] != "active":
                    new_listing = (False, *new_listing[1:])
                project_changed = old_record != record
                listing_changed = old_listing != new_listing
                if project_changed or (listing is None and listing_changed):
                    projects.updated += 1
                else:
                    projects.unchanged += 1
                if listing is not None:
                    if listing_changed:
                        listings.updated += 1
                    else:
                        listings.unchanged += 1
                if project_changed or listing_changed:
                    row = record + new_listing
                    updates.append((*row[1:], row[0]))
                    changed.append(record[0])
        columns = list(names)
        defaults_columns, defaults = _extra_defaults(Project, columns)
        insert_rows(
            Project,
            columns + defaults_columns,
            [(*row, *defaults) for row in inserts],
            lines=lines,
        )
        update_rows(Project, "id", columns[1:], updates)
        if self.had_rows[dump.PROJECTS]:
            project_refresh_search_vector(project_ids=changed)
        # else all at once at the end: every project is new
        self.changed_projects += len(changed)
        pending.clear()

    # ------------------------------------------------------------------ files, servers

    def import_files(self, rows) -> None:
        name = dump.PROJECT_FILES
        seen = HashSet(self.memory)
        totals = FileTotals(self.memory)
        pending: list[tuple] = []
        for index, row in rows:
            check = RowCheck(row)
            project = self._reference(check, "projectId", dump.PROJECTS, self.projects)
            project_key = ref_key(check.row.get("projectId"))
            path = check.row.get("path")
            if path is None:
                check.fail("path", "is required")
            else:
                try:
                    path = normalize_file_path(path)
                except ValidationError as exc:
                    check.fail("path", exc.messages[0])
                    path = None
            content = check.text("content", required=True)
            size = len(content.encode()) if content is not None else 0
            if size > MAX_FILE_BYTES:
                check.fail("content", f"must be at most {MAX_FILE_BYTES // 1024} KiB")
            if project is not None and path is not None:
                if (project_key, path) in seen:
                    check.fail("path", f"{path!r} appears twice in this project (first kept)")
                else:
                    count, total = totals.get(project_key)
                    if count + 1 > MAX_FILES_PER_PROJECT:
                        check.fail("projectId", f"more than {MAX_FILES_PER_PROJECT} files")
                    elif total + size > MAX_PROJECT_BYTES:
                        check.fail("content", "the project's files exceed 20 MiB")
            if check.errors:
                self.reject(name, index, row, check.errors)
                continue
            seen.add((project_key, path))
            count, total = totals.get(project_key)
            totals[project_key] = (count + 1, total + size)
            pending.append((project[0], path, content))
            if len(pending) >= self.batch_size:
                self._flush_files(pending)
        self._flush_files(pending)

    def _flush_files(self, pending: list) -> None:
        if not (self.writing and pending):
            pending.clear()
            return
        stats = self.stats[dump.PROJECT_FILES]
        existing = {}
        if self.had_rows[dump.PROJECT_FILES]:
            for chunk in _chunks(list({record[0] for record in pending})):
                for pk, project, path, content in where_in(
                    ProjectFile.objects, "project_id", chunk
                ).values_list("id", "project_id", "path", "content"):
                    existing[(project, path)] = (pk, content)
        stamp = self.exported_at
        inserts, lines, updates = [], [], []
        for project, path, content in pending:
            line = stats.accept((project, path, content))
            size = len(content.encode())
            old = existing.get((project, path))
            if old is None:
                stats.created += 1
                inserts.append((project, path, content, size, stamp, stamp))
                lines.append(line)
            elif old[1] == content:
                stats.unchanged += 1
            else:
                stats.updated += 1
                updates.append((content, size, stamp, old[0]))
        insert_rows(
            ProjectFile,
            ["project_id", "path", "content", "size", "created_at", "updated_at"],
            inserts,
            lines=lines,
        )
        update_rows(ProjectFile, "id", ["content", "size", "updated_at"], updates)
        pending.clear()

    def import_mcp_servers(self, rows) -> None:
        name = dump.MCP_SERVERS
        live_names = {}
        slugs = set(McpServer.objects.values_list("slug", flat=True))
        for pk, server_name in McpServer.objects.exclude(status="deleted").values_list(
            "id", "name"
        ):
            live_names[server_name] = pk
        seen: set[str] = set()
        wanted_slugs: dict = {}  # the dump's slug (an export carries it), else one from the name
        pending: list[tuple] = []
        for index, row in rows:
            check = RowCheck(row)
            key = check.ref("id")
            server_name = check.text(
                "name", required=True, max_length=100, min_length=1, strip=True
            )
            description = check.text("description", max_length=5000)
            slug = check.text("slug", max_length=100)
            if slug and not SLUG_RE.match(slug):
                check.fail("slug", "may hold only lowercase letters, digits and hyphens")
            url = check.text("url", max_length=500) or None
            command = check.text("command", max_length=500)
            args = check.string_list("args")
            transport = check.row.get("transport")
            if transport is None:
                transport = "stdio" if command and not url else "streamable_http"
            elif transport in TRANSPORTS:
                transport = TRANSPORTS[transport]
            else:
                check.fail("transport", f"must be http, sse or stdio, not {str(transport)[:40]!r}")
            spec = check.row.get("credentialSpec")
            if spec is None:
                spec = []
            else:
                try:
                    validate_credential_spec(spec)
                except ValidationError as exc:
                    check.fail("credentialSpec", exc.messages[0])
            active = check.boolean("isActive", True)
            deleted_at = check.timestamp("deletedAt", None)
            created = check.timestamp("createdAt", self.exported_at)
            if transport in ("streamable_http", "sse"):
                if not url:
                    check.fail("url", "is required for http and sse servers")
                else:
                    try:
                        _url_validator(url)
                    except ValidationError:
                        check.fail("url", "must be an http(s) URL")
            elif transport == "stdio" and not command:
                check.fail("command", "is required for stdio servers")
            status = "deleted" if deleted_at else ("active" if active else "inactive")
            pk = legacy_uuid(name, key) if key is not None else None
            if key is not None and key in seen:
                check.fail("id", "appears twice in mcpServers (the first row is kept)")
            elif server_name and status != "deleted" and live_names.get(server_name, pk) != pk:
                check.fail("name", f"another live MCP server is named {server_name!r}")
            if key is not None:
                seen.add(key)
            if check.errors:
                self.reject(name, index, row, check.errors)
                continue
            if status != "deleted":
                live_names[server_name] = pk
            wanted_slugs[pk] = slug
            record = (
                pk,
                server_name,
                description,
                transport,
                url,
                command,
                args,
                spec,
                status,
                deleted_at,
                created,
            )
            pending.append(record)
        if self.writing and pending:

            def extra(record):
                wanted = wanted_slugs.get(record[0])
                if wanted and wanted not in slugs:
                    slugs.add(wanted)
                    return (wanted, record[10])
                slug = mcp_server_slug(record[1], taken=lambda s: s in slugs)
                slugs.add(slug)
                return (slug, record[10])

            self._upsert(name, pending, extra=extra)

    # ------------------------------------------------------------------ marketplace

    def import_purchases(self, rows) -> None:
        name = dump.PURCHASES
        completed = HashSet(self.memory)
        pending: list[tuple] = []
        sources: list[tuple] = []  # (index, row) of each pending purchase, for the report
        for index, row in rows:
            check = RowCheck(row)
            key = check.ref("id")
            buyer = self._reference(check, "userId", dump.USERS, self.users)
            project = self._reference(check, "projectId", dump.PROJECTS, self.projects)
            amount = check.money("amount", ZERO, minimum=ZERO)
            currency = self._currency(check, "USD")
            status = check.choice("status", PURCHASE_STATUSES, "completed")
            created = check.timestamp("createdAt", self.exported_at)
            refunded = check.timestamp("refundedAt", None)
            if status == "refunded" and refunded is None and "refundedAt" not in check.row:
                refunded = created
            elif status == "completed":
                refunded = None
            if key is not None and (key in self.purchases or key in self.rejected[name]):
                check.fail("id", "appears twice in marketplacePurchases (the first is kept)")
                key = None
            if buyer is not None and project is not None:
                if buyer == project[1]:
                    check.fail("userId", "a seller cannot buy their own project")
                elif status == "completed" and (buyer, project[0]) in completed:
                    check.fail(
                        "projectId",
                        "this user already has a completed purchase of this project "
                        "(the first is kept)",
                    )
            if check.errors:
                if key is not None:
                    self.rejected[name].add(key)
                self.reject(name, index, row, check.errors)
                continue
            if status == "completed":
                completed.add((buyer, project[0]))
            self.purchases.add(key, buyer, project[0], int(amount * 100), currency)
            pending.append(
                (
                    legacy_uuid(name, key),
                    buyer,
                    project[0],
                    amount,
                    currency,
                    status,
                    created,
                    refunded,
                )
            )
            sources.append((index, row))
            if len(pending) >= self.batch_size:
                self._flush_purchases(pending, sources)
        self._flush_purchases(pending, sources)

    def _flush_purchases(self, pending: list, sources: list) -> None:
        if self.writing and self.had_rows[dump.PURCHASES]:
            taken = {}
            projects = list({record[2] for record in pending})
            for chunk in _chunks(list({record[1] for record in pending})):
                purchases = where_in(Purchase.objects.filter(status="completed"), "buyer_id", chunk)
                for buyer, project, pk in where_in(purchases, "project_id", projects).values_list(
                    "buyer_id", "project_id", "id"
                ):
                    taken[(buyer, project)] = pk
            for row in self._reject_database_conflicts(
                dump.PURCHASES,
                pending,
                sources,
                taken,
                lambda record: (record[1], record[2]) if record[5] == "completed" else None,
                lambda record: (
                    "projectId",
                    "this user already has a completed purchase of this project (in the database)",
                ),
            ):
                key = ref_key(row["id"])
                self.purchases.remove(key)  # its revenue events are rejected with it
                self.rejected[dump.PURCHASES].add(key)
        sources.clear()
        self._flush(dump.PURCHASES, pending)

    def _flush(self, map_name: str, pending: list, *, extra=None) -> None:
        if self.writing and pending:
            self._upsert(map_name, pending, extra=extra)
        pending.clear()

    def import_reviews(self, rows) -> None:
        name = dump.REVIEWS
        seen_ids = HashSet(self.memory)
        pairs = HashSet(self.memory)
        pending: list[tuple] = []
        sources: list[tuple] = []  # (index, row) of each pending review, for the report
        for index, row in rows:
            check = RowCheck(row)
            key = check.ref("id")
            author = self._reference(check, "userId", dump.USERS, self.users)
            project = self._reference(check, "projectId", dump.PROJECTS, self.projects)
            rating = check.row.get("rating")
            if rating is None:
                check.fail("rating", "is required")
            elif (
                isinstance(rating, bool)
                or not isinstance(rating, int)
                or not RATING_MIN <= rating <= RATING_MAX
            ):
                check.fail(
                    "rating",
                    f"must be a whole number from {RATING_MIN} to {RATING_MAX}, not {rating!r}",
                )
            title = check.text("title", max_length=REVIEW_TITLE_MAX_LENGTH)
            body = check.text("comment", max_length=REVIEW_BODY_MAX_LENGTH)
            created = check.timestamp("createdAt", self.exported_at)
            updated = check.timestamp("updatedAt", created)
            if key is not None and not seen_ids.add(key):
                check.fail("id", "appears twice in marketplaceReviews (the first is kept)")
            if author is not None and project is not None:
                if author == project[1]:
                    check.fail("userId", "an owner cannot review their own project")
                elif (author, project[0]) in pairs:
                    check.fail(
                        "userId", "this user already reviewed this project (the first is kept)"
                    )
            if check.errors:
                self.reject(name, index, row, check.errors)
                continue
            pairs.add((author, project[0]))
            pending.append(
                (legacy_uuid(name, key), author, project[0], rating, title, body, created, updated)
            )
            sources.append((index, row))
            if len(pending) >= self.batch_size:
                self._flush_reviews(pending, sources)
        self._flush_reviews(pending, sources)

    def _flush_reviews(self, pending: list, sources: list) -> None:
        if self.writing and self.had_rows[dump.REVIEWS]:
            self._reject_reviews_of_the_database(pending, sources)
        sources.clear()
        # updated_at is written but not compared: it follows created_at when absent.
        records = [record[:7] for record in pending]
        updated = {record[0]: record[7] for record in pending}
        self._flush(dump.REVIEWS, records, extra=lambda record: (updated[record[0]],))
        pending.clear()

    def _reject_reviews_of_the_database(self, pending: list, sources: list) -> None:
        projects = list({record[2] for record in pending})
        reviewed = {}
        for chunk in _chunks(list({record[1] for record in pending})):
            reviews = where_in(Review.objects, "author_id", chunk)
            for author, project, pk in where_in(reviews, "project_id", projects).values_list(
                "author_id", "project_id", "id"
            ):
                reviewed[(author, project)] = pk
        self._reject_database_conflicts(
            dump.REVIEWS,
            pending,
            sources,
            reviewed,
            lambda record: (record[1], record[2]),
            lambda record: ("userId", "this user already reviewed this project (in the database)"),
        )

    def _reject_database_conflicts(
        self,
        map_name: str,
        pending: list,
        sources: list,
        taken: dict,
        unique_key: Callable,
        problem: Callable[[tuple], tuple[str, str]],
    ) -> list:
        """Reject the pending rows whose unique key (None: no unique rule) is taken by another
        row of the database, one this batch does not write, as a second such row of the dump
        would be; they leave `pending`. Returns the dump rows rejected."""
        batch = {record[0] for record in pending}
        kept, rejected = [], []
        for record, (index, row) in zip(pending, sources, strict=True):
            holder = taken.get(unique_key(record))
            if holder is not None and holder != record[0] and holder not in batch:
                self.reject(map_name, index, row, [problem(record)])
                rejected.append(row)
            else:
                kept.append(record)
        pending[:] = kept
        return rejected

    def import_downloads(self, rows) -> None:
        name = dump.DOWNLOADS
        seen_ids = HashSet(self.memory)
        pending: list[tuple] = []
        for index, row in rows:
            check = RowCheck(row)
            key = check.ref("id")
            user = self._reference(check, "userId", dump.USERS, self.users)
            project = self._reference(check, "projectId", dump.PROJECTS, self.projects)
            created = check.timestamp("createdAt", self.exported_at)
            if key is not None and not seen_ids.add(key):
                check.fail("id", "appears twice in marketplaceDownloads (the first is kept)")
            if check.errors:
                self.reject(name, index, row, check.errors)
                continue
            pending.append((legacy_uuid(name, key), user, project[0], created))
            if len(pending) >= self.batch_size:
                self._flush(name, pending)
        self._flush(name, pending)

    def import_revenue_events(self, rows) -> None:
        name = dump.REVENUE_EVENTS
        seen_ids = HashSet(self.memory)
        per_purchase = HashSet(self.memory)
        pending: list[tuple] = []
        sources: list[tuple] = []  # (index, row) of each pending event, for the report
        for index, row in rows:
            check = RowCheck(row)
            key = check.ref("id")
            kind = check.choice("type", REVENUE_KINDS, None)
            project = self._reference(check, "projectId", dump.PROJECTS, self.projects)
            purchase = self._reference(
                check, "purchaseId", dump.PURCHASES, self.purchases, required=False
            )
            purchase_key = ref_key(check.row.get("purchaseId"))
            buyer = purchase[0] if purchase is not None else None
            if purchase is None and check.row.get("buyerId") is not None:
                buyer = self._reference(check, "buyerId", dump.USERS, self.users)
            default_amount = None
            if purchase is not None:
                default_amount = Decimal(purchase[2]) / 100
                if kind == "refund":
                    default_amount = -default_amount
            gross = check.money("amount", default_amount)
            if gross is None and "amount" not in check.row:
                check.fail("amount", "is required when there is no purchase")
            currency = self._currency(check, purchase[3] if purchase is not None else "USD")
            fee = check.money("platformFee", None)
            net = check.money("sellerNet", None)
            metadata = check.json_object("metadata")
            created = check.timestamp("createdAt", self.exported_at)
            if gross is not None:
                if fee is None and net is None:
                    fee, net = split_amount(gross)
                elif fee is None or net is None or fee + net != gross:
                    check.fail("platformFee", "platformFee + sellerNet must equal amount")
            if project is not None and purchase is not None and purchase[1] != project[0]:
                check.fail("purchaseId", "the purchase is of another project")
            if key is not None and not seen_ids.add(key):
                check.fail("id", "appears twice in revenueEvents (the first is kept)")
            elif kind in ("purchase", "refund") and (purchase_key, kind) in per_purchase:
                check.fail("purchaseId", f"this purchase already has a {kind} event (first kept)")
            if check.errors:
                self.reject(name, index, row, check.errors)
                continue
            if purchase is not None and kind in ("purchase", "refund"):
                per_purchase.add((purchase_key, kind))
            pending.append(
                (
                    legacy_uuid(name, key),
                    kind,
                    project[0],
                    project[1],
                    buyer,
                    legacy_uuid(dump.PURCHASES, purchase_key) if purchase is not None else None,
                    gross,
                    fee,
                    net,
                    currency,
                    metadata,
                    created,
                )
            )
            sources.append((index, row))
            if len(pending) >= self.batch_size:
                self._flush_revenue_events(pending, sources)
        self._flush_revenue_events(pending, sources)

    def _flush_revenue_events(self, pending: list, sources: list) -> None:
        if self.writing and self.had_rows[dump.REVENUE_EVENTS]:
            taken = {}
            for chunk in _chunks(list({record[5] for record in pending} - {None})):
                events = where_in(PER_PURCHASE_EVENTS, "purchase_id", chunk)
                for purchase, kind, pk in events.values_list("purchase_id", "kind", "id"):
                    taken[(purchase, kind)] = pk
            self._reject_database_conflicts(
                dump.REVENUE_EVENTS,
                pending,
                sources,
                taken,
                lambda record: (record[5], record[1]),
                lambda record: (
                    "purchaseId",
                    f"this purchase already has a {record[1]} event (in the database)",
                ),
            )
        sources.clear()
        self._flush(dump.REVENUE_EVENTS, pending)

    # ------------------------------------------------------------------ chat

    def import_chat_messages(self, rows) -> None:
        """Checked and hashed as read; written at the end, numbered in createdAt order."""
        name = dump.CHAT_MESSAGES
        stats = self.stats[name]
        seen_ids = HashSet(self.memory)
        copy = connection.vendor == "postgresql"
        # What to insert by createdAt (COPY lines, or values), sorted in runs that take at
        # most the memory budget.
        spool = SortedSpool(max(100, int(self.memory.limit // CHAT_RUN_ROW_BYTES)))
        pending: list[tuple] = []  # rows to compare with the database, when it has some
        roles = tuple(ChatMessage.Role.values)
        for index, row in rows:
            check = RowCheck(row)
            key = check.ref("id")
            owner = self._reference(check, "userId", dump.USERS, self.users)
            project = self._reference(
                check, "projectId", dump.PROJECTS, self.projects, required=False
            )
            content = check.text(
                "content", required=True, min_length=1, max_length=MAX_CONTENT_LENGTH
            )
            role = check.choice("role", roles, "user")
            metadata = check.json_object("metadata", max_bytes=MAX_METADATA_BYTES)
            created = check.timestamp("createdAt", self.exported_at)
            if project is not None and owner is not None and project[1] != owner:
                check.fail("projectId", "the project belongs to another user")
            if key is not None and not seen_ids.add(key):
                check.fail("id", "appears twice in chatMessages (the first row is kept)")
            if check.errors:
                self.reject(name, index, row, check.errors)
                continue
            if not self.writing:
                continue
            record = (
                legacy_uuid(name, key),
                owner,
                project[0] if project is not None else None,
                role,
                content,
                metadata,
                created,
            )
            if self.had_rows[name]:
                pending.append(record)
                if len(pending) >= self.batch_size:
                    self._flush_chat(pending, spool)
                continue
            line = stats.accept(record)
            stats.created += 1
            spool.add(created.timestamp(), line if copy else [sqlite_value(v) for v in record])
        self._flush_chat(pending, spool)
        seen_ids = None  # freed before the write
        if self.finishing is not None:
            waited = self.finishing.wait()
            self.log(
                "search vectors, counters, other tables' indexes and foreign keys: "
                f"done in the background, waited {waited:.1f} s"
            )
        if self.writing:
            started = time.monotonic()
            self._insert_chat(spool)
            reset_sequence(ChatMessage)
            seconds = time.monotonic() - started
            self.log(f"{name}: {stats.created:,} rows written in {seconds:.1f} s")

    def _flush_chat(self, pending: list, spool: SortedSpool) -> None:
        """Update the changed rows of those the database holds; the new ones go to the spool."""
        copy = connection.vendor == "postgresql"
        for record in self._upsert(dump.CHAT_MESSAGES, pending, insert=False):
            spool.add(
                record[6].timestamp(),
                ROW_TEXT[dump.CHAT_MESSAGES].line(record)
                if copy
                else [sqlite_value(value) for value in record],
            )
        pending.clear()

    def _insert_chat(self, spool: SortedSpool) -> None:
        """Write the spooled rows with ids after the largest, in createdAt order (stable)."""
        last_id = ChatMessage.objects.order_by("-id").values_list("id", flat=True).first()
        columns = [*FIELDS[dump.CHAT_MESSAGES], "id"]
        rows = enumerate(spool.rows(), start=(last_id or 0) + 1)
        if connection.vendor == "postgresql":
            copy_lines(ChatMessage, columns, (f"{line}\t{pk}\n" for pk, line in rows))
            return
        batch = []
        for pk, values in rows:
            batch.append((*values, pk))
            if len(batch) >= self.batch_size:
                insert_rows(ChatMessage, columns, batch)
                batch.clear()
        insert_rows(ChatMessage, columns, batch)

    # ------------------------------------------------------------------ after the write

    def refresh_counters(self) -> None:
        with connection.cursor() as cursor:
            for statement in self.counters_sql():
                cursor.execute(statement)

    def counters_sql(self) -> list[str]:
        """purchase_count, download_count, review_count and rating_avg from the rows."""
        quote = connection.ops.quote_name
        project = quote(Project._meta.db_table)
        purchase = quote(Purchase._meta.db_table)
        download = quote(Download._meta.db_table)
        review = quote(Review._meta.db_table)
        statements = []
        if connection.vendor == "postgresql":
            # Fresh statistics, so the planner joins rather than loops.
            statements = [f"ANALYZE {table}" for table in (project, purchase, download, review)]
        # A refunded buyer's review is marked and left out of the rating, as
        # marketplace.services.purchase_refund does (a later completed purchase counts it).
        refunded = f"""(
            EXISTS (SELECT 1 FROM {purchase} x WHERE x.buyer_id = {review}.author_id
                    AND x.project_id = {review}.project_id AND x.status = 'refunded')
            AND NOT EXISTS (SELECT 1 FROM {purchase} x WHERE x.buyer_id = {review}.author_id
                    AND x.project_id = {review}.project_id AND x.status = 'completed'))"""  # noqa: S608 - table names from _meta
        # Only the rows whose mark changes are written.
        mark_refunded = f"""
            UPDATE {review} SET purchase_refunded = {refunded}
            WHERE purchase_refunded <> {refunded}
        """  # noqa: S608 - table names from _meta
        # rating_avg rounds half to even, like marketplace.services.project_refresh_rating:
        # q = 100 * sum // count, r = 100 * sum % count (over the reviews that count, k).
        sql = f"""
            WITH bought AS (
                SELECT project_id, COUNT(*) AS n FROM {purchase}
                WHERE status = 'completed' GROUP BY project_id
            ), fetched AS (
                -- a seller's own downloads do not count (marketplace.services)
                SELECT d.project_id, COUNT(*) AS n FROM {download} d
                JOIN {project} o ON o.id = d.project_id AND o.owner_id <> d.user_id
                GROUP BY d.project_id
            ), rated AS (
                SELECT project_id, COUNT(*) AS n,
                    SUM(CASE WHEN purchase_refunded THEN 0 ELSE 1 END) AS k,
                    SUM(CASE WHEN purchase_refunded THEN 0 ELSE rating END) * 100 AS s
                FROM {review} GROUP BY project_id
            ), figures AS (
                SELECT p.id AS id,
                    COALESCE(bought.n, 0) AS purchases,
                    COALESCE(fetched.n, 0) AS downloads,
                    COALESCE(rated.n, 0) AS reviews,
                    CASE WHEN rated.k IS NULL OR rated.k = 0 THEN NULL ELSE
                        (rated.s / rated.k
                         + CASE WHEN 2 * (rated.s % rated.k) > rated.k
                                  OR (2 * (rated.s % rated.k) = rated.k
                                      AND (rated.s / rated.k) % 2 = 1)
                            THEN 1 ELSE 0 END) / 100.0
                    END AS rating
                FROM {project} p
                LEFT JOIN bought ON bought.project_id = p.id
                LEFT JOIN fetched ON fetched.project_id = p.id
                LEFT JOIN rated ON rated.project_id = p.id
            )
            UPDATE {project} SET
                purchase_count = figures.purchases,
                download_count = figures.downloads,
                review_count = figures.reviews,
                rating_avg = figures.rating
            FROM figures
            WHERE figures.id = {project}.id AND (
                {project}.purchase_count <> figures.purchases
                OR {project}.download_count <> figures.downloads
                OR {project}.review_count <> figures.reviews
                OR {project}.rating_avg IS DISTINCT FROM figures.rating)
        """  # noqa: S608 - table names from _meta
        return [*statements, mark_refunded, sql]

    def verify(self) -> None:
        """Count and hash every imported row's key fields in the database (legacy.canonical);
        fail loudly if a count or a checksum differs from what the import accepted."""
        differences = []
        for map_name, stats in self.stats.items():
            count, checksum = self._stored_checksum(map_name, stats.keys)
            expected = stats.read - stats.rejected
            if count != stats.accepted or count != expected or checksum != stats.checksum:
                differences.append(
                    f"{map_name}: the dump has {expected} valid rows, the import wrote "
                    f"{stats.accepted}, the database holds {count}"
                    + ("" if checksum == stats.checksum else " and the checksum differs")
                )
            stats.keys = None
        if differences:
            raise ImportFailed(
                "Verification failed; nothing was written.\n" + "\n".join(differences)
            )

    def _stored_checksum(self, map_name: str, keys) -> tuple[int, int]:
        """(rows, sum of their digests) of the imported rows: all rows of a table that was
        empty before, else those with the given keys."""
        model, names = MODELS[map_name], FIELDS[map_name]
        chunks = [None] if keys is None else keys.chunks()
        if connection.vendor != "postgresql":
            count, checksum = 0, 0
            line = ROW_TEXT[map_name].line
            for values in self._read_back(map_name, chunks):
                count += 1
                checksum += digest(line(values))
            return count, checksum
        quote = connection.ops.quote_name
        digests = DIGEST_SQL.format(ROW_TEXT[map_name].sql)
        table = quote(model._meta.db_table)
        # Names from _meta, no values: the keys are copied into a temporary table.
        select = f"SELECT count(*), coalesce(sum({digests}), 0) FROM {table}"  # noqa: S608
        with connection.cursor() as cursor:
            if keys is None:
                cursor.execute(select)
                rows, total = cursor.fetchone()
                return rows, int(total)
            # One join with the keys, not an index lookup per key: half the time or less.
            key = "project_id, path" if map_name == dump.PROJECT_FILES else quote(names[0])
            cursor.execute(
                f"CREATE TEMPORARY TABLE legacy_import_keys AS SELECT {key} FROM {table} LIMIT 0"  # noqa: S608
            )
            with (
                connection.wrap_database_errors,
                cursor.cursor.copy("COPY legacy_import_keys FROM STDIN") as copy,
            ):
                for chunk in chunks:
                    for row in chunk:
                        copy.write_row(row if map_name == dump.PROJECT_FILES else (row,))
            cursor.execute("ANALYZE legacy_import_keys")
            cursor.execute(f"{select} WHERE ({key}) IN (SELECT * FROM legacy_import_keys)")  # noqa: S608
            rows, total = cursor.fetchone()
            cursor.execute("DROP TABLE legacy_import_keys")
        return rows, int(total)

    def _read_back(self, map_name: str, chunks):
        model, names = MODELS[map_name], FIELDS[map_name]
        for chunk in chunks:
            if chunk is None:
                yield from model.objects.values_list(*names).iterator()
            elif map_name == dump.PROJECT_FILES:
                wanted = {(values[0], values[1]) for values in chunk}
                projects = list({project for project, _ in wanted})
                for values in where_in(ProjectFile.objects, "project_id", projects).values_list(
                    *names
                ):
                    if (values[0], values[1]) in wanted:
                        yield values
            else:
                yield from where_in(model.objects, names[0], chunk).values_list(*names)


def summary_table(stats: dict[str, MapStats]) -> str:
    columns = ("read", "created", "updated", "unchanged", "rejected")
    width = max(len(name) for name in stats) + 2
    lines = ["map".ljust(width) + "".join(column.rjust(11) for column in columns)]
    for map_name, figures in stats.items():
        lines.append(
            map_name.ljust(width)
            + "".join(str(getattr(figures, column)).rjust(11) for column in columns)
        )
    return "\n".join(lines)


def as_json(problem: Problem) -> str:
    entry = {
        "map": problem.map,
        "id": problem.ref,
        "index": problem.index,
        "problems": [{"field": f, "reason": r} for f, r in problem.errors],
    }
    if problem.row is not None:
        entry["row"] = problem.row
    return json.dumps(entry, default=str)
