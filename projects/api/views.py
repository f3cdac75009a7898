from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_view
from rest_framework import generics, mixins, status, viewsets
from rest_framework.exceptions import NotFound
from rest_framework.response import Response
from rest_framework.views import APIView

from config import powers
from config.api.permissions import AdminPower
from config.api.schema import error
from config.api.viewsets import OwnerScopedViewSet
from config.json_sql import renders_in_database
from projects import rows, selectors, services
from projects.api.serializers import (
    ProjectFileContentSerializer,
    ProjectFileCreateSerializer,
    ProjectFilePatchSerializer,
    ProjectFileSerializer,
    ProjectFileSummarySerializer,
    ProjectSerializer,
    ProjectWriteSerializer,
)
from projects.models import Project, ProjectFile

PROJECT_ID = OpenApiParameter("id", OpenApiTypes.UUID, OpenApiParameter.PATH)
# The file routes name the project `project_id` in their path.
FILES_PROJECT_ID = OpenApiParameter("project_id", OpenApiTypes.UUID, OpenApiParameter.PATH)


@extend_schema_view(
    create=extend_schema(request=ProjectWriteSerializer, responses={201: ProjectSerializer}),
    update=extend_schema(request=ProjectWriteSerializer, responses={200: ProjectSerializer}),
    partial_update=extend_schema(
        request=ProjectWriteSerializer, responses={200: ProjectSerializer}
    ),
    retrieve=extend_schema(parameters=[PROJECT_ID]),
    destroy=extend_schema(parameters=[PROJECT_ID]),
)
class ProjectViewSet(
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    mixins.CreateModelMixin,
    mixins.UpdateModelMixin,
    mixins.DestroyModelMixin,
    OwnerScopedViewSet,
):
    """The caller's own projects."""

    serializer_class = ProjectSerializer
    queryset = Project.objects.none()  # the model, for the schema
    list_selector = selectors.project_list_for_user
    get_selector = selectors.project_get_for_user

    def list(self, request, *args, **kwargs):
        if not renders_in_database():
            return super().list(request, *args, **kwargs)
        # One query, compiled once: the page as JSON from PostgreSQL with its total.
        page = self.paginate_queryset(rows.project_page_rows(user=request.user))
        return self.paginator.get_rendered_response([row["json"] for row in page])

    def create(self, request, *args, **kwargs):
        serializer = ProjectWriteSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        project = services.project_create(
            owner=request.user, name=data["name"], description=data.get("description", "")
        )
        if data.get("status") and data["status"] != project.status:
            project = services.project_update(project=project, status=data["status"])
        return Response(ProjectSerializer(project).data, status=status.HTTP_201_CREATED)

    def update(self, request, *args, **kwargs):
        partial = kwargs.pop("partial", False)
        project = self.get_object()
        serializer = ProjectWriteSerializer(data=request.data, partial=partial)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        project = services.project_update(
            project=project,
            name=data.get("name"),
            description=data.get("description", None if partial else ""),
            status=data.get("status"),
        )
        return Response(ProjectSerializer(project).data)

    def destroy(self, request, *args, **kwargs):
        services.project_delete(project=self.get_object())
        return Response(status=status.HTTP_204_NO_CONTENT)


class ProjectFileListView(generics.GenericAPIView):
    """`GET|POST /projects/{id}/files/`."""

    serializer_class = ProjectFileSummarySerializer
    queryset = ProjectFile.objects.none()  # for the schema

    @extend_schema(
        parameters=[FILES_PROJECT_ID], responses={200: ProjectFileSummarySerializer(many=True)}
    )
    def get(self, request, project_id):
        files = selectors.project_file_list_for_user(user=request.user, project_id=project_id)
        try:
            page = self.paginate_queryset(files.only("path", "size", "updated_at"))
        except NotFound:
            selectors.project_get_for_user(user=request.user, pk=project_id)
            raise
        if not page:  # no files, or not the user's project
            selectors.project_get_for_user(user=request.user, pk=project_id)
        return self.get_paginated_response(ProjectFileSummarySerializer(page, many=True).data)

    @extend_schema(
        parameters=[FILES_PROJECT_ID],
        request=ProjectFileCreateSerializer,
        responses={201: ProjectFileSerializer, 409: error(409, "A file with this path exists.")},
    )
    def post(self, request, project_id):
        project = selectors.project_get_for_user(user=request.user, pk=project_id)
        serializer = ProjectFileCreateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        project_file = services.project_file_create(project=project, **serializer.validated_data)
        return Response(ProjectFileSerializer(project_file).data, status=status.HTTP_201_CREATED)


class ProjectFileDetailView(APIView):
    """`GET|PUT|PATCH|DELETE /projects/{id}/files/{path}`; the path may contain `/`."""

    @extend_schema(parameters=[FILES_PROJECT_ID], responses={200: ProjectFileSerializer})
    def get(self, request, project_id, path):
        project_file = selectors.project_file_get_for_user(
            user=request.user, project_id=project_id, path=path
        )
        return Response(ProjectFileSerializer(project_file).data)

    @extend_schema(
        parameters=[FILES_PROJECT_ID],
        request=ProjectFileContentSerializer,
        responses={200: ProjectFileSerializer, 201: ProjectFileSerializer},
    )
    def put(self, request, project_id, path):
        project = selectors.project_get_for_user(user=request.user, pk=project_id)
        serializer = ProjectFileContentSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        project_file, created = services.project_file_put(
            project=project, path=path, content=serializer.validated_data["content"]
        )
        return Response(
            ProjectFileSerializer(project_file).data,
            status=status.HTTP_201_CREATED if created else status.HTTP_200_OK,
        )

    @extend_schema(
        parameters=[FILES_PROJECT_ID],
        request=ProjectFilePatchSerializer,
        responses={200: ProjectFileSerializer},
        description="Rename or move the file by sending its new `path` (checked like a new "
        "file's), replace its `content`, or both.",
    )
    def patch(self, request, project_id, path):
        project = selectors.project_get_for_user(user=request.user, pk=project_id)
        serializer = ProjectFilePatchSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        project_file = services.project_file_update(
            project_file=selectors.project_file_get(project=project, path=path),
            **serializer.validated_data,
        )
        return Response(ProjectFileSerializer(project_file).data)

    @extend_schema(parameters=[FILES_PROJECT_ID], responses={204: None})
    def delete(self, request, project_id, path):
        project = selectors.project_get_for_user(user=request.user, pk=project_id)
        services.project_file_delete(
            project_file=selectors.project_file_get(project=project, path=path)
        )
        return Response(status=status.HTTP_204_NO_CONTENT)


@extend_schema(
    parameters=[OpenApiParameter("owner", str, description="Only this user's projects.")]
)
class AdminProjectViewSet(mixins.ListModelMixin, viewsets.GenericViewSet):
    """Every user's projects, for staff who may read all projects."""

    permission_classes = (AdminPower.of(powers.READ_ALL_PROJECTS),)
    serializer_class = ProjectSerializer

    def get_queryset(self):
        queryset = selectors.project_list_all()
        owner = self.request.query_params.get("owner")
        if owner:
            queryset = queryset.filter(owner__username=owner)
        return queryset
