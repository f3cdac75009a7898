from rest_framework import serializers

from credentials.crypto import credential_is_readable
from credentials.models import MAX_VALUE_LENGTH, Credential


class CredentialSerializer(serializers.ModelSerializer):
    """A credential as clients see it: the masked hint, never the value. `readable` is false when
    no configured key decrypts the value any more: the owner should re-enter it."""

    readable = serializers.SerializerMethodField()

    class Meta:
        model = Credential
        fields = (
            "id",
            "mcp_server",
            "key",
            "value_hint",
            "readable",
            "created_at",
            "updated_at",
            "last_used_at",
        )
        read_only_fields = fields

    def get_readable(self, credential: Credential) -> bool:
        return credential_is_readable(credential)


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
