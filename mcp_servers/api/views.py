from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_view
from rest_framework import mixins, status, viewsets
from rest_framework.response import Response

from config.api.permissions import IsAdminForWrites
from mcp_servers import selectors, services
from mcp_servers.api.serializers import (
    McpServerAdminSerializer,
    McpServerSerializer,
    McpServerWriteSerializer,
)
from mcp_servers.models import McpServer

SERVER_ID = OpenApiParameter("id", OpenApiTypes.UUID, OpenApiParameter.PATH)
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
        request=McpServerWriteSerializer, responses={201: McpServerAdminSerializer}
    ),
    partial_update=extend_schema(
        parameters=[SERVER_ID],
        request=McpServerWriteSerializer,
        responses={200: McpServerAdminSerializer},
    ),
    update=extend_schema(
        parameters=[SERVER_ID],
        request=McpServerWriteSerializer,
        responses={200: McpServerAdminSerializer},
    ),
    destroy=extend_schema(parameters=[SERVER_ID], responses={204: None}),
)
class McpServerViewSet(
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    mixins.CreateModelMixin,
    mixins.UpdateModelMixin,
    mixins.DestroyModelMixin,
    viewsets.GenericViewSet,
):
    """The curated catalogue: users read active servers, administrators manage them."""

    permission_classes = (IsAdminForWrites,)

    def get_serializer_class(self):
        if self.request and self.request.user.is_staff:
            return McpServerAdminSerializer
        return McpServerSerializer

    def get_queryset(self):
        status_filter = self.request.query_params.get("status")
        if status_filter not in McpServer.Status.values:
            status_filter = None
        return selectors.mcp_server_list_for_user(
            user=self.request.user, status=status_filter
        ).prefetch_related("allowed_groups")

    def get_object(self):
        return selectors.mcp_server_get_for_user(user=self.request.user, pk=self.kwargs["pk"])

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
