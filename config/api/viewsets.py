"""Views over what belongs to the requesting user: "not found" for anything else by default.

A subclass names its selectors and nothing else:

    class ProjectViewSet(mixins.ListModelMixin, ..., OwnerScopedViewSet):
        queryset = Project.objects.none()  # the model, for the OpenAPI document
        list_selector = selectors.project_list_for_user
        get_selector = selectors.project_get_for_user

`get_queryset` is `list_selector(user=request.user, **self.selector_filters())`, so lists,
filters and pagination only ever see the user's rows; `get_object` is
`get_selector(user=request.user, pk=...)` when there is one (a selector that raises NotFound
for what is not the user's), else DRF's lookup within the scoped queryset, a 404 likewise.
"""

from rest_framework import generics, viewsets


# No docstrings on these classes: drf-spectacular would show them as every operation's text.
class OwnerScoped:
    list_selector = None  # selector(*, user, **filters) -> the user's QuerySet
    get_selector = None  # selector(*, user, pk) -> the user's object, or raises NotFound

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        # Selectors are plain functions: kept as static so that they are not bound to the view.
        for name in ("list_selector", "get_selector"):
            value = cls.__dict__.get(name)
            if callable(value) and not isinstance(value, staticmethod):
                setattr(cls, name, staticmethod(value))

    def selector_filters(self) -> dict:
        """Extra keyword arguments for list_selector, e.g. from validated query parameters."""
        return {}

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):  # drf-spectacular, building the document
            return self.queryset
        return self.list_selector(user=self.request.user, **self.selector_filters())

    def get_object(self):
        if self.get_selector is None:
            return super().get_object()
        lookup = self.lookup_url_kwarg or self.lookup_field
        obj = self.get_selector(user=self.request.user, pk=self.kwargs[lookup])
        self.check_object_permissions(self.request, obj)
        return obj


class OwnerScopedViewSet(OwnerScoped, viewsets.GenericViewSet):
    pass


class OwnerScopedListView(OwnerScoped, generics.ListAPIView):
    pass
