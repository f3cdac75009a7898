from django.contrib.auth.models import Group
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers
from rest_framework.fields import empty

from credentials.crypto import is_unreadable
from mcp_servers.models import McpServer
from mcp_servers.selectors import mcp_tool_is_destructive, mcp_tool_not_callable_reason
from mcp_servers.services import mcp_tools_diff


class ToolAnnotationsSerializer(serializers.Serializer):
    """The server's hints about a tool, as the protocol names them; claims, not guarantees."""

    title = serializers.CharField(required=False)
    readOnlyHint = serializers.BooleanField(required=False)  # camelCase: the protocol names them so
    destructiveHint = serializers.BooleanField(required=False)
    idempotentHint = serializers.BooleanField(required=False)
    openWorldHint = serializers.BooleanField(required=False)


class ToolSerializer(serializers.Serializer):
    name = serializers.CharField()
    title = serializers.CharField(required=False, help_text="The tool's display name, if given.")
    description = serializers.CharField(allow_blank=True, required=False)
    input_schema = serializers.JSONField(required=False)
    output_schema = serializers.JSONField(
        required=False, help_text="The JSON Schema its structured results are checked against."
    )
    annotations = ToolAnnotationsSerializer(required=False)
    task_support = serializers.ChoiceField(
        choices=["optional", "required"],
        required=False,
        help_text="Whether the tool runs as an MCP task; absent when it never does.",
    )
    destructive = serializers.SerializerMethodField()
    callable = serializers.SerializerMethodField()
    not_callable_reason = serializers.SerializerMethodField()

    def get_destructive(self, tool: dict) -> bool:
        """The server marks the tool as one that may destroy or overwrite data."""
        return mcp_tool_is_destructive(tool)

    def get_callable(self, tool: dict) -> bool:
        return not mcp_tool_not_callable_reason(tool)

    def get_not_callable_reason(self, tool: dict) -> str:
        return mcp_tool_not_callable_reason(tool)


class ToolsDiffSerializer(serializers.Serializer):
    """Tool names the last check found added, removed or changed against the approved list."""

    added = serializers.ListField(child=serializers.CharField())
    removed = serializers.ListField(child=serializers.CharField())
    changed = serializers.ListField(child=serializers.CharField())


@extend_schema_field(
    {
        "type": "string",
        "nullable": True,
        "enum": [*McpServer.CheckStatus.values, None],
        "description": "The last check's outcome; null until the server is first checked.",
    }
)
class CheckStatusField(serializers.ChoiceField):
    """`null` until the first check: the column stores "" (no check yet), which is not one of
    the statuses, so clients get an explicit "never checked" instead of a value off the enum."""

    def __init__(self, **kwargs):
        super().__init__(choices=McpServer.CheckStatus.choices, allow_null=True, **kwargs)

    def to_representation(self, value):
        return value or None


class OptionalUrlField(serializers.URLField):
    """An http(s) URL, or null for a stdio server; "" is taken as null. Not `allow_blank`,
    which the OpenAPI document would describe as a `nullable` without a type."""

    def run_validation(self, data=empty):
        return super().run_validation(None if data == "" else data)


@extend_schema_field(
    {
        "type": "object",
        "additionalProperties": {},
        "nullable": True,
        "description": "The tool's structured result (MCP structuredContent), if it gave one.",
    }
)
class StructuredContentField(serializers.JSONField):
    pass


class McpServerSerializer(serializers.ModelSerializer):
    """What every user sees. Never created_by, never header templates."""

    tools = serializers.SerializerMethodField()
    last_check_status = CheckStatusField(read_only=True)

    class Meta:
        model = McpServer
        fields = (
            "id",
            "name",
            "slug",
            "description",
            "transport",
            "url",
            "command",
            "args",
            "credential_spec",
            "authentication",
            "status",
            "last_checked_at",
            "last_check_ok",
            "last_check_status",
            "last_check_error",
            "server_info",
            "call_timeout_seconds",
            "tools",
            "tools_changed",
            "created_at",
            "updated_at",
        )
        read_only_fields = fields

    def get_tools(self, server: McpServer) -> list[dict]:
        return ToolSerializer(server.visible_tools, many=True).data


class McpServerAdminSerializer(McpServerSerializer):
    """What administrators see: everything but created_by."""

    allowed_groups = serializers.PrimaryKeyRelatedField(many=True, read_only=True)

    class Meta(McpServerSerializer.Meta):
        fields = (
            *McpServerSerializer.Meta.fields,
            "deleted_at",
            "headers",
            "disabled_tools",
            "allowed_groups",
            "oauth_client_id",
            "oauth_scopes",
            "oauth_client_secret_set",
            "oauth_client_secret_readable",
            "tools_fingerprint",
            "tools_approved_at",
            "approved_tools",
            "tools_diff",
        )
        read_only_fields = fields

    approved_tools = ToolSerializer(many=True, read_only=True)
    tools_diff = serializers.SerializerMethodField()
    oauth_client_secret_set = serializers.SerializerMethodField(
        help_text="Whether a client secret is stored; the secret itself is never returned."
    )
    oauth_client_secret_readable = serializers.SerializerMethodField(
        help_text="False when the stored client secret no configured key decrypts: set it again."
    )

    def get_oauth_client_secret_set(self, server: McpServer) -> bool:
        return bool(server.oauth_client_secret)

    def get_oauth_client_secret_readable(self, server: McpServer) -> bool:
        return not is_unreadable(server.oauth_client_secret)

    def get_tools(self, server: McpServer) -> list[dict]:
        return ToolSerializer(server.tools or [], many=True).data

    @extend_schema_field(ToolsDiffSerializer)
    def get_tools_diff(self, server: McpServer) -> dict:
        return mcp_tools_diff(server)


