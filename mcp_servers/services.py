"""Writes of the admin-curated MCP server catalogue."""

import hashlib
import json
import logging
from collections.abc import Callable

import jsonschema
from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.db import IntegrityError, connection, transaction
from django.db.models import Q
from django.utils import timezone
from django.utils.text import slugify
from referencing import Registry
from referencing.exceptions import NoSuchResource, Unresolvable

from chat import services as chat_services
from chat.models import MAX_CONTENT_LENGTH, MAX_METADATA_BYTES, ChatMessage
from config import security_signals
from config.errors import Conflict, DomainError, Invalid, NotFound
from config.services import validate_model
from credentials import services as credential_services
from credentials.models import Credential
from mcp_servers import client as mcp_client
from mcp_servers import limits, oauth_services, selectors
from mcp_servers import sessions as mcp_sessions
from mcp_servers.models import HEADER_PLACEHOLDER_RE, McpServer
from projects import selectors as project_selectors
from projects.models import Project

logger = logging.getLogger(__name__)

EDITABLE_FIELDS = (
    "name",
    "slug",
    "description",
    "transport",
    "url",
    "command",
    "args",
    "credential_spec",
    "headers",
    "disabled_tools",
    "call_timeout_seconds",
    "authentication",
    "oauth_client_id",
    "oauth_client_secret",
    "oauth_scopes",
)


def mcp_server_slug(name: str, *, taken: Callable[[str], bool]) -> str:
    """The slug for a server named `name`: slugified, then `-2`, `-3`… until `taken` says no.
    The catalogue asks the database; the legacy import asks the set it keeps in memory."""
    base = slugify(name)[:90] or "server"
    slug, n = base, 2
    while taken(slug):
        slug, n = f"{base}-{n}", n + 1
    return slug


def _save(server: McpServer) -> McpServer:
    if not server.slug:
        server.slug = mcp_server_slug(
            server.name,
            taken=lambda slug: McpServer.objects.filter(slug=slug).exclude(pk=server.pk).exists(),
        )
    if server.transport == McpServer.Transport.STDIO:
        server.url = server.url or None
    server.oauth_client_secret = server.oauth_client_secret or None
    validate_model(server)
    try:
        with transaction.atomic():
            server.save()
    except IntegrityError as exc:
        raise Conflict(
            "An MCP server with this name or slug already exists.", field="name", code="name_taken"
        ) from exc
    return server


@transaction.atomic
def mcp_server_create(
    *,
    actor: AbstractBaseUser | None,
    status: str = McpServer.Status.ACTIVE,
    allowed_groups=None,
    **fields,
) -> McpServer:
    unknown = set(fields) - set(EDITABLE_FIELDS)
    if unknown:
        raise Invalid(f"Unknown fields: {', '.join(sorted(unknown))}.")
    if status not in (McpServer.Status.ACTIVE, McpServer.Status.INACTIVE):
        raise Invalid("Status must be active or inactive.", field="status")
    server = _save(McpServer(created_by=actor, status=status, **fields))
    if allowed_groups is not None:
        server.allowed_groups.set(allowed_groups)
    return server


@transaction.atomic
def mcp_server_update(
    *, server: McpServer, status: str | None = None, allowed_groups=None, **fields
) -> McpServer:
    server = McpServer.objects.select_for_update().get(pk=server.pk)
    unknown = set(fields) - set(EDITABLE_FIELDS)
    if unknown:
        raise Invalid(f"Unknown fields: {', '.join(sorted(unknown))}.")
    for name, value in fields.items():
        setattr(server, name, value)
    if status is not None:
        if status not in (McpServer.Status.ACTIVE, McpServer.Status.INACTIVE):
            raise Invalid("Status must be active or inactive.", field="status")
        if server.status == McpServer.Status.DELETED:
            raise Invalid("Restore a deleted server before changing its status.", field="status")
        server.status = status
    server = _save(server)
    if allowed_groups is not None:
        server.allowed_groups.set(allowed_groups)
    mcp_sessions.close_on_commit(server.pk)
    return server


@transaction.atomic
def mcp_server_delete(*, server: McpServer) -> McpServer:
    """Soft delete: the row stays, hidden from users, restorable by an admin."""
    server = McpServer.objects.select_for_update().get(pk=server.pk)
    if server.status != McpServer.Status.DELETED:
        server.status = McpServer.Status.DELETED
        server.deleted_at = timezone.now()
        server.save(update_fields=["status", "deleted_at", "updated_at"])
    mcp_sessions.close_on_commit(server.pk)
    return server


