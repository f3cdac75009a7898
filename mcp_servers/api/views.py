from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import (
    OpenApiParameter,
    OpenApiResponse,
    extend_schema,
    extend_schema_view,
)
from rest_framework import mixins, status
from rest_framework.decorators import action
from rest_framework.permissions import IsAuthenticated
from rest_framework.response import Response

from config import powers
from config.api.permissions import AdminPower
from config.api.schema import error
from config.api.throttling import McpCallThrottle, SensitiveThrottle
from config.api.viewsets import OwnerScopedViewSet
from mcp_servers import oauth_services, selectors, services
from mcp_servers.api.serializers import (
    McpServerAdminSerializer,
    McpServerSerializer,
    McpServerWriteSerializer,
    OAuthConnectionSerializer,
    OAuthStartResultSerializer,
    ToolCallResultSerializer,
    ToolCallSerializer,
)
from mcp_servers.models import McpServer
from projects import selectors as project_selectors

SERVER_ID = OpenApiParameter("id", OpenApiTypes.UUID, OpenApiParameter.PATH)
NAME_TAKEN = error(409, "Another server has this name or slug (`name_taken`).")
STATUS = OpenApiParameter(
    "status",
    str,
    enum=["active", "inactive", "deleted"],
    description="Administrators only; ignored for other users, who see active servers.",
)


