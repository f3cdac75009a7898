from rest_framework import serializers

from projects.models import MAX_DESCRIPTION, NAME_MAX_LENGTH, Project, ProjectFile


class ProjectSerializer(serializers.ModelSerializer):
    owner = serializers.CharField(source="owner.username", read_only=True)

    class Meta:
        model = Project
        fields = (
            "id",
            "owner",
            "name",
            "description",
            "status",
            "created_at",
            "updated_at",
            "is_published",
            "published_at",
            "price",
            "currency",
            "category",
            "tags",
            "purchase_count",
            "download_count",
            "review_count",
            "rating_avg",
        )
        read_only_fields = fields


class ProjectWriteSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=NAME_MAX_LENGTH)
    description = serializers.CharField(
        max_length=MAX_DESCRIPTION, required=False, allow_blank=True, trim_whitespace=False
    )
    status = serializers.ChoiceField(choices=Project.Status.choices, required=False)


class ProjectFileSerializer(serializers.ModelSerializer):
    class Meta:
        model = ProjectFile
        fields = ("path", "content", "size", "created_at", "updated_at")
        read_only_fields = fields


class ProjectFileSummarySerializer(serializers.ModelSerializer):
    class Meta:
        model = ProjectFile
        fields = ("path", "size", "updated_at")
        read_only_fields = fields


class ProjectFileCreateSerializer(serializers.Serializer):
    path = serializers.CharField(max_length=1024, trim_whitespace=False)
    content = serializers.CharField(allow_blank=True, trim_whitespace=False)


class ProjectFileContentSerializer(serializers.Serializer):
    content = serializers.CharField(allow_blank=True, trim_whitespace=False)


class ProjectFilePatchSerializer(serializers.Serializer):
    """Rename or move the file (`path`), replace its content, or both."""

    path = serializers.CharField(max_length=1024, required=False, trim_whitespace=False)
    content = serializers.CharField(required=False, allow_blank=True, trim_whitespace=False)

    def validate(self, attrs):
        if not attrs:
            raise serializers.ValidationError("Send a new `path`, new `content`, or both.")
        return attrs
