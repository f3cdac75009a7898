from rest_framework import serializers

from chat.models import MAX_CONTENT_LENGTH, ChatMessage
from chat.services import SERVER_ROLES_MESSAGE


class ChatMessageSerializer(serializers.ModelSerializer):
    class Meta:
        model = ChatMessage
        fields = ("id", "project", "role", "content", "metadata", "created_at")
        read_only_fields = fields


class ChatMessageWriteSerializer(serializers.Serializer):
    content = serializers.CharField(max_length=MAX_CONTENT_LENGTH, trim_whitespace=False)
    # Only `user`; chat.services.chat_message_post refuses the others with its message.
    role = serializers.ChoiceField(
        choices=[ChatMessage.Role.USER],
        required=False,
        error_messages={"invalid_choice": SERVER_ROLES_MESSAGE},
    )
    project = serializers.UUIDField(required=False, allow_null=True)
    metadata = serializers.DictField(required=False)


class LanguageModelSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField()
    context_window = serializers.IntegerField()
    daily_token_limit = serializers.IntegerField()
    default = serializers.BooleanField()


class PendingCallSerializer(serializers.Serializer):
    name = serializers.CharField()
    label = serializers.CharField()
    arguments = serializers.DictField()


class AssistantTurnSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    project = serializers.UUIDField(source="project_id")
    model = serializers.CharField(source="model.name", allow_null=True, default=None)
    state = serializers.ChoiceField(choices=["running", "waiting", "done", "stopped", "failed"])
    reason = serializers.CharField(help_text="Why the turn ended; empty while it runs.")
    steps = serializers.IntegerField()
    prompt_tokens = serializers.IntegerField()
    completion_tokens = serializers.IntegerField()
    pending_call = PendingCallSerializer(
        allow_null=True, help_text="The tool call waiting for the user's confirmation."
    )
    created_at = serializers.DateTimeField()
    updated_at = serializers.DateTimeField()


class AssistantTurnDetailSerializer(AssistantTurnSerializer):
    messages = ChatMessageSerializer(
        many=True,
        help_text="The user's message and what the turn wrote so far, oldest first; a reply "
        "still streaming has metadata.streaming true and grows on the next read.",
    )


class AssistantTurnStartSerializer(serializers.Serializer):
    project = serializers.UUIDField()
    content = serializers.CharField(max_length=MAX_CONTENT_LENGTH, trim_whitespace=False)
    model = serializers.IntegerField(
        required=False, help_text="A model's id; the first enabled model when left out."
    )


class AssistantConfirmSerializer(serializers.Serializer):
    approve = serializers.BooleanField(help_text="true runs the waiting call, false refuses it.")
