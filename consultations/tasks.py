from celery import shared_task

from . import services


@shared_task
def settle_no_shows() -> int:
    """Every minute (beat): presence decides doctor or patient no-shows. Idempotent."""
    return services.consultations_settle_no_shows()


@shared_task
def announce_opening() -> int:
    """Every minute (beat): "your consultation room is open" with the join link. Idempotent."""
    return services.consultations_announce_opening()


@shared_task
def purge_recordings() -> int:
    """Hourly (beat): the recording retention policy (services.recordings_purge). Idempotent."""
    return services.recordings_purge()