@transaction.atomic
def mcp_server_restore(*, server: McpServer) -> McpServer:
    """Bring a soft-deleted server back as inactive, so an admin re-enables it on purpose."""
    server = McpServer.objects.select_for_update().get(pk=server.pk)
    if server.status != McpServer.Status.DELETED:
        return server
    if McpServer.objects.exclude(status=McpServer.Status.DELETED).filter(name=server.name).exists():
        raise Conflict(
            f"Another server is already named {server.name}; rename it first.", code="name_taken"
        )
    server.status = McpServer.Status.INACTIVE
    server.deleted_at = None
    server.save(update_fields=["status", "deleted_at", "updated_at"])
    return server


# --- Live checks, tool pinning and tool calls ----------------------------------------------------
# The network side is mcp_servers.client; these functions decide what to send and record what
# came back. No database transaction is held open while a server is being talked to.


class McpServerUnavailable(DomainError):
    """The server could not be reached, refused the call, or answered with an error."""

    status_code = 502
    default_message = "The MCP server could not be reached."
    default_code = "mcp_server_unavailable"


class McpServerTimeout(DomainError):
    status_code = 504
    default_message = "The MCP server did not answer in time."
    default_code = "mcp_server_timeout"


class McpToolFailed(DomainError):
    """The tool ran and reported an error."""

    status_code = 502
    default_message = "The tool reported an error."
    default_code = "mcp_tool_failed"


def _connect_timeout() -> float:
    return float(settings.MCP_CONNECT_TIMEOUT_SECONDS)


def _canonical(value) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


# Tool metadata an administrator reviews besides name, description and input schema.
REVIEWED_METADATA = ("title", "annotations", "output_schema", "task_support")


def mcp_tool_fingerprint(tool: dict) -> str:
    """sha256 of one tool's name, description, input schema and, when present, its title,
    annotations, output schema and task support, in canonical JSON.

    Metadata a tool does not have is left out of the material, so a tool without any keeps
    the fingerprint it was approved with before metadata was kept; one that has some (a
    destructiveHint, an output schema) changes its fingerprint, and its server awaits review."""
    material = {
        "name": tool.get("name", ""),
        "description": tool.get("description") or "",
        "input_schema": tool.get("input_schema") or {},
    }
    for key in REVIEWED_METADATA:
        if tool.get(key) not in (None, "", {}):
            material[key] = tool[key]
    return hashlib.sha256(_canonical(material).encode("utf-8")).hexdigest()


def mcp_tools_fingerprint(tools: list[dict]) -> str:
    """sha256 over every tool's fingerprint, in name order: the value pinned on approval."""
    parts = sorted((tool.get("name", ""), mcp_tool_fingerprint(tool)) for tool in tools)
    return hashlib.sha256(_canonical(parts).encode("utf-8")).hexdigest()


def mcp_tools_diff(server: McpServer) -> dict[str, list[str]]:
    """Tool names the current list added, removed or changed against the approved list."""
    approved = {t.get("name"): mcp_tool_fingerprint(t) for t in server.approved_tools or []}
    current = {t.get("name"): mcp_tool_fingerprint(t) for t in server.tools or []}
    return {
        "added": sorted(name for name in current if name not in approved),
        "removed": sorted(name for name in approved if name not in current),
        "changed": sorted(
            name for name in current if name in approved and current[name] != approved[name]
        ),
    }


def _pin(server: McpServer, tools: list[dict]) -> None:
    server.tools_fingerprint = mcp_tools_fingerprint(tools)
    server.approved_tools = tools
    server.tools_approved_at = timezone.now()
    server.tools_changed = False


def _record_tools(server: McpServer, tools: list[dict]) -> None:
    """Store what the server offers now. A list that differs from the approved one (the first
    list differs from none) marks the server for review and keeps the pinned fingerprint; with
    MCP_APPROVE_FIRST_TOOLS the first list found is pinned at once instead."""
    server.tools = tools
    if not server.tools_fingerprint:
        if settings.MCP_APPROVE_FIRST_TOOLS:
            _pin(server, tools)
        else:
            server.tools_changed = True  # awaiting the first approval
    else:
        was_changed = server.tools_changed
        server.tools_changed = mcp_tools_fingerprint(tools) != server.tools_fingerprint
        if server.tools_changed and not was_changed:
            security_signals.tool_list_changed()


