from celery import shared_task

from . import services


@shared_task
def flag_expired_licences() -> int:
    """Daily (beat): expired licences drop doctors out of listings; idempotent."""
    return services.licences_flag_expired()
