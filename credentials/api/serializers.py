from rest_framework import serializers

from credentials.models import MAX_VALUE_LENGTH, Credential


class CredentialSerializer(serializers.ModelSerializer):
    """A credential as clients see it: the masked hint, never the value."""

    class Meta:
        model = Credential
        fields = (
            "id",
            "mcp_server",
            "key",
            "value_hint",
            "created_at",
            "updated_at",
            "last_used_at",
        )
        read_only_fields = fields


class CredentialCreateSerializer(serializers.Serializer):
    mcp_server = serializers.UUIDField()
    key = serializers.CharField(max_length=64)
    value = serializers.CharField(
        max_length=MAX_VALUE_LENGTH, write_only=True, trim_whitespace=False
    )


class CredentialUpdateSerializer(serializers.Serializer):
    value = serializers.CharField(
        max_length=MAX_VALUE_LENGTH, write_only=True, trim_whitespace=False
    )
