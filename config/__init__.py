# Loaded with Django so that tasks' .delay() uses this app and its settings (Celery's pattern).
from config.celery import app as celery_app

__all__ = ["celery_app"]