class CredentialSpecEntrySerializer(serializers.Serializer):
    key = serializers.RegexField(r"^[A-Z][A-Z0-9_]{0,63}\Z")
    label = serializers.CharField(max_length=200, required=False, allow_blank=True)
    required = serializers.BooleanField(required=False)
    secret = serializers.BooleanField(required=False)
    shared = serializers.BooleanField(required=False)


class McpServerWriteSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=100)
    slug = serializers.SlugField(max_length=100, required=False)
    description = serializers.CharField(max_length=5000, required=False, allow_blank=True)
    transport = serializers.ChoiceField(choices=McpServer.Transport.choices)
    url = OptionalUrlField(max_length=500, required=False, allow_null=True)
    command = serializers.CharField(max_length=500, required=False, allow_blank=True)
    args = serializers.ListField(
        child=serializers.CharField(max_length=500), required=False, max_length=100
    )
    credential_spec = CredentialSpecEntrySerializer(many=True, required=False)
    headers = serializers.DictField(child=serializers.CharField(max_length=2000), required=False)
    status = serializers.ChoiceField(
        choices=[McpServer.Status.ACTIVE, McpServer.Status.INACTIVE], required=False
    )
    disabled_tools = serializers.ListField(
        child=serializers.CharField(max_length=200), required=False, max_length=500
    )
    allowed_groups = serializers.PrimaryKeyRelatedField(
        many=True, queryset=Group.objects.all(), required=False
    )
    call_timeout_seconds = serializers.IntegerField(
        min_value=1,
        required=False,
        allow_null=True,
        help_text="How long a tool call waits for its answer; null for MCP_TIMEOUT_SECONDS. "
        "At most MCP_MAX_CALL_TIMEOUT_SECONDS.",
    )
    authentication = serializers.ChoiceField(
        choices=McpServer.Authentication.choices, required=False
    )
    oauth_client_id = serializers.CharField(max_length=500, required=False, allow_blank=True)
    oauth_client_secret = serializers.CharField(
        max_length=4096, required=False, allow_blank=True, write_only=True
    )
    oauth_scopes = serializers.CharField(max_length=1000, required=False, allow_blank=True)

    def validate_url(self, value):
        if value and not value.lower().startswith(("http://", "https://")):
            raise serializers.ValidationError("Only http and https URLs are allowed.")
        return value or None


class ToolCallSerializer(serializers.Serializer):
    arguments = serializers.DictField(
        required=False,
        default=dict,
        help_text="The tool's arguments, checked against its input schema before the call.",
    )
    project = serializers.UUIDField(
        required=False,
        allow_null=True,
        help_text="One of your projects: the call and its result are appended to its chat.",
    )


class ContentBlockSerializer(serializers.Serializer):
    """One block of a tool's result, typed as MCP types it."""

    type = serializers.ChoiceField(
        choices=["text", "image", "audio", "resource", "resource_link", "unknown"]
    )
    text = serializers.CharField(
        required=False, allow_blank=True, help_text="text; resource with text contents"
    )
    mime_type = serializers.CharField(required=False, allow_null=True)
    data = serializers.CharField(
        required=False,
        allow_null=True,
        help_text="image, audio: base64; null when omitted above MCP_BINARY_MAX_BYTES",
    )
    blob = serializers.CharField(
        required=False,
        allow_null=True,
        help_text="resource with binary contents: base64; null when omitted",
    )
    uri = serializers.CharField(required=False, help_text="resource, resource_link")
    name = serializers.CharField(required=False, help_text="resource_link")
    title = serializers.CharField(required=False)
    description = serializers.CharField(required=False)
    size = serializers.IntegerField(required=False, help_text="Decoded bytes of binary data.")
    omitted = serializers.BooleanField(required=False)
    note = serializers.CharField(required=False, help_text="Why the data was not kept.")

    def to_representation(self, instance: dict) -> dict:
        # A block carries only the fields of its type: no `data: null` on a text block.
        return {key: value for key, value in instance.items() if key in self.fields}


class ToolCallResultSerializer(serializers.Serializer):
    server = serializers.UUIDField()
    tool = serializers.CharField()
    protocol_version = serializers.CharField(help_text="The MCP revision agreed with the server.")
    text = serializers.CharField(
        allow_blank=True, help_text="The result's text, truncated above MCP_RESULT_MAX_CHARS."
    )
    structured_content = StructuredContentField(allow_null=True)
    content = ContentBlockSerializer(
        many=True, help_text="Every content block of the result, in order, typed."
    )
    truncated = serializers.BooleanField()
    chat_message_ids = serializers.ListField(
        child=serializers.IntegerField(),
        help_text="The two `tool` messages written to the project's chat, if one was given.",
    )


class OAuthStartResultSerializer(serializers.Serializer):
    authorization_url = serializers.URLField(
        help_text="Open it in the browser: the server's sign-in page, which comes back to "
        "Atelier's callback page (as the same user) within 10 minutes."
    )


class OAuthConnectionSerializer(serializers.Serializer):
    """Your connection to an OAuth server: never a token."""

    status = serializers.ChoiceField(choices=["not_connected", "connected", "needs_sign_in"])
    connected = serializers.BooleanField()
    account = serializers.CharField(
        required=False,
        allow_blank=True,
        help_text="Who signed in, as the server told (UserInfo or a verified ID token); "
        "empty when it did not tell.",
    )
    scopes = serializers.ListField(child=serializers.CharField(), required=False)
    expires_at = serializers.DateTimeField(required=False, allow_null=True)
    connected_at = serializers.DateTimeField(required=False)
    refreshed_at = serializers.DateTimeField(required=False, allow_null=True)
