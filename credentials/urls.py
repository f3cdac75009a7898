from django.urls import path

from credentials import views

app_name = "credentials"

urlpatterns = [
    path("credentials/", views.credential_list, name="list"),
    path("credentials/oauth/callback/", views.oauth_callback, name="oauth-callback"),
    path("credentials/oauth/<uuid:server_id>/connect/", views.oauth_connect, name="oauth-connect"),
    path(
        "credentials/oauth/<uuid:server_id>/disconnect/",
        views.oauth_disconnect,
        name="oauth-disconnect",
    ),
    path("credentials/<uuid:server_id>/<str:key>/", views.credential_set, name="set"),
    path("credentials/<uuid:server_id>/<str:key>/delete/", views.credential_delete, name="delete"),
]