_CHECK_FIELDS = [
    "last_checked_at",
    "last_check_ok",
    "last_check_status",
    "last_check_error",
    "server_info",
    "tools",
    "tools_fingerprint",
    "approved_tools",
    "tools_approved_at",
    "tools_changed",
    "updated_at",
]


def _header_keys(server: McpServer) -> list[str]:
    keys: list[str] = []
    for template in (server.headers or {}).values():
        for key in HEADER_PLACEHOLDER_RE.findall(template):
            if key not in keys:
                keys.append(key)
    return keys


def _fill_headers(server: McpServer, values: dict[str, str]) -> dict[str, str]:
    """The header templates with credential values filled in; a header naming a key without a
    value is left out rather than sent half-filled."""
    for key, value in values.items():
        if any(char in value for char in "\r\n\x00"):
            raise Invalid(f"The value of {key} has a line break and cannot be sent in a header.")
    headers: dict[str, str] = {}
    for name, template in (server.headers or {}).items():
        keys = HEADER_PLACEHOLDER_RE.findall(template)
        if all(key in values for key in keys):
            headers[name] = HEADER_PLACEHOLDER_RE.sub(lambda m: values[m.group(1)], template)
    return headers


def _shared_values(server: McpServer, keys: list[str]) -> dict[str, str]:
    """Decrypt the shared keys among `keys` that an administrator has set."""
    shared = [k for k in keys if (server.spec_entry(k) or {}).get("shared")]
    present = set(
        Credential.objects.filter(owner=None, mcp_server=server, key__in=shared).values_list(
            "key", flat=True
        )
    )
    return {
        key: credential_services.credential_reveal(owner=None, server=server, key=key)
        for key in shared
        if key in present
    }


def mcp_server_check(*, server: McpServer, user: AbstractBaseUser | None = None) -> McpServer:
    """Probe the server now and record what it says (check_mcp_server).

    stdio servers are never run. The probe carries shared keys only, never a user's secret, so
    a server that wants per-user keys may answer "needs credentials", which is not "down".
    An OAuth server is probed with the checking administrator's own connection when they have
    one (so its tools can be listed and pinned); without one it answers "needs_oauth".
    """
    server = McpServer.objects.get(pk=server.pk)
    now = timezone.now()
    outcome: dict = {"last_checked_at": now}
    if server.transport == McpServer.Transport.STDIO:
        outcome.update(
            last_check_ok=None,
            last_check_status=McpServer.CheckStatus.NOT_RUN,
            last_check_error="Not run: stdio servers are catalogued but never executed here.",
        )
        return _record_check(server, outcome)
    try:
        if server.authentication == McpServer.Authentication.OAUTH:
            headers = _fill_headers(server, {})
            if user is not None and user.is_authenticated:
                token = oauth_services.oauth_access_token(user=user, server=server)
                headers["Authorization"] = f"Bearer {token}"
        else:
            headers = _fill_headers(server, _shared_values(server, _header_keys(server)))
    except oauth_services.NeedsSignIn:
        headers = _fill_headers(server, {})
    except DomainError as exc:  # a shared value that cannot be read or sent
        outcome.update(
            last_check_ok=False,
            last_check_status=McpServer.CheckStatus.NEEDS_CREDENTIALS,
            last_check_error=exc.message,
        )
        return _record_check(server, outcome)
    try:
        result = mcp_client.probe(
            url=server.url, transport=server.transport, headers=headers, timeout=_connect_timeout()
        )
    except mcp_client.McpClientError as exc:
        status = {
            exc.REFUSED: McpServer.CheckStatus.REFUSED,
            exc.NEEDS_CREDENTIALS: McpServer.CheckStatus.NEEDS_CREDENTIALS,
            exc.NEEDS_OAUTH: McpServer.CheckStatus.NEEDS_OAUTH,
            exc.INSUFFICIENT_SCOPE: McpServer.CheckStatus.NEEDS_OAUTH,
        }.get(exc.kind, McpServer.CheckStatus.DOWN)
        outcome.update(last_check_ok=False, last_check_status=status, last_check_error=exc.message)
        logger.info("MCP server %s check failed: %s", server.pk, exc.message)
        return _record_check(server, outcome)
    problem = _tools_problem(result.tools)
    if problem:  # the last known tools stay; this list is never pinned nor callable
        outcome.update(
            last_check_ok=False,
            last_check_status=McpServer.CheckStatus.REFUSED,
            last_check_error=problem,
        )
        logger.info("MCP server %s check refused its tool list", server.pk)
        return _record_check(server, outcome)
    outcome.update(
        last_check_ok=True,
        last_check_status=McpServer.CheckStatus.OK,
        last_check_error="",
        server_info=result.server_info,
        tools=result.tools,
    )
    logger.info(
        "MCP server %s check ok: protocol %s, %d tools",
        server.pk,
        result.protocol_version,
        len(result.tools),
    )
    return _record_check(server, outcome)


