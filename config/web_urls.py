"""The HTML pages for end users."""

urlpatterns: list = []
