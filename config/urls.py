from django.contrib import admin
from django.urls import include, path

from accounts.views import lockout_status
from config import admin_views, health, metrics
from credentials.views import oauth_client_metadata

urlpatterns = [
    path("admin/read-only/", admin_views.view, name="admin-read-only"),
    # The admin's login, answering 429 for a locked login.
    path("admin/login/", lockout_status(admin.site.login), name="admin-login"),
    path("admin/", admin.site.urls),
    path("healthz", health.healthz, name="healthz"),
    path("readyz", health.readyz, name="readyz"),
    path("metrics", metrics.metrics, name="metrics"),
    # Atelier's OAuth client id at servers supporting Client ID Metadata Documents.
    path("oauth/client-metadata.json", oauth_client_metadata, name="oauth-client-metadata"),
    path("api/", include("config.api_urls")),
    path("", include("config.web_urls")),
]
