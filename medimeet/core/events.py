"""Side effects after commit: the one helper every service uses to queue a task, an email or
a websocket event, so a rolled-back transaction never sends anything."""

from __future__ import annotations

from functools import partial

from django.db import transaction


def enqueue_on_commit(task, *args, **kwargs) -> None:
    """Queue Celery ``task`` with the given arguments once the current transaction commits."""
    transaction.on_commit(partial(task.delay, *args, **kwargs))
