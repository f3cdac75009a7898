from django.urls import path

from chat import views

app_name = "chat"

urlpatterns = [
    path("projects/<uuid:pk>/chat/", views.thread, name="thread"),
    path("projects/<uuid:pk>/chat/messages/", views.new_messages, name="new_messages"),
    path("projects/<uuid:pk>/chat/tools/", views.tool_run, name="tool_run"),
    path(
        "projects/<uuid:pk>/chat/turns/<int:turn_id>/confirm/",
        views.turn_confirm,
        name="turn_confirm",
    ),
    path("projects/<uuid:pk>/chat/turns/<int:turn_id>/stop/", views.turn_stop, name="turn_stop"),
]
