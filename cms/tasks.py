from celery import shared_task

from . import services


@shared_task
def publish_due() -> int:
    """Every minute (beat): scheduled posts and pages whose time has come are marked published."""
    return services.content_publish_due()
