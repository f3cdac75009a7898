"""The HTML pages for end users."""

from django.contrib.auth import views as auth_views
from django.urls import include, path

from config import views
from config.forms import LoginForm

accounts = [
    path(
        "login/",
        auth_views.LoginView.as_view(
            authentication_form=LoginForm, redirect_authenticated_user=True
        ),
        name="login",
    ),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("signup/", views.signup, name="signup"),
    path("password_change/", auth_views.PasswordChangeView.as_view(), name="password_change"),
    path(
        "password_change/done/",
        auth_views.PasswordChangeDoneView.as_view(),
        name="password_change_done",
    ),
]

urlpatterns = [
    path("accounts/", include(accounts)),
    path("", include("marketplace.urls")),
    path("", include("projects.urls")),
    path("", include("chat.urls")),
    path("", include("credentials.urls")),
]
