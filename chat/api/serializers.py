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
