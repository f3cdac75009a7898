from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_view
from rest_framework import mixins, serializers, status
from rest_framework.response import Response

from chat import selectors, services
from chat.api.serializers import ChatMessageSerializer, ChatMessageWriteSerializer
from chat.models import ChatMessage
from config.api import idempotency
from config.api.idempotency import idempotent
from config.api.viewsets import OwnerScopedViewSet
from projects.selectors import project_get_for_user


class ChatFilterSerializer(serializers.Serializer):
    project = serializers.UUIDField(required=False)
    after = serializers.IntegerField(required=False, min_value=0, max_value=2**63 - 1)


@extend_schema_view(
    list=extend_schema(
        parameters=[
            OpenApiParameter("project", OpenApiTypes.UUID, description="Only this project's"),
            OpenApiParameter("after", OpenApiTypes.INT, description="Only messages after this id"),
        ]
    ),
    create=extend_schema(
        parameters=[idempotency.KEY_PARAMETER],
        request=ChatMessageWriteSerializer,
        responses={201: ChatMessageSerializer, **idempotency.RESPONSES},
    ),
)
class ChatMessageViewSet(mixins.ListModelMixin, mixins.CreateModelMixin, OwnerScopedViewSet):
    """The caller's messages, oldest first."""

    serializer_class = ChatMessageSerializer
    queryset = ChatMessage.objects.none()  # the model, for the schema
    list_selector = selectors.chat_message_list_for_user

    def selector_filters(self):
        filters = ChatFilterSerializer(data=self.request.query_params)
        filters.is_valid(raise_exception=True)
        return {
            "project_id": filters.validated_data.get("project"),
            "after": filters.validated_data.get("after"),
        }

    @idempotent
    def create(self, request, *args, **kwargs):
        serializer = ChatMessageWriteSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        project = None
        if data.get("project"):
            project = project_get_for_user(user=request.user, pk=data["project"])
        message = services.chat_message_post(
            owner=request.user,
            content=data["content"],
            role=data.get("role", "user"),
            project=project,
            metadata=data.get("metadata"),
        )
        return Response(ChatMessageSerializer(message).data, status=status.HTTP_201_CREATED)