@transaction.atomic
def _record_check(server: McpServer, outcome: dict) -> McpServer:
    locked = McpServer.objects.select_for_update().get(pk=server.pk)
    tools = outcome.pop("tools", None)
    for name, value in outcome.items():
        setattr(locked, name, value[:500] if name == "last_check_error" else value)
    if tools is not None:
        _record_tools(locked, tools)
    locked.save(update_fields=_CHECK_FIELDS)
    return locked


@transaction.atomic
def mcp_server_approve_tools(
    *, server: McpServer, actor: AbstractBaseUser | None = None
) -> McpServer:
    """Pin the tool list the last check found and allow calls again."""
    server = McpServer.objects.select_for_update().get(pk=server.pk)
    if server.last_checked_at is None or (not server.tools and not server.last_check_ok):
        raise Invalid("Check the server before approving its tools.")
    _pin(server, server.tools or [])
    server.save(
        update_fields=[
            "tools_fingerprint",
            "approved_tools",
            "tools_approved_at",
            "tools_changed",
            "updated_at",
        ]
    )
    logger.info("MCP server %s tools approved by user %s", server.pk, getattr(actor, "pk", None))
    return server


def _refuse_retrieval(uri: str):
    raise NoSuchResource(ref=uri)


# Tool schemas come from the MCP server: a `$ref` resolves inside the schema (and the JSON
# Schema metaschemas jsonschema ships), never by fetching a URL, which would go around the
# address guard with no timeout.
LOCAL_REFERENCES_ONLY = Registry(retrieve=_refuse_retrieval)
REFERENCE_KEYWORDS = ("$ref", "$dynamicRef", "$recursiveRef")
DATA_KEYWORDS = ("const", "enum", "default", "examples")  # values here are data, not schemas


def mcp_schema_remote_reference(schema) -> str | None:
    """The first reference in `schema` that does not point inside it (`#…`), or None."""
    if isinstance(schema, dict):
        for keyword in REFERENCE_KEYWORDS:
            target = schema.get(keyword)
            if isinstance(target, str) and not target.startswith("#"):
                return target
        for key, value in schema.items():
            if key not in DATA_KEYWORDS:
                found = mcp_schema_remote_reference(value)
                if found is not None:
                    return found
    elif isinstance(schema, list):
        for item in schema:
            found = mcp_schema_remote_reference(item)
            if found is not None:
                return found
    return None


def _tools_problem(tools: list[dict]) -> str:
    """Why a tool list cannot be recorded, or empty."""
    for tool in tools:
        for key, label in (("input_schema", "input"), ("output_schema", "output")):
            target = mcp_schema_remote_reference(tool.get(key))
            if target is not None:
                return (
                    f"Refused: the {label} schema of tool {str(tool.get('name'))[:100]} refers "
                    f"to {target[:200]} outside itself; a tool schema may only use references "
                    "inside itself (#…), which are never fetched."
                )
    return ""


def _schema_error(tool: dict, key: str, label: str, value, *, when: str):
    """The best error of `value` against the tool's schema `key`, or None. References resolve
    only inside the schema (LOCAL_REFERENCES_ONLY); a schema that cannot be applied is the
    server's fault, a 502 naming it."""
    schema = tool.get(key) or {"type": "object"}
    validator_class = jsonschema.validators.validator_for(
        schema, default=jsonschema.Draft202012Validator
    )
    try:
        validator_class.check_schema(schema)
    except jsonschema.SchemaError as exc:
        raise McpServerUnavailable(f"The tool's {label} schema is not valid JSON Schema.") from exc
    validator = validator_class(schema, registry=LOCAL_REFERENCES_ONLY)
    try:
        return jsonschema.exceptions.best_match(validator.iter_errors(value))
    except Unresolvable as exc:
        raise McpServerUnavailable(
            f"The tool's {label} schema refers to something outside itself, which is never "
            f"fetched; {when}."
        ) from exc
    except Exception as exc:  # a bad pattern, a reference loop: the server's fault, not a 500
        logger.info(
            "MCP tool %s: %s schema unusable: %s", tool.get("name"), label, type(exc).__name__
        )
        raise McpServerUnavailable(f"The tool's {label} schema cannot be applied; {when}.") from exc


