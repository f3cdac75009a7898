from rest_framework import serializers

from chat.models import MAX_CONTENT_LENGTH, ChatMessage


class ChatMessageSerializer(serializers.ModelSerializer):
    class Meta:
        model = ChatMessage
        fields = ("id", "project", "role", "content", "metadata", "created_at")
        read_only_fields = fields


class ChatMessageWriteSerializer(serializers.Serializer):
    content = serializers.CharField(max_length=MAX_CONTENT_LENGTH, trim_whitespace=False)
    role = serializers.ChoiceField(choices=ChatMessage.Role.choices, required=False)
    project = serializers.UUIDField(required=False, allow_null=True)
    metadata = serializers.DictField(required=False)
