from celery import shared_task

from . import services


@shared_task(bind=True, autoretry_for=(OSError,), retry_backoff=30, max_retries=5, acks_late=True)
def send_appointment_update(self, *, appointment_id: int, change: str, token: str) -> None:
    """The patient's and the doctor's messages about one booking change (services.appointment_notify).
    Run twice, it queues them once (``token``)."""
    services.appointment_update_send(appointment_id=appointment_id, change=change, token=token)


@shared_task
def release_expired_holds() -> int:
    """Every minute (beat): lapsed holds and unpaid bookings free their slot. Idempotent."""
    return services.holds_release_expired()


@shared_task
def refresh_next_available() -> int:
    """Every 10 minutes (beat): first free slots that have passed are recomputed. Idempotent."""
    return services.next_available_refresh_stale()


@shared_task
def make_rebooking_offer(appointment_id: int) -> bool:
    """After a vacation is set: propose new times to one affected patient. Idempotent."""
    return services.rebooking_offer_make(appointment_id=appointment_id) is not None


@shared_task
def send_due_reminders() -> int:
    """Every minute (beat): appointment reminders whose moment has come. Idempotent (each
    reminder is queued once per appointment time, offset and channel)."""
    return services.reminders_send_due()
