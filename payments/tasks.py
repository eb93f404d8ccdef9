"""Celery tasks of the payments app: thin wrappers over services, each safe to run twice."""

from __future__ import annotations

from celery import shared_task

from . import services


@shared_task(acks_late=True)
def process_refund(*, refund_id: int) -> str:
    """Send an approved refund to the gateway. A failure is recorded on the refund and retried
    with backoff by ``retry_failed_refunds``."""
    return services.refund_process(refund_id=refund_id).status


@shared_task(acks_late=True)
def process_webhook_event(*, event_id: int) -> str:
    """Apply a stored event; failures are recorded on it and retried by ``retry_webhook_events``."""
    return services.webhook_event_process(event_id=event_id)


@shared_task
def retry_failed_refunds() -> int:
    """Every five minutes (beat)."""
    return services.refunds_retry_failed()


@shared_task
def void_lapsed_payments() -> int:
    """Every minute (beat)."""
    return services.payments_void_lapsed()


@shared_task
def retry_webhook_events() -> int:
    """Every five minutes (beat)."""
    return services.webhook_events_retry()


@shared_task(bind=True, autoretry_for=(OSError,), retry_backoff=30, max_retries=5, acks_late=True)
def send_receipt(self, *, payment_id: int) -> None:
    from .receipts import receipt_email_send

    receipt_email_send(payment_id=payment_id)


@shared_task
def notify_refund(*, refund_id: int) -> None:
    from .receipts import refund_email_send

    refund_email_send(refund_id=refund_id)


@shared_task
def renew_subscriptions() -> int:
    """Every fifteen minutes (beat): sandbox care plans due for renewal or a dunning retry."""
    from .subscriptions import subscriptions_renew_due

    return subscriptions_renew_due()


@shared_task
def notify_subscription(*, subscription_id: int, event: str, attempt: int = 0) -> None:
    from .receipts import subscription_email_send

    subscription_email_send(subscription_id=subscription_id, event=event, attempt=attempt)


@shared_task(bind=True, autoretry_for=(Exception,), retry_backoff=5, max_retries=5)
def sandbox_deliver_webhook(self, *, body: str) -> None:
    """The sandbox gateway calling our webhook endpoint, signed, as Stripe or Razorpay would."""
    from .gateways import sandbox

    payload = body.encode()
    services.webhook_receive(gateway_name="sandbox", body=payload, headers={sandbox.SIGNATURE_HEADER: sandbox.sign(payload)})
