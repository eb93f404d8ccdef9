from celery import shared_task

from . import services


@shared_task
def release_expired_holds() -> int:
    """Every minute (beat): lapsed holds and unpaid bookings free their slot. Idempotent."""
    return services.holds_release_expired()


@shared_task
def refresh_next_available() -> int:
    """Every 10 minutes (beat): first free slots that have passed are recomputed. Idempotent."""
    return services.next_available_refresh_stale()
