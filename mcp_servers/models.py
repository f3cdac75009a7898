import re
import uuid

from django.conf import settings
from django.contrib.auth.models import Group
from django.core.exceptions import ValidationError
from django.core.validators import MaxLengthValidator, MinValueValidator, URLValidator
from django.db import models
from django.db.models import Q

from credentials.crypto import TolerantEncryptedTextField

CREDENTIAL_KEY_RE = re.compile(r"^[A-Z][A-Z0-9_]{0,63}$")
HEADER_PLACEHOLDER_RE = re.compile(r"\{\{\s*([A-Za-z0-9_]+)\s*\}\}")


def validate_credential_spec(value) -> None:
    if not isinstance(value, list):
        raise ValidationError("The credential spec must be a list.", code="credential_spec")
    keys: set[str] = set()
    for index, entry in enumerate(value):
        if not isinstance(entry, dict):
            raise ValidationError(f"Entry {index} must be an object.", code="credential_spec")
        unknown = set(entry) - {"key", "label", "required", "secret", "shared"}
        if unknown:
            raise ValidationError(
                f"Entry {index} has unknown fields: {', '.join(sorted(unknown))}.",
                code="credential_spec",
            )
        key = entry.get("key")
        if not isinstance(key, str) or not CREDENTIAL_KEY_RE.match(key):
            raise ValidationError(
                f"Entry {index}: the key must match [A-Z][A-Z0-9_]{{0,63}}.",
                code="credential_spec",
            )
        if key in keys:
            raise ValidationError(f"The key {key} appears twice.", code="credential_spec")
        keys.add(key)
        if "label" in entry and not isinstance(entry["label"], str):
            raise ValidationError(f"Entry {index}: label must be text.", code="credential_spec")
        for flag in ("required", "secret", "shared"):
            if flag in entry and not isinstance(entry[flag], bool):
                raise ValidationError(
                    f"Entry {index}: {flag} must be true or false.", code="credential_spec"
                )


def validate_args(value) -> None:
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise ValidationError("Arguments must be a list of strings.", code="args")


def validate_string_list(value) -> None:
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise ValidationError("Must be a list of names.", code="invalid")


def validate_headers(value) -> None:
    if not isinstance(value, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in value.items()
    ):
        raise ValidationError("Headers must be an object of text values.", code="headers")


