"""The REST API under /api/: v1 endpoints, the OpenAPI schema and its browsable docs."""

from csp.decorators import csp_replace
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView
from rest_framework.routers import DefaultRouter

from chat.api.views import (
    AssistantTurnEventsView,
    AssistantTurnViewSet,
    ChatMessageViewSet,
    LanguageModelListView,
)
from config.api import auth
from credentials.api.views import CredentialViewSet
from marketplace.api import views as marketplace
from mcp_servers.api.views import McpServerViewSet
from projects.api import views as projects

app_name = "api"

router = DefaultRouter()
router.include_root_view = False
# The marketplace's listings first: the hot anonymous reads resolve after the fewest patterns.
router.register("marketplace/listings", marketplace.ListingViewSet, basename="listing")
router.register("projects", projects.ProjectViewSet, basename="project")
router.register("admin/projects", projects.AdminProjectViewSet, basename="admin-project")
router.register("mcp-servers", McpServerViewSet, basename="mcp-server")
router.register("credentials", CredentialViewSet, basename="credential")
router.register("chat/messages", ChatMessageViewSet, basename="chat-message")
router.register("chat/turns", AssistantTurnViewSet, basename="chat-turn")
router.register("marketplace/purchases", marketplace.PurchaseViewSet, basename="purchase")

v1 = [
    path("auth/register/", auth.RegisterView.as_view(), name="register"),
    path("auth/token/", auth.TokenView.as_view(), name="token"),
    path("auth/logout/", auth.LogoutView.as_view(), name="logout"),
    path("auth/me/", auth.MeView.as_view(), name="me"),
    path("auth/logout-everywhere/", auth.LogoutEverywhereView.as_view(), name="logout-everywhere"),
    path("auth/password/", auth.PasswordChangeView.as_view(), name="password-change"),
    path(
        "projects/<str:project_id>/files/",
        projects.ProjectFileListView.as_view(),
        name="project-files",
    ),
    path(
        "projects/<str:project_id>/files/<path:path>",
        projects.ProjectFileDetailView.as_view(),
        name="project-file",
    ),
    path(
        "marketplace/downloads/",
        marketplace.DownloadHistoryView.as_view(),
        name="download-history",
    ),
    path("marketplace/downloads/<str:token>/", marketplace.DownloadView.as_view(), name="download"),
    path("chat/models/", LanguageModelListView.as_view(), name="chat-models"),
    path("chat/turns/<int:pk>/events/", AssistantTurnEventsView.as_view(), name="chat-turn-events"),
    path("marketplace/stats/", marketplace.StatsView.as_view(), name="stats"),
    path(
        "marketplace/revenue-events/",
        marketplace.RevenueEventListView.as_view(),
        name="revenue-events",
    ),
    path("marketplace/seller-stats/", marketplace.SellerStatsView.as_view(), name="seller-stats"),
    *router.urls,
]

urlpatterns = [
    path("v1/", include(v1)),
    path("schema/", SpectacularAPIView.as_view(), name="schema"),
    # Swagger UI's script is served from ?script (no inline script); it styles inline.
    path(
        "docs/",
        csp_replace({"style-src": ["'self'", "'unsafe-inline'"]})(
            SpectacularSwaggerSplitView.as_view(url_name="api:schema")
        ),
        name="docs",
    ),
]
