from django.urls import path

from credentials import views

app_name = "credentials"

urlpatterns = [
    path("credentials/", views.credential_list, name="list"),
    path("credentials/<uuid:server_id>/<str:key>/", views.credential_set, name="set"),
    path("credentials/<uuid:server_id>/<str:key>/delete/", views.credential_delete, name="delete"),
]
