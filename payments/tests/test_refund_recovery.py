"""A worker killed while a refund was at the gateway leaves it "processing": once the lease has
passed the retry scan sends it again with the same idempotency key, so the patient is refunded
once whether or not the first call reached the gateway (scripts/fault-celery-worker shows it
with a real worker and SIGKILL)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from payments import services
from payments.gateways import gateway_get
from payments.models import Refund, SandboxTransaction

from .test_services import paid

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("frozen_time")]


def stranded_refund(clinic, patient, *, reached_gateway: bool) -> Refund:
    """An approved refund claimed by a worker that died (status "processing", never recorded)."""
    _, payment = paid(clinic, patient)
    refund = services.refund_request(payment=payment, by=patient, reason="The doctor never joined", amount_minor=10000)
    Refund.objects.filter(pk=refund.pk).update(status=Refund.Status.APPROVED)  # approved, its task lost with the worker
    Refund.objects.filter(pk=refund.pk).update(status=Refund.Status.PROCESSING, attempts=1)
    if reached_gateway:  # the call got through before the worker died
        gateway_get(payment.gateway).refund(payment=payment, amount_minor=10000, idempotency_key=f"refund-{refund.public_id}", reason=refund.reason)
    return refund


@pytest.mark.parametrize("reached_gateway", [False, True], ids=["died-before-the-call", "died-after-the-call"])
def test_a_refund_left_processing_by_a_dead_worker_is_sent_again_after_the_lease_and_refunded_once(clinic, patient, settings, reached_gateway):
    refund = stranded_refund(clinic, patient, reached_gateway=reached_gateway)
    if not reached_gateway:  # (when it did, the gateway's webhook records the refund by itself)
        assert services.refunds_retry_failed() == 0  # within the lease the first worker may still be at it
        assert services.refund_process(refund_id=refund.pk).status == "processing"
    Refund.objects.filter(pk=refund.pk, status="processing").update(updated_at=timezone.now() - timedelta(seconds=settings.REFUND_PROCESSING_LEASE_SECONDS + 1))

    services.refunds_retry_failed()

    refund.refresh_from_db()
    refund.payment.refresh_from_db()
    assert refund.status == "succeeded"
    assert refund.payment.amount_refunded_minor == 10000
    assert SandboxTransaction.objects.get().amount_refunded_minor == 10000  # once at the gateway
    assert services.refunds_retry_failed() == 0


