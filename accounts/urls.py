"""Account pages under /accounts/ (URL names without a namespace, as Django's auth expects)."""

from django.contrib.auth import views as auth_views
from django.urls import path

from accounts import views
from config.forms import LoginForm

urlpatterns = [
    path(
        "login/",
        views.lockout_status(
            auth_views.LoginView.as_view(
                authentication_form=LoginForm, redirect_authenticated_user=True
            )
        ),
        name="login",
    ),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("logout-everywhere/", views.logout_everywhere, name="logout_everywhere"),
    path("signup/", views.signup, name="signup"),
    path("password_change/", views.PasswordChangeView.as_view(), name="password_change"),
    path(
        "password_change/done/",
        auth_views.PasswordChangeDoneView.as_view(),
        name="password_change_done",
    ),
]