class McpServer(models.Model):
    class Transport(models.TextChoices):
        STREAMABLE_HTTP = "streamable_http", "Streamable HTTP"
        SSE = "sse", "SSE"
        STDIO = "stdio", "stdio"

    class Status(models.TextChoices):
        ACTIVE = "active"
        INACTIVE = "inactive"
        DELETED = "deleted"

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    name = models.CharField(max_length=100)
    slug = models.SlugField(max_length=100, unique=True)
    description = models.TextField(blank=True, validators=[MaxLengthValidator(5000)])
    transport = models.CharField(max_length=20, choices=Transport.choices)
    url = models.URLField(  # noqa: DJ001 - the contract says null for stdio servers
        max_length=500, null=True, blank=True, validators=[URLValidator(schemes=["http", "https"])]
    )
    command = models.CharField(max_length=500, blank=True)
    args = models.JSONField(default=list, blank=True, validators=[validate_args])
    credential_spec = models.JSONField(
        default=list, blank=True, validators=[validate_credential_spec]
    )
    headers = models.JSONField(default=dict, blank=True, validators=[validate_headers])
    # A tool call's wait for its answer; empty means MCP_TIMEOUT_SECONDS. Never more than
    # MCP_MAX_CALL_TIMEOUT_SECONDS (checked in clean, and again when used).
    call_timeout_seconds = models.PositiveIntegerField(
        null=True, blank=True, validators=[MinValueValidator(1)]
    )

    class Authentication(models.TextChoices):
        NONE = "none", "None"
        KEYS = "keys", "Keys (credential spec and header templates)"
        OAUTH = "oauth", "OAuth (each user signs in)"

    authentication = models.CharField(
        max_length=10, choices=Authentication.choices, default=Authentication.KEYS
    )
    # Optional pre-registered OAuth client; without one Atelier registers itself (RFC 7591).
    oauth_client_id = models.CharField(max_length=500, blank=True)
    # Fernet-encrypted like a credential; never shown back.
    # NULL when there is none, so loading a server decrypts nothing unless it has one.
    oauth_client_secret = TolerantEncryptedTextField(null=True, blank=True, default=None)
    oauth_scopes = models.CharField(
        max_length=1000, blank=True, help_text="Space-separated; empty: what the server names."
    )
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.ACTIVE)
    deleted_at = models.DateTimeField(null=True, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class CheckStatus(models.TextChoices):
        OK = "ok"
        NEEDS_CREDENTIALS = "needs_credentials"
        NEEDS_OAUTH = "needs_oauth"
        DOWN = "down"
        REFUSED = "refused"
        NOT_RUN = "not_run"

    # Health probe results.
    last_checked_at = models.DateTimeField(null=True, blank=True)
    last_check_ok = models.BooleanField(null=True, blank=True)
    # Why a check failed, or that it was not run (stdio); empty before the first check.
    last_check_status = models.CharField(max_length=20, choices=CheckStatus.choices, blank=True)
    last_check_error = models.CharField(max_length=500, blank=True)
    server_info = models.JSONField(default=dict, blank=True)
    tools = models.JSONField(default=list, blank=True)

    # Tool pinning and access.
    tools_fingerprint = models.CharField(max_length=64, blank=True)
    tools_approved_at = models.DateTimeField(null=True, blank=True)
    tools_changed = models.BooleanField(default=False)
    # The tool list as approved, to show what a changed list added, removed or altered.
    approved_tools = models.JSONField(default=list, blank=True)
    disabled_tools = models.JSONField(default=list, blank=True, validators=[validate_string_list])
    allowed_groups = models.ManyToManyField(Group, blank=True, related_name="mcp_servers")

    class Meta:
        ordering = ["name"]
        verbose_name = "MCP server"
        # Admin powers (config/powers.py): checked by the API, the admin and the pages alike.
        permissions = [
            ("manage_mcp_servers", "Can manage MCP servers (add, change, check, delete)"),
            ("approve_mcp_tools", "Can approve the tool lists of MCP servers"),
        ]
        constraints = [
            models.UniqueConstraint(
                fields=["name"], condition=~Q(status="deleted"), name="mcp_server_name_unique_live"
            ),
            models.CheckConstraint(
                condition=Q(transport__in=["streamable_http", "sse", "stdio"]),
                name="mcp_server_transport_valid",
            ),
            models.CheckConstraint(
                condition=Q(status__in=["active", "inactive", "deleted"]),
                name="mcp_server_status_valid",
            ),
            models.CheckConstraint(
                condition=Q(
                    last_check_status__in=[
                        "",
                        "ok",
                        "needs_credentials",
                        "needs_oauth",
                        "down",
                        "refused",
                        "not_run",
                    ]
                ),
                name="mcp_server_last_check_status_valid",
            ),
            models.CheckConstraint(
                condition=Q(authentication__in=["none", "keys", "oauth"]),
                name="mcp_server_authentication_valid",
            ),
            models.CheckConstraint(
                condition=Q(transport="stdio") | (Q(url__isnull=False) & ~Q(url="")),
                name="mcp_server_http_needs_url",
            ),
            models.CheckConstraint(
                condition=~Q(transport="stdio") | ~Q(command=""),
                name="mcp_server_stdio_needs_command",
            ),
            models.CheckConstraint(
                condition=Q(status="deleted", deleted_at__isnull=False)
                | (~Q(status="deleted") & Q(deleted_at__isnull=True)),
                name="mcp_server_deleted_at_matches_status",
            ),
        ]

    def __str__(self) -> str:
        return self.name

    def clean(self) -> None:
        errors: dict[str, str] = {}
        if self.transport in (self.Transport.STREAMABLE_HTTP, self.Transport.SSE) and not self.url:
            errors["url"] = "A URL is required for HTTP and SSE servers."
        if self.transport == self.Transport.STDIO and not self.command:
            errors["command"] = "A command is required for stdio servers."
        longest = settings.MCP_MAX_CALL_TIMEOUT_SECONDS
        if self.call_timeout_seconds is not None and self.call_timeout_seconds > longest:
            errors["call_timeout_seconds"] = (
                f"A call may wait at most {longest} seconds (MCP_MAX_CALL_TIMEOUT_SECONDS)."
            )
        oauth = self.authentication == self.Authentication.OAUTH
        if oauth and self.transport == self.Transport.STDIO:
            errors["authentication"] = "OAuth needs an HTTP or SSE server."
        if isinstance(self.headers, dict) and isinstance(self.credential_spec, list):
            known = self.credential_keys
            for header, template in self.headers.items():
                if not isinstance(template, str):
                    continue
                for name in HEADER_PLACEHOLDER_RE.findall(template):
                    if name not in known:
                        errors["headers"] = (
                            f"The header {header} names {name}, "
                            "which is not in the credential spec."
                        )
        if errors:
            raise ValidationError(errors)

    @property
    def credential_keys(self) -> set[str]:
        return {entry.get("key") for entry in self.credential_spec if isinstance(entry, dict)}

    def spec_entry(self, key: str) -> dict | None:
        for entry in self.credential_spec:
            if isinstance(entry, dict) and entry.get("key") == key:
                return entry
        return None

    @property
    def call_timeout(self) -> float:
        """Seconds a tool call of this server waits for its answer."""
        if self.call_timeout_seconds:
            return float(min(self.call_timeout_seconds, settings.MCP_MAX_CALL_TIMEOUT_SECONDS))
        return float(settings.MCP_TIMEOUT_SECONDS)

    @property
    def visible_tools(self) -> list[dict]:
        disabled = set(self.disabled_tools or [])
        return [tool for tool in self.tools or [] if tool.get("name") not in disabled]


class OAuthClient(models.Model):
    """What Atelier is known as at one authorization server for one MCP server, when the admin
    configured no client id: its Client ID Metadata Document URL (where the server supports
    it), else what it registered itself as (RFC 7591). Replaced when the issuer changes."""

    mcp_server = models.OneToOneField(
        McpServer, on_delete=models.CASCADE, related_name="oauth_client"
    )
    issuer = models.CharField(max_length=500)
    redirect_uri = models.CharField(max_length=500)
    client_id = models.CharField(max_length=500)
    client_secret = TolerantEncryptedTextField(blank=True, default="")
    token_endpoint_auth_method = models.CharField(max_length=50, blank=True)
    # The client id is Atelier's metadata document URL, not a registration.
    metadata_document = models.BooleanField(default=False)
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return f"{self.client_id} at {self.issuer}"


class OAuthFlow(models.Model):
    """One sign-in under way: its `state` (stored as a sha256 only), bound to the user, their
    session and the server; single use and short-lived. The PKCE verifier is encrypted."""

    state_hash = models.CharField(max_length=64, unique=True)
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    session_hash = models.CharField(max_length=64)
    mcp_server = models.ForeignKey(McpServer, on_delete=models.CASCADE, related_name="+")
    code_verifier = TolerantEncryptedTextField()
    redirect_uri = models.CharField(max_length=500)
    client_id = models.CharField(max_length=500)
    issuer = models.CharField(max_length=500)
    token_endpoint = models.CharField(max_length=500)
    revocation_endpoint = models.CharField(max_length=500, blank=True)
    # Where the callback may learn who signed in (OpenID Connect), when the server says.
    userinfo_endpoint = models.CharField(max_length=500, blank=True)
    jwks_uri = models.CharField(max_length=500, blank=True)
    resource = models.CharField(max_length=500)
    scopes = models.CharField(max_length=1000, blank=True)
    expires_at = models.DateTimeField()
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return f"sign-in to {self.mcp_server_id} by {self.user_id}"


class OAuthConnection(models.Model):
    """A user's OAuth tokens for one MCP server, encrypted like credentials; never shown."""

    class Status(models.TextChoices):
        CONNECTED = "connected"
        NEEDS_SIGN_IN = "needs_sign_in"

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="oauth_connections"
    )
    mcp_server = models.ForeignKey(
        McpServer, on_delete=models.CASCADE, related_name="oauth_connections"
    )
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.CONNECTED)
    access_token = TolerantEncryptedTextField()
    refresh_token = TolerantEncryptedTextField(blank=True, default="")
    expires_at = models.DateTimeField(null=True, blank=True)
    scopes = models.CharField(max_length=1000, blank=True)
    # After insufficient_scope: what the next sign-in adds to its request (step-up); "*" when
    # the server named nothing, i.e. every scope its metadata lists.
    step_up_scopes = models.CharField(max_length=1000, blank=True)
    # Who the server says signed in, when it tells (shown as "Connected as …").
    account = models.CharField(max_length=200, blank=True)
    # Where the tokens came from, so a refresh or revocation needs no new discovery.
    client_id = models.CharField(max_length=500)
    issuer = models.CharField(max_length=500)
    token_endpoint = models.CharField(max_length=500)
    revocation_endpoint = models.CharField(max_length=500, blank=True)
    resource = models.CharField(max_length=500)
    connected_at = models.DateTimeField(auto_now_add=True)
    refreshed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["user", "mcp_server"], name="oauth_connection_unique_per_user"
            ),
            models.CheckConstraint(
                condition=Q(status__in=["connected", "needs_sign_in"]),
                name="oauth_connection_status_valid",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.user_id} on {self.mcp_server_id} ({self.status})"


class OAuthEvent(models.Model):
    """Append-only audit of a user's OAuth connections. Never holds a token."""

    class Action(models.TextChoices):
        CONNECTED = "connected"
        REFRESHED = "refreshed"
        REFRESH_FAILED = "refresh_failed"
        DISCONNECTED = "disconnected"

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+"
    )
    mcp_server = models.ForeignKey(
        McpServer, on_delete=models.SET_NULL, null=True, related_name="+"
    )
    action = models.CharField(max_length=20, choices=Action.choices)
    detail = models.CharField(max_length=300, blank=True)
    at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-at", "-id"]
        constraints = [
            models.CheckConstraint(
                condition=Q(
                    action__in=["connected", "refreshed", "refresh_failed", "disconnected"]
                ),
                name="oauth_event_action_valid",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.action} at {self.at:%Y-%m-%d %H:%M}"
