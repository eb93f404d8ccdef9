"""Celery tasks that failed for good, kept for the staff dashboard and the admin.

Celery keeps no store of failures here (no result backend), so ``task_failure`` writes a
``FailedTask`` row: task name, id, exception type and time. Never the arguments, the message or
the traceback: they may carry personal health data. Retries do not fire ``task_failure``; only
the last failure does.
"""

from __future__ import annotations

import logging

from celery.signals import task_failure
from django.db import transaction
from django.utils import timezone

logger = logging.getLogger("medimeet.tasks")


def failed_task_record(*, task_name: str, task_id: str, exception: BaseException) -> None:
    from medimeet.core.models import FailedTask

    exception_type = type(exception)
    with transaction.atomic():  # a savepoint when the failing task ran inside a transaction
        FailedTask.objects.create(
            task_name=task_name[:200],
            task_id=(task_id or "")[:64],
            exception_type=f"{exception_type.__module__}.{exception_type.__qualname__}"[:200],
            failed_at=timezone.now(),
        )


@task_failure.connect(dispatch_uid="medimeet.core.dashboard.failed_task")
def _on_task_failure(sender=None, task_id=None, exception=None, **kwargs) -> None:
    try:
        failed_task_record(task_name=getattr(sender, "name", str(sender)), task_id=task_id or "", exception=exception)
    except Exception:  # the record is a convenience: never mask the task's own failure
        logger.exception("could not record a failed task", extra={"task": getattr(sender, "name", "")})
