from django.contrib import admin
from django.urls import include, path

from accounts.views import lockout_status
from config import admin_views, health, job_views, metrics
from credentials.views import oauth_client_metadata

urlpatterns = [
    path("admin/read-only/", admin_views.view, name="admin-read-only"),
    path("admin/jobs/key-rotation/", job_views.key_rotation_view, name="admin-key-rotation"),
    path("admin/jobs/legacy-import/", job_views.legacy_import_view, name="admin-legacy-import"),
    path("admin/jobs/<int:pk>/", job_views.job_view, name="admin-job"),
    path("admin/jobs/<int:pk>/progress/", job_views.job_progress_view, name="admin-job-progress"),
    path("admin/jobs/<int:pk>/resume/", job_views.job_resume_post, name="admin-job-resume"),
    path("admin/jobs/<int:pk>/report/", job_views.job_report_view, name="admin-job-report"),
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
