"""Side effects after commit: the one helper every service uses to queue a task, an email or
a websocket event, so a rolled-back transaction never sends anything."""

from __future__ import annotations

from collections.abc import Callable
from functools import partial

from django.db import transaction


def enqueue_on_commit(task, *args, **kwargs) -> None:
    """Queue Celery ``task`` with the given arguments once the current transaction commits."""
    transaction.on_commit(partial(task.delay, *args, **kwargs))


def group_send_on_commit(group: str, event: dict | Callable[[], dict]) -> None:
    """Send ``event`` to a channel-layer group (websockets) once the current transaction commits;
    a callable is called then, so the event describes the committed state."""

    def send() -> None:
        from asgiref.sync import async_to_sync
        from channels.layers import get_channel_layer

        async_to_sync(get_channel_layer().group_send)(group, event() if callable(event) else event)

    transaction.on_commit(send)
