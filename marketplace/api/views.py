import uuid

from django.urls import reverse
from django.utils import timezone
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import (
    OpenApiParameter,
    OpenApiResponse,
    extend_schema,
    extend_schema_view,
)
from rest_framework import generics, mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.permissions import AllowAny, IsAuthenticated
from rest_framework.response import Response
from rest_framework.views import APIView

from config import powers
from config.api import idempotency
from config.api.idempotency import idempotent
from config.api.permissions import AdminPower
from config.api.schema import error
from config.api.throttling import (
    DownloadThrottle,
    PurchaseThrottle,
    ReviewThrottle,
)
from config.api.viewsets import OwnerScopedListView, OwnerScopedViewSet
from config.errors import NotFound
from config.json_sql import json_response, renders_in_database
from config.replicas import StaleReadsMixin
from marketplace import purchase_rows, selectors, services
from marketplace.api.filters import (
    ListingFilter,
    PurchaseFilter,
    RevenueEventFilter,
    listing_filters,
    purchase_filters,
)
from marketplace.api.pagination import listing_page_rows, review_page_rows
from marketplace.api.serializers import (
    DownloadSerializer,
    DownloadTokenSerializer,
    ListingPublishSerializer,
    ListingSerializer,
    ListingUpdateSerializer,
    PurchaseSerializer,
    RevenueEventSerializer,
    ReviewSerializer,
    ReviewWriteSerializer,
    SellerProjectStatsSerializer,
    StatsSerializer,
    listing_data,
    purchase_data,
    review_data,
)
from marketplace.downloads import project_zip_response
from marketplace.models import Download, Purchase
from marketplace.stats import marketplace_stats, seller_stats
from projects.models import Project
from projects.selectors import project_get_for_user

LISTING_ID = OpenApiParameter("project_id", OpenApiTypes.UUID, OpenApiParameter.PATH)


def _own_project(request, project_id) -> Project:
    """The caller's own project, whatever its listing state; someone else's is NotFound."""
    return project_get_for_user(user=request.user, pk=project_id)


# One throttle per action, the same as the pages use (config.views.throttled).
ACTION_THROTTLES = {
    "purchase": PurchaseThrottle,
    "download_token": DownloadThrottle,
    "reviews": ReviewThrottle,
    "my_review": ReviewThrottle,
}


