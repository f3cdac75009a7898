from django.urls import path

from projects import views

app_name = "projects"

urlpatterns = [
    path("projects/", views.project_list, name="list"),
    path("projects/new/", views.project_create, name="create"),
    path("projects/<uuid:pk>/", views.project_detail, name="detail"),
    path("projects/<uuid:pk>/edit/", views.project_edit, name="edit"),
    path("projects/<uuid:pk>/status/", views.project_set_status, name="set_status"),
    path("projects/<uuid:pk>/delete/", views.project_delete, name="delete"),
    path("projects/<uuid:pk>/files/new/", views.file_create, name="file_create"),
    path("projects/<uuid:pk>/files/<int:file_id>/", views.file_edit, name="file_edit"),
    path("projects/<uuid:pk>/files/<int:file_id>/delete/", views.file_delete, name="file_delete"),
]
