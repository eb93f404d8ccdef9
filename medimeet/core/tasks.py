from __future__ import annotations

from celery import shared_task
from celery.utils.time import get_exponential_backoff_interval
from django.conf import settings


@shared_task
def send_announcement(*, announcement_id: int) -> int:
    """Email a system announcement to everyone it is for. Idempotent (one message per person)."""
    from .notifications.announcements import announcement_send_emails

    return announcement_send_emails(announcement_id=announcement_id)


@shared_task(bind=True, acks_late=True, max_retries=settings.NOTIFICATION_MAX_RETRIES)
def deliver_notification(self, *, notification_id: int):
    """Send one stored notification. A failed hand-over is retried with exponential backoff
    (30 s, 60 s, … capped at 30 min, with jitter); after the last retry the row is marked
    failed with its error. Running twice sends once (the service claims the row)."""
    from .notifications.services import RETRY, notification_deliver

    outcome = notification_deliver(notification_id=notification_id, final_attempt=self.request.retries >= self.max_retries)
    if outcome == RETRY:
        countdown = get_exponential_backoff_interval(factor=settings.NOTIFICATION_RETRY_BACKOFF_SECONDS, retries=self.request.retries, maximum=1800, full_jitter=True)
        # A worker raises Retry (the task is re-queued with the countdown). Run eagerly (tests,
        # CELERY_TASK_ALWAYS_EAGER) a raised Retry would propagate to the caller; returned,
        # Celery's apply() runs the retry in place instead.
        return self.retry(countdown=countdown, throw=not self.request.is_eager)
    return outcome


@shared_task
def requeue_stalled_notifications() -> int:
    """Every minute (beat): messages whose delivery task was lost are queued again."""
    from .notifications.services import notifications_requeue_stalled

    return notifications_requeue_stalled()
