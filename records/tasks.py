from celery import shared_task

from . import services


@shared_task
def index_document(*, document_id: int) -> str:
    """After an upload: OCR where needed and the full-text index. Idempotent."""
    return services.document_index(document_id=document_id)


@shared_task
def purge_past_retention() -> int:
    """Nightly (beat): purge deleted record content whose retention has ended. Idempotent."""
    return services.records_purge_past_retention()
