from celery import shared_task

from . import services


@shared_task
def purge_expired_api_sessions() -> int:
    return services.api_sessions_purge_expired()