def _validate_arguments(tool: dict, arguments) -> None:
    if not isinstance(arguments, dict):
        raise Invalid("Arguments must be a JSON object.", field="arguments")
    error = _schema_error(tool, "input_schema", "input", arguments, when="no call was made")
    if error is not None:
        where = "/".join(str(part) for part in error.absolute_path)
        message = error.message if len(error.message) <= 300 else error.message[:300] + "…"
        raise Invalid(f"{where}: {message}" if where else message, field="arguments")


def _validate_output(tool: dict, structured) -> None:
    """A tool with an output schema must return structured content that matches it (checked
    against the approved definition, which the call verified is what the server lists)."""
    if tool.get("output_schema") is None:
        return
    if structured is None:
        raise McpToolFailed(
            "The tool declares an output schema but returned no structured result.",
            code="mcp_output_invalid",
        )
    error = _schema_error(
        tool, "output_schema", "output", structured, when="its result was not used"
    )
    if error is not None:
        where = "/".join(str(part) for part in error.absolute_path)
        message = error.message[:300]
        raise McpToolFailed(
            "The tool's structured result does not match its output schema: "
            + (f"{where}: {message}" if where else message),
            code="mcp_output_invalid",
        )


def _call_values(*, user: AbstractBaseUser, server: McpServer) -> dict[str, str]:
    """Decrypt the credentials the header templates name: the user's own keys, and the shared
    keys from the administrator. A required key without a value stops the call here."""
    needed = _header_keys(server)
    required = [
        entry["key"]
        for entry in server.credential_spec
        if isinstance(entry, dict) and entry.get("required")
    ]
    keys = list(dict.fromkeys([*required, *needed]))
    shared = {k for k in keys if (server.spec_entry(k) or {}).get("shared")}
    personal = [k for k in keys if k not in shared]
    present = set(
        Credential.objects.filter(mcp_server=server)
        .filter(Q(owner=user, key__in=personal) | Q(owner=None, key__in=list(shared)))
        .values_list("key", flat=True)
    )
    for key in required:
        if key not in present:
            if key in shared:
                raise Invalid(
                    f"{server.name} needs the shared key {key}, which an administrator has not "
                    "set yet; no call was made."
                )
            raise Invalid(
                f"{server.name} needs your credential {key}; add it first. No call was made."
            )
    return {
        key: credential_services.credential_reveal(
            owner=None if key in shared else user, server=server, key=key
        )
        for key in needed
        if key in present
    }


MAX_LOGGED_ARGUMENTS_BYTES = 8 * 1024


def _call_metadata(server: McpServer, tool: str, arguments: dict, **extra) -> dict:
    encoded = json.dumps(arguments, ensure_ascii=False)
    keep = len(encoded.encode("utf-8")) <= MAX_LOGGED_ARGUMENTS_BYTES and "\\u0000" not in encoded
    return {
        "mcp_call": {
            "server": str(server.pk),
            "server_name": server.name,
            "tool": tool,
            "arguments": arguments if keep else None,
            "arguments_truncated": not keep,
            **extra,
        }
    }


@transaction.atomic
def _append_to_chat(
    *,
    user: AbstractBaseUser,
    project: Project,
    server: McpServer,
    tool: str,
    arguments: dict,
    text: str,
    is_error: bool,
    truncated: bool = False,
    content: list[dict] | None = None,
) -> list[ChatMessage]:
    call = chat_services.chat_message_create(
        owner=user,
        project=project,
        role=ChatMessage.Role.TOOL,
        content=chat_services.chat_text(
            f"Called {tool} on {server.name} with {json.dumps(arguments)}"
        ),
        metadata=_call_metadata(server, tool, arguments, phase="call"),
    )
    result = chat_services.chat_message_create(
        owner=user,
        project=project,
        role=ChatMessage.Role.TOOL,
        content=chat_services.chat_text(text, empty="(empty result)"),
        metadata=_call_metadata(
            server,
            tool,
            arguments,
            phase="result",
            is_error=is_error,
            truncated=truncated,
            # The text is the message itself; the other blocks are shown beside it.
            **({"content": _chat_blocks(content)} if content else {}),
        ),
        metadata_limit=_chat_metadata_limit(),
    )
    return [call, result]


