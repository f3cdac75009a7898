"""The Celery application: background jobs (assistant turns, scheduled MCP health checks) on
workers, with Redis as the broker. Settings are the CELERY_* names of config.settings."""

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

app = Celery("atelier")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
