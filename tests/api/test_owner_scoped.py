"""The owner-scoped base viewset: naming the selectors is all a view needs to answer only
with the caller's rows, and "not found" for anyone else's."""

import pytest
from rest_framework import mixins, serializers
from rest_framework.test import APIRequestFactory, force_authenticate

from chat.api.views import ChatMessageViewSet
from config.api.viewsets import OwnerScoped, OwnerScopedViewSet
from credentials.api.views import CredentialViewSet
from marketplace.api.views import DownloadHistoryView, PurchaseViewSet
from mcp_servers.api.views import McpServerViewSet
from projects import selectors
from projects.api.views import ProjectViewSet
from projects.models import Project
from tests.factories import ProjectFactory

pytestmark = pytest.mark.django_db


class NameSerializer(serializers.ModelSerializer):
    class Meta:
        model = Project
        fields = ("id", "name")


class ListOnly(mixins.ListModelMixin, mixins.RetrieveModelMixin, OwnerScopedViewSet):
    """Selects with the list selector only: the lookup stays inside the user's rows."""

    serializer_class = NameSerializer
    queryset = Project.objects.none()
    list_selector = selectors.project_list_for_user


class WithGetter(ListOnly):
    get_selector = selectors.project_get_for_user


def call(view_class, action, user, **kwargs):
    request = APIRequestFactory().get("/")
    force_authenticate(request, user=user)
    return view_class.as_view({"get": action})(request, **kwargs)


@pytest.mark.parametrize("view_class", [ListOnly, WithGetter])
def test_a_view_that_names_its_selectors_sees_only_the_caller_s_rows(view_class, user, other_user):
    mine = ProjectFactory(owner=user, name="mine")
    theirs = ProjectFactory(owner=other_user, name="theirs")

    listed = call(view_class, "list", user)
    assert [row["name"] for row in listed.data["results"]] == ["mine"]
    assert call(view_class, "retrieve", user, pk=str(mine.pk)).status_code == 200
    assert call(view_class, "retrieve", user, pk=str(theirs.pk)).status_code == 404


def test_the_apps_views_of_a_user_s_own_rows_use_it():
    for view in (
        ProjectViewSet,
        CredentialViewSet,
        ChatMessageViewSet,
        PurchaseViewSet,
        DownloadHistoryView,
        McpServerViewSet,
    ):
        assert issubclass(view, OwnerScoped), view
        assert "get_queryset" not in vars(view) or view is McpServerViewSet, view