def _chat_blocks(content: list[dict]) -> list[dict]:
    return [block for block in content if block["type"] != "text"]


def _chat_metadata_limit() -> int:
    # Binary data is base64 (4 bytes for 3); resource text may double as JSON escapes it.
    return MAX_METADATA_BYTES + 2 * settings.MCP_BINARY_MAX_BYTES + 2 * MAX_CONTENT_LENGTH


def _cut_text(text: str) -> tuple[str, bool]:
    limit = settings.MCP_RESULT_MAX_CHARS
    if len(text) > limit:
        return f"{text[:limit]}\n… [truncated: {limit:,} of {len(text):,} characters shown]", True
    return text, False


def _truncate(text: str, structured, content: list[dict]):
    """The result within MCP_RESULT_MAX_CHARS: the text, each text in a block, and structured
    content (dropped when longer). Binary blocks were capped by the client."""
    text, truncated = _cut_text(text)
    if structured is not None and len(_canonical(structured)) > settings.MCP_RESULT_MAX_CHARS:
        structured, truncated = None, True
    blocks = []
    for block in content:
        if isinstance(block.get("text"), str):
            cut, was_cut = _cut_text(block["text"])
            block, truncated = {**block, "text": cut}, truncated or was_cut
        blocks.append(block)
    return text, structured, blocks, truncated


def _hand_back_database_connection() -> None:
    """Return this thread's database connection (to the pool) before waiting on a server, so a
    slow call does not hold one; Django opens another when the request next needs it. Inside a
    transaction the connection is the transaction's and stays."""
    if not connection.in_atomic_block:
        connection.close()


def _raise_call_failure(
    exc: mcp_client.McpClientError,
    *,
    user: AbstractBaseUser,
    server: McpServer,
    tool: str,
    arguments: dict,
    project: Project | None,
) -> None:
    """The domain error for a failed call; a tool's own error is noted in the chat first."""
    logger.info("MCP call %s/%s by user %s failed: %s", server.pk, tool, user.pk, exc.kind)
    if server.authentication == McpServer.Authentication.OAUTH and exc.kind in (
        exc.NEEDS_OAUTH,
        exc.INSUFFICIENT_SCOPE,
    ):
        # The server refused the token: sign in again (with the scopes it now asks for).
        oauth_services.oauth_mark_needs_sign_in(
            user=user,
            server=server,
            detail=exc.kind,
            step_up=(exc.scope or "*") if exc.kind == exc.INSUFFICIENT_SCOPE else None,
        )
        raise oauth_services.NeedsSignIn(
            server,
            f"{server.name} refused your sign-in"
            + (" and asks for more permissions" if exc.kind == exc.INSUFFICIENT_SCOPE else "")
            + ".",
        )
    if exc.kind == exc.TOOL_CHANGED:
        raise Conflict(exc.message, code="tools_changed")
    if exc.kind in (exc.TOOL_ERROR, exc.OUTPUT_INVALID):
        if project is not None:
            _append_to_chat(
                user=user,
                project=project,
                server=server,
                tool=tool,
                arguments=arguments,
                text=exc.message,
                is_error=True,
            )
        code = "mcp_output_invalid" if exc.kind == exc.OUTPUT_INVALID else None
        raise McpToolFailed(exc.message, code=code)
    if exc.kind == exc.TIMEOUT:
        raise McpServerTimeout(exc.message)
    if exc.kind == exc.REFUSED:
        raise Invalid(exc.message)
    raise McpServerUnavailable(exc.message)


def _session_key(server: McpServer, user: AbstractBaseUser, headers: dict, values: dict) -> str:
    """The key of the session a call may reuse: a different URL, transport, header, credential
    value or any edit of the server (its updated_at) is a different session."""
    return mcp_sessions.session_key(
        server_id=server.pk,
        user_id=user.pk,
        material={
            "url": server.url,
            "transport": server.transport,
            "edited": server.updated_at.isoformat() if server.updated_at else "",
            "headers": headers,
            "values": values,
        },
    )


