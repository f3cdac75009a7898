import json
import re
from urllib.parse import urlsplit

from django import template

from mcp_servers import selectors

register = template.Library()


@register.filter
def as_json(value) -> str:
    """Tool arguments as readable JSON (autoescaped by the template like any text)."""
    return json.dumps(value, indent=2, ensure_ascii=False, sort_keys=True)


# A MIME type as a data: URL may carry it: nothing that could close the attribute or add
# parameters. Anything else is shown as a download of application/octet-stream.
_MIME_RE = re.compile(r"^[a-z0-9][a-z0-9.+-]*/[a-z0-9][a-z0-9.+-]*$")
_BASE64_RE = re.compile(r"^[A-Za-z0-9+/=\s]*$")


def _mime(block: dict, default: str = "application/octet-stream") -> str:
    mime = str(block.get("mime_type") or "").lower().strip()
    return mime if _MIME_RE.match(mime) else default


@register.simple_tag
def block_data_url(block: dict, key: str = "data") -> str:
    """`data:<mime>;base64,<data>` for an image, audio or blob block whose data was kept (and is
    base64); empty otherwise. The page's CSP allows data: for images and media only."""
    data = block.get(key)
    if not isinstance(data, str) or not _BASE64_RE.match(data):
        return ""
    mime = _mime(block)
    if block.get("type") == "image" and not mime.startswith("image/"):
        mime = "application/octet-stream"
    return f"data:{mime};base64,{''.join(data.split())}"


@register.filter
def web_link(uri) -> str:
    """The URI if a browser may follow it from the chat (http or https), else empty: a server's
    `javascript:` or `data:` link is shown as text, never as a link."""
    uri = str(uri or "")
    return uri if urlsplit(uri).scheme.lower() in ("http", "https") else ""


@register.filter
def download_name(block: dict) -> str:
    """A file name for a resource: the last segment of its URI, in safe characters."""
    path = urlsplit(str(block.get("uri") or "")).path
    name = re.sub(r"[^A-Za-z0-9._-]", "_", path.rsplit("/", 1)[-1])[:100].strip("._")
    return name or "resource"


@register.filter
def is_destructive(tool: dict) -> bool:
    return selectors.mcp_tool_is_destructive(tool)


@register.filter
def not_callable_reason(tool: dict) -> str:
    return selectors.mcp_tool_not_callable_reason(tool)


@register.filter
def tool_hints(tool: dict) -> str:
    """The server's hints in words, e.g. "read-only, idempotent"."""
    return ", ".join(selectors.hint_labels(tool))