@extend_schema_view(
    retrieve=extend_schema(parameters=[LISTING_ID]),
    create=extend_schema(
        request=ListingPublishSerializer,
        responses={
            201: ListingSerializer,
            409: error(409, "The project is already published (`already_published`)."),
        },
    ),
    partial_update=extend_schema(
        parameters=[LISTING_ID], request=ListingUpdateSerializer, responses={200: ListingSerializer}
    ),
    destroy=extend_schema(parameters=[LISTING_ID], responses={204: None}),
)
class ListingViewSet(
    StaleReadsMixin,
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    mixins.CreateModelMixin,
    mixins.UpdateModelMixin,
    mixins.DestroyModelMixin,
    viewsets.GenericViewSet,
):
    """Published projects: anyone browses; owners publish, update and unpublish theirs."""

    # Browsing may read from a replica a moment behind (config/replicas.py).
    stale_read_actions = frozenset({"list", "retrieve", "reviews"})

    serializer_class = ListingSerializer
    filterset_class = ListingFilter
    lookup_url_kwarg = "project_id"
    lookup_value_regex = "[^/]+"
    http_method_names = ("get", "post", "patch", "delete", "head", "options")

    def get_permissions(self):
        if self.action in ("list", "retrieve", "reviews") and self.request.method == "GET":
            return [AllowAny()]
        return [IsAuthenticated()]

    def get_throttles(self):
        throttles = super().get_throttles()
        if self.action in ACTION_THROTTLES:  # shared with the pages
            throttles.append(ACTION_THROTTLES[self.action]())
        return throttles

    def get_queryset(self):
        return selectors.listing_list()

    def get_object(self):
        return selectors.listing_get(pk=self.kwargs["project_id"])

    def list(self, request, *args, **kwargs):
        # One query per page: plain rows (or JSON from PostgreSQL), the count from the cache.
        filters = listing_filters(request.query_params)
        rendered = renders_in_database()
        page = self.paginate_queryset(listing_page_rows(rendered=rendered, **filters))
        if rendered:
            return self.paginator.get_rendered_response([row["json"] for row in page])
        zone = timezone.get_current_timezone()
        return self.get_paginated_response([listing_data(row, zone) for row in page])

    def retrieve(self, request, *args, **kwargs):
        rendered = renders_in_database()
        row = selectors.listing_get_row(pk=self.kwargs["project_id"], rendered=rendered)
        return json_response(row["json"]) if rendered else Response(listing_data(row))

    def create(self, request, *args, **kwargs):
        serializer = ListingPublishSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        project = services.listing_publish(
            actor=request.user,
            project=_own_project(request, data["project"]),
            price=data["price"],
            currency=data.get("currency", "USD"),
            category=data["category"],
            tags=data.get("tags"),
        )
        return Response(ListingSerializer(project).data, status=status.HTTP_201_CREATED)

    def partial_update(self, request, *args, **kwargs):
        serializer = ListingUpdateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        project = services.listing_update(
            actor=request.user,
            project=Project(pk=self._listing_id()),
            **serializer.validated_data,
        )
        return Response(ListingSerializer(project).data)

    def destroy(self, request, *args, **kwargs):
        services.listing_unpublish(actor=request.user, project=Project(pk=self._listing_id()))
        return Response(status=status.HTTP_204_NO_CONTENT)

    @extend_schema(
        parameters=[LISTING_ID, idempotency.KEY_PARAMETER],
        request=None,
        responses={200: PurchaseSerializer, 201: PurchaseSerializer, **idempotency.RESPONSES},
    )
    @action(detail=True, methods=["post"])
    @idempotent
    def purchase(self, request, project_id=None):
        # The Idempotency-Key is handled by @idempotent: a retry replays the first answer.
        purchase, created = services.purchase_create(
            buyer=request.user, project_id=self._listing_id()
        )
        return Response(
            purchase_data(purchase),
            status=status.HTTP_201_CREATED if created else status.HTTP_200_OK,
        )

    @extend_schema(
        methods=["GET"],
        parameters=[LISTING_ID],
        responses={200: ReviewSerializer(many=True)},
    )
    @extend_schema(
        methods=["POST"],
        parameters=[LISTING_ID],
        request=ReviewWriteSerializer,
        responses={
            201: ReviewSerializer,
            409: error(409, "You already reviewed this project (`already_reviewed`)."),
        },
    )
    # The listings' filters do not apply to a listing's reviews.
    @action(detail=True, methods=["get", "post"], filter_backends=[])
    def reviews(self, request, project_id=None):
        if request.method == "GET":
            # One query: the listed project's reviews, each row with its count.
            rendered = renders_in_database()
            page = self.paginate_queryset(
                review_page_rows(project_id=self.kwargs["project_id"], rendered=rendered)
            )
            if rendered:
                return self.paginator.get_rendered_response([row["json"] for row in page])
            zone = timezone.get_current_timezone()
            return self.get_paginated_response([review_data(row, zone) for row in page])
        project = self.get_object()
        serializer = ReviewWriteSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        review = services.review_create(
            author=request.user, project=project, **serializer.validated_data
        )
        return Response(ReviewSerializer(review).data, status=status.HTTP_201_CREATED)

    @extend_schema(methods=["GET"], parameters=[LISTING_ID], responses={200: ReviewSerializer})
    @extend_schema(
        methods=["PATCH"],
        parameters=[LISTING_ID],
        request=ReviewWriteSerializer(partial=True),
        responses={200: ReviewSerializer},
    )
    @extend_schema(methods=["DELETE"], parameters=[LISTING_ID], responses={204: None})
    @action(detail=True, methods=["get", "patch", "delete"], url_path="reviews/mine")
    def my_review(self, request, project_id=None):
        review = selectors.review_get_for_user(user=request.user, project_id=self._listing_id())
        if request.method == "GET":
            return Response(ReviewSerializer(review).data)
        if request.method == "DELETE":
            services.review_delete(review=review)
            return Response(status=status.HTTP_204_NO_CONTENT)
        serializer = ReviewWriteSerializer(data=request.data, partial=True)
        serializer.is_valid(raise_exception=True)
        review = services.review_update(review=review, **serializer.validated_data)
        return Response(ReviewSerializer(review).data)

    @extend_schema(parameters=[LISTING_ID], request=None, responses={201: DownloadTokenSerializer})
    @action(detail=True, methods=["post"], url_path="download-token")
    def download_token(self, request, project_id=None):
        project, _allowed = selectors.project_get_for_download(
            user=request.user, pk=self._listing_id()
        )
        token, record = services.download_token_create(user=request.user, project=project)
        url = reverse("api:download", kwargs={"token": token})
        return Response(
            {"token": token, "url": url, "expires_at": record.expires_at},
            status=status.HTTP_201_CREATED,
        )

    def _listing_id(self):
        if not _is_uuid(self.kwargs["project_id"]):
            raise NotFound("Listing not found.")
        return self.kwargs["project_id"]


