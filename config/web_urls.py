"""The HTML pages for end users."""

from django.urls import include, path

urlpatterns = [
    path("accounts/", include("accounts.urls")),
    path("", include("marketplace.urls")),
    path("", include("projects.urls")),
    path("", include("chat.urls")),
    path("", include("credentials.urls")),
]
