"""The tools the assistant may call for one user in one project: the project's own (list, read,
write a file) and the enabled tools of the MCP servers the user may use. Every call goes through
the same services a person's request does, so their rules apply unchanged; no credential value
is ever part of a definition or a result the model sees (MCP results come back redacted)."""

import hashlib
import json
import re
from dataclasses import dataclass

from django.contrib.auth.models import AbstractBaseUser

from config.errors import DomainError
from mcp_servers.models import McpServer
from mcp_servers.selectors import (
    mcp_server_list_callable_for_user,
    mcp_tool_is_destructive,
    mcp_tool_not_callable_reason,
)
from mcp_servers.services import mcp_tool_call
from projects import selectors as project_selectors
from projects import services as project_services
from projects.models import Project

# The most of one result the model reads; the rest is cut with a note.
MAX_RESULT_CHARS = 20_000
_NAME_UNSAFE = re.compile(r"[^a-zA-Z0-9_-]")


@dataclass
class ToolResult:
    text: str
    is_error: bool = False
    duration_ms: int | None = None


@dataclass
class Tool:
    name: str  # as the model knows it
    label: str  # as the user reads it
    description: str
    parameters: dict
    destructive: bool
    server: McpServer | None = None
    mcp_name: str = ""

    def call_label(self, arguments: dict) -> str:
        """What one call does, for the user: "Write src/app.py" rather than "Write a file"."""
        path = arguments.get("path")
        if self.server is None and isinstance(path, str) and self.name != "list_files":
            return f"{self.name.split('_')[0].capitalize()} {path[:200]}"
        return self.label

    def definition(self) -> dict:
        return {
            "type": "function",
            "function": {
                "name": self.name,
                "description": self.description[:1024],
                "parameters": self.parameters,
            },
        }


PROJECT_TOOLS = [
    Tool(
        name="list_files",
        label="List the project's files",
        description="List the paths and sizes of the files in the project.",
        parameters={"type": "object", "properties": {}, "additionalProperties": False},
        destructive=False,
    ),
    Tool(
        name="read_file",
        label="Read a file",
        description="Read the text of one file of the project.",
        parameters={
            "type": "object",
            "properties": {"path": {"type": "string", "description": "The file's path."}},
            "required": ["path"],
            "additionalProperties": False,
        },
        destructive=False,
    ),
    Tool(
        name="write_file",
        label="Write a file",
        description=(
            "Create a file in the project, or replace the content of an existing one. "
            "The user confirms every write before it happens."
        ),
        parameters={
            "type": "object",
            "properties": {
                "path": {"type": "string", "description": "The file's path, e.g. src/app.py."},
                "content": {"type": "string", "description": "The whole new content."},
            },
            "required": ["path", "content"],
            "additionalProperties": False,
        },
        destructive=True,
    ),
]


def _mcp_tool_name(server: McpServer, tool_name: str, taken: set[str]) -> str:
    """`slug__tool`, within the API's name alphabet and 64 characters; a digest keeps it unique."""
    name = _NAME_UNSAFE.sub("_", f"{server.slug}__{tool_name}")
    if len(name) > 64 or name in taken:
        digest = hashlib.sha256(f"{server.pk}/{tool_name}".encode()).hexdigest()[:10]
        name = f"{_NAME_UNSAFE.sub('_', tool_name)[:50]}_{digest}"
    return name


class Toolbox:
    """The tools of one turn, looked up by the name the model uses."""

    def __init__(self, *, user: AbstractBaseUser, project: Project):
        self.user = user
        self.project = project
        self.tools: dict[str, Tool] = {tool.name: tool for tool in PROJECT_TOOLS}
        for server in mcp_server_list_callable_for_user(user=user):
            for definition in server.visible_tools:
                if mcp_tool_not_callable_reason(definition):
                    continue  # never offered to the model: every call would be refused
                name = _mcp_tool_name(server, definition["name"], set(self.tools))
                schema = definition.get("input_schema") or {}
                if schema.get("type") != "object":
                    schema = {"type": "object", "properties": {}}
                self.tools[name] = Tool(
                    name=name,
                    label=f"{definition['name']} on {server.name}",
                    description=definition.get("description") or definition["name"],
                    parameters=schema,
                    destructive=mcp_tool_is_destructive(definition),
                    server=server,
                    mcp_name=definition["name"],
                )

    def definitions(self) -> list[dict]:
        return [tool.definition() for tool in self.tools.values()]

    def get(self, name: str) -> Tool | None:
        return self.tools.get(name)

    def run(self, tool: Tool, arguments: dict, on_progress=None) -> ToolResult:
        """Run one tool; `on_progress({progress, total, message})` hears an MCP tool's progress
        while it runs."""
        try:
            if tool.server is not None:
                result = mcp_tool_call(
                    user=self.user,
                    server=tool.server,
                    tool=tool.mcp_name,
                    arguments=arguments,
                    on_progress=on_progress,
                )
                text = result["text"]
                if not text.strip() and result.get("structured_content") is not None:
                    text = json.dumps(result["structured_content"])
                return _cut(ToolResult(text or "(empty result)"))
            return _cut(getattr(self, f"_{tool.name}")(arguments))
        except DomainError as exc:
            return ToolResult(exc.message, is_error=True)

    # The project's own tools: the project is read again for its owner at each call.
    def _project(self) -> Project:
        return project_selectors.project_get_for_user(user=self.user, pk=self.project.pk)

    def _list_files(self, arguments: dict) -> ToolResult:
        files = project_selectors.project_file_list(project=self._project()).values_list(
            "path", "size"
        )
        lines = [f"{path} ({size:,} bytes)" for path, size in files]
        return ToolResult("\n".join(lines) if lines else "The project has no files yet.")

    def _read_file(self, arguments: dict) -> ToolResult:
        path = _string(arguments, "path")
        project_file = project_selectors.project_file_get(project=self._project(), path=path)
        return ToolResult(project_file.content)

    def _write_file(self, arguments: dict) -> ToolResult:
        path, content = _string(arguments, "path"), _string(arguments, "content")
        project_file, created = project_services.project_file_put(
            project=self._project(), path=path, content=content
        )
        verb = "Created" if created else "Updated"
        return ToolResult(f"{verb} {project_file.path} ({project_file.size:,} bytes).")


def _string(arguments: dict, key: str) -> str:
    value = arguments.get(key)
    if not isinstance(value, str):
        raise DomainError(f"`{key}` must be a string.")
    return value


def _cut(result: ToolResult) -> ToolResult:
    if len(result.text) > MAX_RESULT_CHARS:
        shown = result.text[:MAX_RESULT_CHARS]
        result.text = f"{shown}\n… [cut: {MAX_RESULT_CHARS:,} of {len(result.text):,} characters]"
    return result