@extend_schema_view(
    # Staff get the same objects with more fields, which the user schema allows.
    list=extend_schema(parameters=[STATUS], responses={200: McpServerSerializer(many=True)}),
    retrieve=extend_schema(parameters=[SERVER_ID], responses={200: McpServerSerializer}),
    create=extend_schema(
        request=McpServerWriteSerializer,
        responses={201: McpServerAdminSerializer, 409: NAME_TAKEN},
    ),
    partial_update=extend_schema(
        parameters=[SERVER_ID],
        request=McpServerWriteSerializer,
        responses={200: McpServerAdminSerializer, 409: NAME_TAKEN},
    ),
    update=extend_schema(
        parameters=[SERVER_ID],
        request=McpServerWriteSerializer,
        responses={200: McpServerAdminSerializer, 409: NAME_TAKEN},
    ),
    destroy=extend_schema(parameters=[SERVER_ID], responses={204: None}),
    check=extend_schema(
        summary="Check the server now (administrators)",
        description=(
            "Runs the live probe: negotiates the protocol, lists the tools and records the "
            "outcome (`last_check_*`, `server_info`, `tools`). A failed check is still a 200 "
            "whose `last_check_status` says why: `down`, `needs_credentials` or `refused`; "
            "stdio servers are never run (`not_run`). The first successful check pins the "
            "tool list; a later different list sets `tools_changed`."
        ),
        parameters=[SERVER_ID],
        request=None,
        responses={
            200: McpServerAdminSerializer,
            403: OpenApiResponse(description="Without the admin power"),
            404: OpenApiResponse(description="No such server"),
        },
    ),
    approve_tools=extend_schema(
        summary="Approve the current tool list (administrators)",
        description="Pins the tool list of the last check and clears `tools_changed`.",
        parameters=[SERVER_ID],
        request=None,
        responses={
            200: McpServerAdminSerializer,
            400: OpenApiResponse(description="The server was never checked"),
            403: OpenApiResponse(description="Without the admin power"),
            404: OpenApiResponse(description="No such server"),
        },
    ),
    call_tool=extend_schema(
        summary="Call one of the server's tools with your own credentials",
        description=(
            "Fills the server's header templates from your own credentials (shared keys from "
            "the administrator's value), checks the arguments against the tool's input schema, "
            "calls the tool with the server's call timeout (MCP_TIMEOUT_SECONDS unless set) and "
            "returns its result, each content block typed (`content`). With "
            "`project`, the call and its result are appended to that project's chat as two "
            "messages of role `tool`, the call in their `metadata.mcp_call`."
        ),
        parameters=[
            SERVER_ID,
            OpenApiParameter("tool_name", str, OpenApiParameter.PATH, description="The tool"),
        ],
        request=ToolCallSerializer,
        responses={
            200: ToolCallResultSerializer,
            400: OpenApiResponse(
                description="Arguments that do not match the tool's input schema, a required "
                "credential without a value (no call was made), an inactive or stdio server, "
                "or an address the guard refuses"
            ),
            404: OpenApiResponse(
                description="No such server for you (group scoping), no such enabled tool, "
                "or a project that is not yours"
            ),
            409: OpenApiResponse(description="The tools changed and await an administrator"),
            502: OpenApiResponse(
                description="The server could not be reached, refused the credentials, "
                "or the tool reported an error"
            ),
            504: OpenApiResponse(description="The server did not answer in time"),
            429: OpenApiResponse(
                description="You already have MCP_MAX_CALLS_PER_USER calls running (or a "
                "rate limit); Retry-After says when to try again"
            ),
            503: OpenApiResponse(
                description="Too many calls are running on the site; Retry-After says when to "
                "try again"
            ),
        },
    ),
)
class McpServerViewSet(
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    mixins.CreateModelMixin,
    mixins.UpdateModelMixin,
    mixins.DestroyModelMixin,
    OwnerScopedViewSet,
):
    """The curated catalogue: users read active servers, administrators manage them."""

    # Scoped like what one owns elsewhere: to the servers the caller may see (groups, status).

    queryset = McpServer.objects.none()  # the model, for the schema
    list_selector = selectors.mcp_server_list_for_user
    get_selector = selectors.mcp_server_get_for_user

    def get_permissions(self):
        if self.action in ("list", "retrieve", "call_tool", "oauth", "oauth_start"):
            return [IsAuthenticated()]
        if self.action == "approve_tools":
            return [AdminPower(powers.APPROVE_MCP_TOOLS)]
        # Every other action changes a server (or probes it with the shared keys).
        return [AdminPower(powers.MANAGE_MCP_SERVERS)]

    def get_throttles(self):
        throttles = super().get_throttles()
        if self.action == "call_tool":
            throttles.append(McpCallThrottle())
        elif self.action == "oauth_start":
            throttles.append(SensitiveThrottle())  # shared with the chat page's tool runs
        elif self.action == "check":
            throttles.append(SensitiveThrottle())
        return throttles

    def get_serializer_class(self):
        if self.request and selectors.user_curates_mcp_servers(self.request.user):
            return McpServerAdminSerializer
        return McpServerSerializer

    def selector_filters(self):
        status_filter = self.request.query_params.get("status")
        return {"status": status_filter if status_filter in McpServer.Status.values else None}

    def get_queryset(self):
        queryset = super().get_queryset()
        if selectors.user_curates_mcp_servers(self.request.user):  # they see the allowed groups
            queryset = queryset.prefetch_related("allowed_groups")
        return queryset

    def create(self, request, *args, **kwargs):
        serializer = McpServerWriteSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        server = services.mcp_server_create(actor=request.user, **serializer.validated_data)
        return Response(McpServerAdminSerializer(server).data, status=status.HTTP_201_CREATED)

    def update(self, request, *args, **kwargs):
        partial = kwargs.pop("partial", False)
        server = self.get_object()
        serializer = McpServerWriteSerializer(data=request.data, partial=partial)
        serializer.is_valid(raise_exception=True)
        server = services.mcp_server_update(server=server, **serializer.validated_data)
        return Response(McpServerAdminSerializer(server).data)

    def destroy(self, request, *args, **kwargs):
        services.mcp_server_delete(server=self.get_object())
        return Response(status=status.HTTP_204_NO_CONTENT)

    @action(detail=True, methods=["post"])
    def check(self, request, pk=None):
        server = services.mcp_server_check(server=self.get_object(), user=request.user)
        return Response(McpServerAdminSerializer(server).data)

    @action(detail=True, methods=["post"], url_path="approve-tools")
    def approve_tools(self, request, pk=None):
        server = services.mcp_server_approve_tools(server=self.get_object(), actor=request.user)
        return Response(McpServerAdminSerializer(server).data)

    @action(detail=True, methods=["post"], url_path=r"tools/(?P<tool_name>[^/]+)/call")
    def call_tool(self, request, pk=None, tool_name=None):
        serializer = ToolCallSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        server = self.get_object()
        project_id = serializer.validated_data.get("project")
        project = (
            project_selectors.project_get_for_user(user=request.user, pk=project_id)
            if project_id
            else None
        )
        result = services.mcp_tool_call(
            user=request.user,
            server=server,
            tool=tool_name,
            arguments=serializer.validated_data["arguments"],
            project=project,
        )
        return Response(ToolCallResultSerializer(result).data)

    @extend_schema(
        summary="Start signing in to an OAuth server",
        description=(
            "Discovers the server's authorization server (RFC 9728, RFC 8414), registers "
            "Atelier there if no client is configured, and returns the sign-in URL (PKCE S256, "
            "a single-use `state` valid 10 minutes, the `resource`). Open it in a browser "
            "logged in to Atelier as the same user; the server sends the browser back to "
            "Atelier's callback page, which stores the tokens."
        ),
        parameters=[SERVER_ID],
        request=None,
        responses={
            200: OAuthStartResultSerializer,
            400: OpenApiResponse(description="Not an OAuth server, or not active"),
            404: OpenApiResponse(description="No such server for you"),
            502: OpenApiResponse(
                description="The server's sign-in cannot be used (refused address, metadata)"
            ),
        },
    )
    @action(detail=True, methods=["post"], url_path="oauth/start")
    def oauth_start(self, request, pk=None):
        server = self.get_object()
        session = getattr(request, "session", None)
        url = oauth_services.oauth_start(
            user=request.user,
            server=server,
            redirect_uri=oauth_services.oauth_redirect_uri(request),
            # A browser session binds the flow to itself; an API token binds it to the user.
            session_key=session.session_key if session is not None else None,
            client_metadata_url=oauth_services.oauth_client_metadata_url(request),
        )
        return Response({"authorization_url": url})

    @extend_schema(
        methods=["GET"],
        summary="Your connection to an OAuth server (never a token)",
        parameters=[SERVER_ID],
        responses={200: OAuthConnectionSerializer},
    )
    @extend_schema(
        methods=["DELETE"],
        summary="Disconnect: revoke the tokens where the server offers it, then delete them",
        parameters=[SERVER_ID],
        request=None,
        responses={204: None},
    )
    @action(detail=True, methods=["get", "delete"], url_path="oauth")
    def oauth(self, request, pk=None):
        server = self.get_object()
        if request.method == "DELETE":
            oauth_services.oauth_disconnect(user=request.user, server=server)
            return Response(status=status.HTTP_204_NO_CONTENT)
        state = oauth_services.oauth_connection_state(user=request.user, server=server)
        return Response(OAuthConnectionSerializer(state).data)
