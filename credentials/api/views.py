import uuid

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_view
from rest_framework import mixins, status
from rest_framework.response import Response

from config.api.schema import error
from config.api.viewsets import OwnerScopedViewSet
from config.errors import Invalid, NotFound
from credentials import selectors, services
from credentials.api.serializers import (
    CredentialCreateSerializer,
    CredentialSerializer,
    CredentialUpdateSerializer,
)
from credentials.models import Credential
from mcp_servers.selectors import mcp_server_list_for_user

CREDENTIAL_ID = OpenApiParameter("id", OpenApiTypes.INT, OpenApiParameter.PATH)


def client_ip(request) -> str | None:
    return request.META.get("REMOTE_ADDR") or None


@extend_schema_view(
    list=extend_schema(
        parameters=[OpenApiParameter("mcp_server", OpenApiTypes.UUID, description="Server id")]
    ),
    retrieve=extend_schema(parameters=[CREDENTIAL_ID]),
    create=extend_schema(
        request=CredentialCreateSerializer,
        responses={
            201: CredentialSerializer,
            409: error(409, "You already have a value for this key on this server."),
        },
    ),
    partial_update=extend_schema(
        parameters=[CREDENTIAL_ID],
        request=CredentialUpdateSerializer,
        responses={200: CredentialSerializer},
    ),
    destroy=extend_schema(parameters=[CREDENTIAL_ID], responses={204: None}),
)
class CredentialViewSet(
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    mixins.CreateModelMixin,
    mixins.UpdateModelMixin,
    mixins.DestroyModelMixin,
    OwnerScopedViewSet,
):
    """The caller's own credentials. `value` is write-only: no response ever contains it."""

    serializer_class = CredentialSerializer
    queryset = Credential.objects.none()  # the model, for the schema
    list_selector = selectors.credential_list_for_user
    get_selector = selectors.credential_get_for_user
    http_method_names = ("get", "post", "patch", "delete", "head", "options")

    def selector_filters(self):
        server_id = self.request.query_params.get("mcp_server")
        if server_id:
            try:
                server_id = uuid.UUID(server_id)
            except ValueError as exc:
                raise Invalid("mcp_server must be a server id.", field="mcp_server") from exc
        return {"mcp_server_id": server_id or None}

    def create(self, request, *args, **kwargs):
        serializer = CredentialCreateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        server = mcp_server_list_for_user(user=request.user).filter(pk=data["mcp_server"]).first()
        if server is None:
            raise NotFound("MCP server not found.")
        credential = services.credential_create(
            owner=request.user,
            server=server,
            key=data["key"],
            value=data["value"],
            actor=request.user,
            ip=client_ip(request),
        )
        return Response(CredentialSerializer(credential).data, status=status.HTTP_201_CREATED)

    def partial_update(self, request, *args, **kwargs):
        credential = self.get_object()
        serializer = CredentialUpdateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        credential = services.credential_update(
            credential=credential,
            value=serializer.validated_data["value"],
            actor=request.user,
            ip=client_ip(request),
        )
        return Response(CredentialSerializer(credential).data)

    def destroy(self, request, *args, **kwargs):
        services.credential_delete(
            credential=self.get_object(), actor=request.user, ip=client_ip(request)
        )
        return Response(status=status.HTTP_204_NO_CONTENT)
