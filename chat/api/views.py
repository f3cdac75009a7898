import json
import time

from django.conf import settings
from django.db import close_old_connections
from django.http import StreamingHttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_view
from rest_framework import generics, mixins, renderers, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.response import Response

from chat import assistant, rows, selectors, services
from chat.api.serializers import (
    AssistantConfirmSerializer,
    AssistantTurnDetailSerializer,
    AssistantTurnSerializer,
    AssistantTurnStartSerializer,
    ChatMessageSerializer,
    ChatMessageWriteSerializer,
    LanguageModelSerializer,
)
from chat.models import AssistantTurn, ChatMessage, LanguageModel
from config.api import idempotency
from config.api.idempotency import idempotent
from config.api.pagination import AfterCursorPagination
from config.api.viewsets import OwnerScopedViewSet
from config.json_sql import renders_in_database
from projects.selectors import project_get_for_user

EVENT_POLL_SECONDS = 0.25


class ChatFilterSerializer(serializers.Serializer):
    project = serializers.UUIDField(required=False)
    after = serializers.IntegerField(required=False, min_value=0, max_value=2**63 - 1)


@extend_schema_view(
    list=extend_schema(
        parameters=[
            OpenApiParameter("project", OpenApiTypes.UUID, description="Only this project's"),
            OpenApiParameter(
                "after",
                OpenApiTypes.INT,
                description="Only messages after this id, by id with no count (`next` goes on)",
            ),
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
    # A poll (`?after=`) pages by id without counting the thread's later messages.
    pagination_class = AfterCursorPagination

    def selector_filters(self):
        filters = ChatFilterSerializer(data=self.request.query_params)
        filters.is_valid(raise_exception=True)
        return {
            "project_id": filters.validated_data.get("project"),
            "after": filters.validated_data.get("after"),
        }

    def list(self, request, *args, **kwargs):
        if not renders_in_database():
            return super().list(request, *args, **kwargs)
        # One query, compiled once: the page as JSON from PostgreSQL (with its total when
        # paged by number).
        page = self.paginate_queryset(
            rows.message_page_rows(user=request.user, **self.selector_filters())
        )
        return self.paginator.get_rendered_response([rows.message_json(row) for row in page])

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


def _turn_detail(turn) -> dict:
    turn.messages = assistant.assistant_turn_messages(turn=turn)
    return AssistantTurnDetailSerializer(turn).data


class LanguageModelListView(generics.GenericAPIView):
    """The models a user may pick for the assistant; the first is the default."""

    pagination_class = None
    serializer_class = LanguageModelSerializer
    queryset = LanguageModel.objects.none()  # the model, for the schema

    @extend_schema(responses=LanguageModelSerializer(many=True))
    def get(self, request):
        models = list(assistant.language_model_list_enabled())
        rows = [
            {
                "id": model.pk,
                "name": model.name,
                "context_window": model.context_window,
                "daily_token_limit": model.daily_token_limit,
                "default": index == 0,
            }
            for index, model in enumerate(models)
        ]
        return Response(LanguageModelSerializer(rows, many=True).data)


@extend_schema_view(
    list=extend_schema(
        parameters=[
            OpenApiParameter("project", OpenApiTypes.UUID, description="Only this project's")
        ]
    ),
    retrieve=extend_schema(responses=AssistantTurnDetailSerializer),
    create=extend_schema(
        request=AssistantTurnStartSerializer,
        responses={201: AssistantTurnDetailSerializer},
        description="Send a message to the assistant: the message is saved and the assistant's "
        "answer starts. Read the turn again (or its messages) to follow the streamed reply; "
        "503 when no model is configured, 429 when today's tokens are used up, 409 while the "
        "previous answer in this project is still live.",
    ),
    confirm=extend_schema(
        request=AssistantConfirmSerializer, responses=AssistantTurnDetailSerializer
    ),
    stop=extend_schema(request=None, responses=AssistantTurnDetailSerializer),
)
class AssistantTurnViewSet(
    mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet
):
    """The assistant's answers to the caller's messages, newest first."""

    serializer_class = AssistantTurnSerializer
    queryset = AssistantTurn.objects.none()  # for the schema; get_queryset scopes to the caller

    def get_queryset(self):
        filters = ChatFilterSerializer(data=self.request.query_params)
        filters.is_valid(raise_exception=True)
        return assistant.assistant_turn_list_for_user(
            user=self.request.user, project_id=filters.validated_data.get("project")
        )

    def retrieve(self, request, *args, **kwargs):
        turn = assistant.assistant_turn_get_for_user(user=request.user, pk=kwargs["pk"])
        return Response(_turn_detail(turn))

    def create(self, request, *args, **kwargs):
        serializer = AssistantTurnStartSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        project = project_get_for_user(user=request.user, pk=data["project"])
        model = None
        if data.get("model") is not None:
            model = assistant.language_model_get_enabled(pk=data["model"])
        turn = assistant.assistant_turn_start(
            user=request.user, project=project, content=data["content"], model=model
        )
        turn.refresh_from_db()
        return Response(_turn_detail(turn), status=status.HTTP_201_CREATED)

    @action(detail=True, methods=["post"])
    def confirm(self, request, pk=None):
        serializer = AssistantConfirmSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        turn = assistant.assistant_turn_confirm(
            user=request.user, turn_id=pk, approve=serializer.validated_data["approve"]
        )
        turn.refresh_from_db()
        return Response(_turn_detail(turn))

    @action(detail=True, methods=["post"])
    def stop(self, request, pk=None):
        turn = assistant.assistant_turn_stop(user=request.user, turn_id=pk)
        turn.refresh_from_db()
        return Response(_turn_detail(turn))


class EventStreamRenderer(renderers.BaseRenderer):
    """Lets a client that sends `Accept: text/event-stream` reach the events view; the body is
    streamed by the view itself."""

    media_type = "text/event-stream"
    format = "event-stream"
    charset = "utf-8"

    def render(self, data, accepted_media_type=None, renderer_context=None):
        return json.dumps(data).encode() if data is not None else b""


@extend_schema(
    responses={(200, "text/event-stream"): OpenApiTypes.STR},
    description="Server-sent events of one turn: `message` (a message of the turn as it is "
    "written: id, role, content so far, metadata) whenever one changes, `turn` (state, reason, "
    "pending_call) whenever the state changes, and `end` when the turn is no longer live. The "
    "stream also ends after ASSISTANT_STREAM_SECONDS; reconnect to go on.",
)
class AssistantTurnEventsView(generics.GenericAPIView):
    renderer_classes = (renderers.JSONRenderer, EventStreamRenderer)
    pagination_class = None

    def get(self, request, pk):
        turn = assistant.assistant_turn_get_for_user(user=request.user, pk=pk)
        response = StreamingHttpResponse(
            _turn_events(turn), content_type="text/event-stream; charset=utf-8"
        )
        response["Cache-Control"] = "no-cache"
        response["X-Accel-Buffering"] = "no"  # proxies pass each event on at once
        return response


def _event(name: str, data: dict) -> str:
    return f"event: {name}\ndata: {json.dumps(data, default=str)}\n\n"


def _turn_events(turn):
    """Read the turn a few times a second and send what changed; a short database read each
    time, no transaction held in between."""
    deadline = time.monotonic() + settings.ASSISTANT_STREAM_SECONDS
    sent_messages: dict[int, tuple] = {}
    sent_state = None
    while True:
        turn.refresh_from_db(fields=["state", "reason", "pending_call"])
        for message in assistant.assistant_turn_messages(turn=turn):
            seen = (message.content, json.dumps(message.metadata, sort_keys=True))
            if sent_messages.get(message.pk) != seen:
                sent_messages[message.pk] = seen
                yield _event("message", ChatMessageSerializer(message).data)
        state = (turn.state, turn.reason, json.dumps(turn.pending_call, sort_keys=True))
        if state != sent_state:
            sent_state = state
            yield _event(
                "turn",
                {
                    "id": turn.pk,
                    "state": turn.state,
                    "reason": turn.reason,
                    "pending_call": turn.pending_call
                    and {k: turn.pending_call.get(k) for k in ("name", "label", "arguments")},
                },
            )
        if not turn.live:
            yield _event("end", {"id": turn.pk, "state": turn.state})
            return
        if time.monotonic() >= deadline:
            yield _event("timeout", {"id": turn.pk})
            return
        close_old_connections()
        time.sleep(EVENT_POLL_SECONDS)
