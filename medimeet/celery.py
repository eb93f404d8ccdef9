"""The Celery app. Redis is the broker in production; the embedded default uses Kombu's
filesystem transport under var/ so `make run` needs no server (docs/architecture.md)."""

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "medimeet.settings.local")

app = Celery("medimeet")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()

