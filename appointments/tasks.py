from celery import shared_task

from . import services


@shared_task
def release_expired_holds() -> int:
    """Every minute (beat): lapsed holds and unpaid bookings free their slot. Idempotent."""
    return services.holds_release_expired()