def mcp_tool_call(
    *,
    user: AbstractBaseUser,
    server: McpServer,
    tool: str,
    arguments,
    project: Project | None = None,
    on_progress: Callable[[dict], None] | None = None,
) -> dict:
    """Call one tool of a server with the user's own credentials (call_mcp_tool).

    Refused before any network traffic when the server is not the user's to see or not active,
    its tools changed since approval, the tool is unknown or disabled, the arguments do not
    match the tool's input schema, or a required credential has no value. With a project, the
    call and its result are appended to that project's chat as `tool` messages.
    `on_progress({progress, total, message})` hears the server's progress while the tool runs.
    """
    server = selectors.mcp_server_get_for_user(user=user, pk=server.pk)
    if project is not None:
        project = project_selectors.project_get_for_user(user=user, pk=project.pk)
    if server.status != McpServer.Status.ACTIVE:
        raise Invalid("This MCP server is not active.", code="server_inactive")
    if server.transport == McpServer.Transport.STDIO:
        raise Invalid("stdio servers are catalogued but never run by the web application.")
    if server.tools_changed and not server.tools_fingerprint:
        raise Conflict(
            "The tools of this server await an administrator's first approval; no call is "
            "made before it.",
            code="tools_changed",
        )
    if server.tools_changed:
        raise Conflict(
            "The tools of this server changed since they were approved; an administrator must "
            "review them before any call.",
            code="tools_changed",
        )
    definition = next((t for t in server.visible_tools if t.get("name") == tool), None)
    if definition is None:
        raise NotFound("Tool not found.")
    reason = selectors.mcp_tool_not_callable_reason(definition)
    if reason:
        raise Invalid(reason, code="tool_not_callable")
    _validate_arguments(definition, arguments)
    pinned = mcp_tool_fingerprint(definition)

    def verify(current: dict | None) -> None:
        if current is None or mcp_tool_fingerprint(current) != pinned:
            raise mcp_client.McpClientError(
                mcp_client.McpClientError.TOOL_CHANGED,
                "The tool no longer matches the approved list; an administrator must review it.",
            )

    # At the cap the user hears "busy" before any credential is decrypted.
    with limits.call_slot(user_id=user.pk):
        if server.authentication == McpServer.Authentication.OAUTH:
            # Refreshed first if it is about to expire; NeedsSignIn when not connected.
            token = oauth_services.oauth_access_token(user=user, server=server)
            values = {"oauth access token": token}
            headers = {**_fill_headers(server, {}), "Authorization": f"Bearer {token}"}
        else:
            values = _call_values(user=user, server=server)
            security_signals.credentials_used(user=user, count=len(values))
            headers = _fill_headers(server, values)
        _hand_back_database_connection()
        try:
            result = mcp_client.call_tool(
                url=server.url,
                transport=server.transport,
                headers=headers,
                timeout=_connect_timeout(),
                call_timeout=server.call_timeout,
                tool=tool,
                arguments=arguments,
                secrets=values.values(),
                verify_tool=verify,
                max_binary_bytes=settings.MCP_BINARY_MAX_BYTES,
                session_key=_session_key(server, user, headers, values),
                on_progress=on_progress,
            )
        except mcp_client.McpClientError as exc:
            failure = exc
        else:
            failure = None
        if failure is not None and failure.kind == failure.TOOL_CHANGED:
            mcp_server_check(server=server, user=user)  # records the new list for review
    if failure is None:
        try:
            _validate_output(definition, result.structured_content)
        except McpToolFailed as exc:  # noted in the chat like a tool's own error
            failure = mcp_client.McpClientError(
                mcp_client.McpClientError.OUTPUT_INVALID, exc.message
            )
    if failure is not None:
        _raise_call_failure(
            failure, user=user, server=server, tool=tool, arguments=arguments, project=project
        )
    text, structured, content, truncated = _truncate(
        result.text, result.structured_content, result.content
    )
    messages = []
    if project is not None:
        messages = _append_to_chat(
            user=user,
            project=project,
            server=server,
            tool=tool,
            arguments=arguments,
            text=text,
            is_error=False,
            truncated=truncated,
            content=content,
        )
    logger.info("MCP call %s/%s by user %s ok", server.pk, tool, user.pk)
    return {
        "server": str(server.pk),
        "tool": tool,
        "protocol_version": result.protocol_version,
        "text": text,
        "structured_content": structured,
        "content": content,
        "truncated": truncated,
        "chat_message_ids": [message.pk for message in messages],
    }