class DownloadView(APIView):
    """`GET /marketplace/downloads/{token}/`: the token is the only credential; streams a zip."""

    permission_classes = (AllowAny,)
    authentication_classes = ()

    @extend_schema(
        parameters=[OpenApiParameter("token", str, OpenApiParameter.PATH)],
        responses={
            (200, "application/zip"): OpenApiResponse(OpenApiTypes.BINARY, description="The zip"),
            404: OpenApiResponse(description="Unknown, expired or used-up token"),
        },
    )
    def get(self, request, token):
        download = services.download_token_redeem(
            token=token,
            ip=request.META.get("REMOTE_ADDR"),
            user_agent=request.headers.get("User-Agent", ""),
        )
        return project_zip_response(download.project)


class DownloadHistoryView(OwnerScopedListView):
    serializer_class = DownloadSerializer
    queryset = Download.objects.none()  # the model, for the schema
    list_selector = selectors.download_list_for_user


@extend_schema_view(
    refund=extend_schema(
        parameters=[OpenApiParameter("id", OpenApiTypes.UUID, OpenApiParameter.PATH)],
        request=None,
        responses={
            200: PurchaseSerializer,
            409: error(409, "The purchase is already refunded (`already_refunded`)."),
        },
    )
)
class PurchaseViewSet(mixins.ListModelMixin, OwnerScopedViewSet):
    """The caller's purchases; administrators refund."""

    serializer_class = PurchaseSerializer
    filterset_class = PurchaseFilter
    queryset = Purchase.objects.none()  # the model, for the schema
    list_selector = selectors.purchase_list_for_user

    def list(self, request, *args, **kwargs):
        if not renders_in_database():
            return super().list(request, *args, **kwargs)
        project_id = None
        if request.query_params:  # the filter's own checks and errors, as the list had them
            project_id = purchase_filters(request).get("project")
        # One query, compiled once: the page as JSON from PostgreSQL with its total.
        page = self.paginate_queryset(
            purchase_rows.purchase_page_rows(user=request.user, project_id=project_id)
        )
        return self.paginator.get_rendered_response([row["json"] for row in page])

    @action(
        detail=True, methods=["post"], permission_classes=[AdminPower.of(powers.REFUND_PURCHASES)]
    )
    def refund(self, request, pk=None):
        purchase = selectors.purchase_list_all().filter(pk=pk).first() if _is_uuid(pk) else None
        if purchase is None:
            raise NotFound("Purchase not found.")
        return Response(PurchaseSerializer(services.purchase_refund(purchase=purchase)).data)


def _is_uuid(value) -> bool:
    try:
        uuid.UUID(str(value))
    except ValueError:
        return False
    return True


class RevenueEventListView(generics.ListAPIView):
    permission_classes = (AdminPower.of(powers.READ_REVENUE),)
    serializer_class = RevenueEventSerializer
    filterset_class = RevenueEventFilter

    def get_queryset(self):
        return selectors.revenue_event_list()


class StatsView(APIView):
    permission_classes = (AdminPower.of(powers.READ_REVENUE),)

    @extend_schema(responses={200: StatsSerializer})
    def get(self, request):
        return Response(StatsSerializer(marketplace_stats()).data)


class SellerStatsView(APIView):
    @extend_schema(responses={200: SellerProjectStatsSerializer(many=True)})
    def get(self, request):
        return Response(
            SellerProjectStatsSerializer(seller_stats(user=request.user), many=True).data
        )
