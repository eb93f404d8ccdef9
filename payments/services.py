"""Payments: every write about money.

The flow, whichever gateway takes the money:

1. ``payment_create`` — for an appointment waiting for payment: the amount and currency come from
   the appointment (the server-side price), never from the client. The row is written first
   (pending), then the gateway is asked to start the payment with an idempotency key derived
   from the row, so a retried request — same ``Idempotency-Key`` — resumes the same payment.
2. The client pays (Stripe.js, Razorpay Checkout, or the sandbox page).
3. ``payment_verify`` (the client callback) and ``webhook_receive`` → ``webhook_event_process``
   (the gateway's webhook) both end in ``payment_apply_charge``, which locks the payment row and
   applies the gateway's answer once: a second arrival changes nothing. Only a verified charge of
   the expected amount confirms the appointment; a mismatch flags the payment instead.
4. Refunds (``refund_request`` → ``refund_decide`` → ``refund_process``) never exceed what was
   paid: the payment row is locked while the remaining amount is computed, and a database
   constraint is the last word.
"""

from __future__ import annotations

import logging
from datetime import timedelta
from decimal import ROUND_HALF_UP, Decimal
from zoneinfo import ZoneInfo

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import F, Q, Sum
from django.http import HttpRequest
from django.utils import timezone
from django.utils.translation import gettext

from accounts.models import User
from appointments import services as appointment_services
from appointments.models import Appointment
from medimeet.core import platform
from medimeet.core.audit import audit_record
from medimeet.core.errors import ApplicationError
from medimeet.core.events import enqueue_on_commit, enqueue_or_run_on_commit
from medimeet.core.roles import staff_can

from .gateways import GatewayUnavailable, base, gateway_get, gateway_name_for
from .models import GatewayCustomer, Invoice, InvoiceCounter, Payment, PayoutAccount, Refund, SavedCard, WebhookEvent

logger = logging.getLogger("medimeet.payments")

Status = Payment.Status


# --- Creating a payment ----------------------------------------------------------------------


def platform_fee(amount_minor: int) -> int:
    return int((Decimal(amount_minor) * settings.PLATFORM_FEE_PERCENT / 100).quantize(Decimal(1), ROUND_HALF_UP))


def _check_velocity(patient: User) -> None:
    """Too many failed attempts in the last hour by this patient, or with a card this patient
    has failed with, stop new attempts for a while (card testing, stolen cards)."""
    since = timezone.now() - timedelta(hours=1)
    failed = Payment.objects.filter(status=Status.FAILED, updated_at__gte=since)
    fingerprints = failed.filter(patient=patient).exclude(card_fingerprint="").values("card_fingerprint")
    if failed.filter(Q(patient=patient) | Q(card_fingerprint__in=fingerprints)).count() >= settings.PAYMENT_MAX_FAILURES_PER_HOUR:
        raise ApplicationError("PAY_007")


def payment_create(
    *,
    patient: User,
    appointment: Appointment,
    billing_country: str = "",
    save_card: bool = False,
    idempotency_key: str = "",
    request: HttpRequest | None = None,
) -> Payment:
    """Start paying for an appointment that waits for payment. Returns the live payment: a
    retry with the same ``Idempotency-Key`` (or while one is pending) gets the same one back."""
    idempotency_key = idempotency_key[:100]
    if idempotency_key:
        existing = Payment.objects.filter(patient=patient, idempotency_key=idempotency_key).first()
        if existing is not None:
            if existing.appointment_id != appointment.pk:
                raise ApplicationError(
                    "REQ_001", gettext("This Idempotency-Key was already used for another payment."), fields={"idempotency_key": [gettext("Reused with different content.")]}
                )
            return _payment_start(existing)
    billing_country = (billing_country or "").upper()
    with transaction.atomic():
        appointment = Appointment.objects.select_for_update().select_related("doctor").get(pk=appointment.pk)
        if appointment.patient_id != patient.pk:
            raise ApplicationError("APPT_006")
        live = Payment.objects.live().filter(appointment=appointment).first()
        if live is not None and live.status == Status.SUCCEEDED or appointment.status == Appointment.Status.CONFIRMED:
            raise ApplicationError("PAY_004", gettext("This appointment is already paid for."))
        if appointment.price_minor == 0:
            raise ApplicationError("PAY_004", gettext("This appointment costs nothing: confirm it without paying."))
        if appointment.status != Appointment.Status.PENDING_PAYMENT:
            raise ApplicationError("PAY_010", gettext("Confirm the booking details before paying.") if appointment.status == Appointment.Status.HELD else None)
        if not appointment.is_hold_live:
            raise ApplicationError("APPT_003")
        if appointment.currency not in platform.payment_currencies():
            raise ApplicationError("PAY_005", gettext("Payments in %(currency)s are not supported.") % {"currency": appointment.currency})
        if live is not None:  # a pending attempt exists: resume it rather than start a second one
            payment = live
        else:
            _check_velocity(patient)
            try:
                gateway = gateway_name_for(currency=appointment.currency, billing_country=billing_country or appointment.doctor.country)
            except GatewayUnavailable as exc:
                logger.error("no payment gateway configured", extra={"currency": appointment.currency})
                raise ApplicationError("PAY_008", gettext("Online payment is not available for this booking right now. Please try again later.")) from exc
            payment = Payment.objects.create(
                appointment=appointment,
                patient=patient,
                doctor=appointment.doctor,
                gateway=gateway,
                amount_minor=appointment.price_minor,
                currency=appointment.currency,
                platform_fee_minor=platform_fee(appointment.price_minor),
                billing_country=billing_country,
                save_card=save_card,
                idempotency_key=idempotency_key,
            )
            audit_record(
                action="payment.created",
                actor=patient,
                target=payment,
                subject_user=patient,
                request=request,
                metadata={"gateway": gateway, "amount_minor": payment.amount_minor, "currency": payment.currency},
            )
    return _payment_start(payment)


def _payment_start(payment: Payment) -> Payment:
    """Create the payment at the gateway if that has not happened yet. Safe to repeat: the
    gateway call carries an idempotency key derived from the payment."""
    if payment.gateway_reference or payment.status != Status.PENDING:
        return payment
    gateway = gateway_get(payment.gateway)
    customer_id = payout = ""
    if payment.gateway == "stripe":
        customer_id = _customer_for(payment.patient, gateway)
        payout = PayoutAccount.objects.filter(doctor_id=payment.doctor_id, gateway=payment.gateway).values_list("account_id", flat=True).first() or ""
    try:
        started = gateway.start(payment=payment, customer_id=customer_id, payout_account=payout)
    except base.GatewayError as exc:
        logger.warning("payment start failed", extra={"payment": str(payment.public_id), "gateway": payment.gateway, "retryable": exc.retryable})
        raise ApplicationError("PAY_008") from exc
    Payment.objects.filter(pk=payment.pk, gateway_reference="").update(
        gateway_reference=started.reference, client_secret=started.client_secret, payout_account=payout
    )
    payment.gateway_reference, payment.client_secret, payment.payout_account = started.reference, started.client_secret, payout
    return payment


def _customer_for(user: User, gateway: base.PaymentGateway) -> str:
    existing = GatewayCustomer.objects.filter(user=user, gateway=gateway.name).values_list("customer_id", flat=True).first() or ""
    if existing:
        return existing
    try:
        customer_id = gateway.customer_ensure(user=user, existing="")
    except base.GatewayError:
        return ""  # a payment without a customer still works; the card just is not saved
    if customer_id:
        GatewayCustomer.objects.get_or_create(user=user, gateway=gateway.name, defaults={"customer_id": customer_id})
    return customer_id


def payment_checkout(payment: Payment) -> base.Checkout:
    return gateway_get(payment.gateway).checkout(payment)


# --- Applying what the gateway says ----------------------------------------------------------


def payment_verify(*, payment: Payment, by: User, client_data: dict[str, str], request: HttpRequest | None = None) -> Payment:
    """The client says it has paid: ask the gateway (checking the callback signature where the
    gateway signs it) and apply the answer. The webhook may have done it already: no harm."""
    if payment.patient_id != by.pk:
        raise ApplicationError("PAY_009")
    if payment.status in (Status.SUCCEEDED, Status.FLAGGED):
        return payment
    if not payment.gateway_reference:
        raise ApplicationError("PAY_002", gettext("This payment has not been started at the gateway yet."))
    try:
        charge = gateway_get(payment.gateway).fetch(payment=payment, client_data=client_data)
    except base.InvalidSignature as exc:
        audit_record(action="payment.verification_refused", actor=by, target=payment, subject_user=by, request=request)
        raise ApplicationError("PAY_002") from exc
    except base.GatewayError as exc:
        raise ApplicationError("PAY_008") from exc
    return payment_apply_charge(payment=payment, charge=charge, source="client", request=request)


def payment_apply_charge(*, payment: Payment, charge: base.ChargeResult, source: str, request: HttpRequest | None = None) -> Payment:
    """Apply the gateway's view of a payment, once. Succeeded with the expected amount →
    paid, invoice issued, appointment confirmed (or refunded in full when its hold lapsed
    first); a different amount or currency → flagged for review, appointment not confirmed;
    failed → failed. Repeats (webhook + callback, duplicate deliveries) change nothing."""
    with transaction.atomic():
        payment = Payment.objects.select_for_update().select_related("appointment", "doctor__user", "patient").get(pk=payment.pk)
        if charge.status == "pending" or payment.status in (Status.SUCCEEDED, Status.FLAGGED):
            return payment
        if charge.status in ("failed", "canceled"):
            if payment.status == Status.PENDING:
                payment.status = Status.FAILED if charge.status == "failed" else Status.VOIDED
                payment.failure_code, payment.failure_message = charge.failure_code[:60], charge.failure_message[:300]
                payment.card_fingerprint = charge.card_fingerprint or payment.card_fingerprint
                payment.save(update_fields=["status", "failure_code", "failure_message", "card_fingerprint", "updated_at"])
                audit_record(
                    action=f"payment.{payment.status}",
                    target=payment,
                    subject_user=payment.patient,
                    request=request,
                    metadata={"source": source, "code": payment.failure_code},
                )
            return payment
        # The money was taken (even if we had given up on this payment: it is then refunded).
        payment.paid_at = timezone.now()
        payment.amount_received_minor = charge.amount_minor
        payment.gateway_payment_id = charge.payment_id[:100]
        payment.card_brand, payment.card_last4, payment.card_fingerprint = charge.card_brand[:20], charge.card_last4[:4], charge.card_fingerprint[:64]
        late = payment.status != Status.PENDING
        problem = _charge_problem(payment, charge)
        if problem or (late and Payment.objects.live().filter(appointment_id=payment.appointment_id).exclude(pk=payment.pk).exists()):
            payment.status = Status.FLAGGED
            payment.flag_reason = problem or "Paid after this attempt was given up while another payment is live."
        else:
            payment.status = Status.SUCCEEDED
        payment.save()
        audit_record(
            action=f"payment.{payment.status}",
            target=payment,
            subject_user=payment.patient,
            request=request,
            metadata={"source": source, "amount_minor": charge.amount_minor, "currency": charge.currency},
        )
        if payment.status == Status.FLAGGED:
            logger.warning("payment flagged", extra={"payment": str(payment.public_id), "gateway": payment.gateway})
            return payment
        if payment.save_card and charge.payment_method_token:
            SavedCard.objects.get_or_create(
                user=payment.patient,
                gateway=payment.gateway,
                token=charge.payment_method_token,
                defaults={
                    "brand": payment.card_brand,
                    "last4": payment.card_last4,
                    "exp_month": charge.card_exp_month,
                    "exp_year": charge.card_exp_year,
                    "fingerprint": payment.card_fingerprint,
                },
            )
        _payment_settle(payment, request=request)
    return payment


def _payment_settle(payment: Payment, *, request: HttpRequest | None = None) -> None:
    """A payment that counts: invoice, appointment confirmed (or the money returned
    when the booking lapsed first), receipt emailed, waiting events re-queued. Inside the
    transaction holding the payment's row lock."""
    invoice_issue(payment=payment)
    try:
        with transaction.atomic():
            appointment_services.appointment_mark_paid(appointment=payment.appointment, request=request)
    except ApplicationError:
        # The hold lapsed (or the booking was cancelled) before the money arrived: give it back.
        _refund_create(
            payment=payment,
            amount_minor=payment.amount_minor,
            reason="The booking had expired before the payment arrived.",
            source=Refund.Source.SYSTEM,
            by=None,
            idempotency_key="late-payment",
        )
    from .tasks import send_receipt

    enqueue_or_run_on_commit(send_receipt, payment_id=payment.pk)
    _requeue_deferred_events(payment)


def payment_flag_resolve(*, payment: Payment, by: User, accept: bool, note: str, request: HttpRequest | None = None) -> Payment:
    """A finance approver decides about a flagged payment. Accept: the charge stands and the
    booking is confirmed as if it had matched. Refund: it counts as taken and everything the
    gateway reported taking goes back (approved at once). Both are audited with the reason."""
    if not can_approve_refunds(by):
        raise ApplicationError("AUTH_010", gettext("Deciding about flagged payments needs the finance approver permission."))
    note = (note or "").strip()
    if not note:
        raise ApplicationError("REQ_001", fields={"note": [gettext("Say why.")]})
    with transaction.atomic():
        payment = Payment.objects.select_for_update().select_related("appointment", "doctor__user", "patient").get(pk=payment.pk)
        if payment.status != Status.FLAGGED:
            raise ApplicationError("PAY_003", gettext("This payment is not flagged for review."))
        another_stands = Payment.objects.live().filter(appointment_id=payment.appointment_id).exclude(pk=payment.pk).exists()
        accept = accept and not another_stands  # a second payment for one booking can only go back
        if not another_stands:
            payment.status = Status.SUCCEEDED
            payment.save(update_fields=["status", "updated_at"])
        audit_record(
            action="payment.flag_accepted" if accept else "payment.flag_refunded", actor=by, target=payment, subject_user=payment.patient, request=request
        )
        if accept:
            _payment_settle(payment, request=request)
        else:
            received = min(payment.amount_received_minor or payment.amount_minor, payment.amount_minor)
            _refund_create(
                payment=payment,
                amount_minor=received,
                reason=f"Flagged payment returned: {note}",
                source=Refund.Source.SYSTEM,
                by=by,
                idempotency_key="flagged",
                request=request,
            )
    return payment


def _charge_problem(payment: Payment, charge: base.ChargeResult) -> str:
    if charge.amount_minor != payment.amount_minor or charge.currency.upper() != payment.currency:
        return f"The gateway reported {charge.amount_minor} {charge.currency.upper()}, expected {payment.amount_minor} {payment.currency}."
    if charge.card_fingerprint:
        since = timezone.now() - timedelta(hours=1)
        failures = Payment.objects.filter(status=Status.FAILED, card_fingerprint=charge.card_fingerprint, updated_at__gte=since).count()
        if failures >= settings.PAYMENT_MAX_FAILURES_PER_HOUR:
            return f"The card failed {failures} times in the last hour."
    return ""


def payments_void_lapsed() -> int:
    """Every minute (beat): pending payments whose appointment expired or was cancelled are
    voided at the gateway, so the patient can no longer pay for a slot they no longer hold."""
    voided = 0
    lapsed = Payment.objects.filter(status=Status.PENDING, appointment__status__in=[Appointment.Status.EXPIRED, Appointment.Status.CANCELLED])
    for payment in lapsed.select_related("patient")[:200]:
        if payment.gateway_reference:
            try:
                gateway_get(payment.gateway).void(payment=payment)
            except base.GatewayError:
                continue  # next run tries again
        if Payment.objects.filter(pk=payment.pk, status=Status.PENDING).update(status=Status.VOIDED, failure_message="The booking expired before it was paid."):
            audit_record(action="payment.voided", target=payment, subject_user=payment.patient)
            voided += 1
    return voided


# --- Invoices ------------------------------------------------------------------------------


def tax_for(*, country: str, total_minor: int) -> tuple[str, Decimal, int]:
    """Consultation prices include tax; the tax is carved out of the total by the doctor's
    country (the platform setting TAX_RULES, e.g. GST 18 % in India): tax = total × rate /
    (100 + rate), rounded half up to the currency's minor unit; the rest is the net price."""
    rule = platform.tax_rule(country)
    if rule is None:
        return "", Decimal(0), 0
    tax = int((Decimal(total_minor) * rule.rate / (100 + rule.rate)).quantize(Decimal(1), ROUND_HALF_UP))
    return rule.name, rule.rate, tax


def invoice_issue(*, payment: Payment) -> Invoice:
    """Issue the invoice for a paid payment, inside the caller's transaction. The year's counter
    row is locked, so numbers are consecutive with no gaps: a rollback gives the number back."""
    existing = Invoice.objects.filter(payment=payment).first()
    if existing is not None:
        return existing
    issued_at = timezone.now()
    InvoiceCounter.objects.get_or_create(year=issued_at.year)
    counter = InvoiceCounter.objects.select_for_update().get(year=issued_at.year)
    counter.last_number += 1
    counter.save(update_fields=["last_number"])
    appointment, doctor = payment.appointment, payment.doctor
    tax_name, tax_rate, tax_minor = tax_for(country=doctor.country, total_minor=payment.amount_minor)
    local_start = appointment.start.astimezone(ZoneInfo(payment.patient.timezone or "UTC"))
    return Invoice.objects.create(
        payment=payment,
        year=issued_at.year,
        sequence=counter.last_number,
        number=f"{settings.INVOICE_PREFIX}-{issued_at.year}-{counter.last_number:06d}",
        issued_at=issued_at,
        currency=payment.currency,
        lines=[
            {
                "description": f"{appointment.service.name} with {doctor.display_name}, {local_start:%d %b %Y %H:%M} ({local_start.tzname()})",
                "quantity": 1,
                "unit_minor": payment.amount_minor,
                "total_minor": payment.amount_minor,
            }
        ],
        subtotal_minor=payment.amount_minor - tax_minor,
        tax_name=tax_name,
        tax_rate=tax_rate,
        tax_minor=tax_minor,
        total_minor=payment.amount_minor,
        seller={
            "name": doctor.display_name,
            "registration": f"{doctor.licence_country} {doctor.licence_number}",
            "clinic": doctor.clinic_name,
            "city": doctor.city,
            "country": doctor.country,
        },
        buyer_name=payment.patient.display_name,
        payment_method=f"{payment.card_brand.title()} •••• {payment.card_last4}" if payment.card_last4 else payment.get_gateway_display(),
    )


# --- Refunds -------------------------------------------------------------------------------


def refund_remaining(payment: Payment) -> int:
    """What can still be refunded: paid minus every refund not rejected or failed for good."""
    committed = payment.refunds.filter(status__in=Refund.COMMITTED_STATUSES).aggregate(total=Sum("amount_minor"))["total"] or 0
    return payment.amount_minor - committed if payment.status in (Status.SUCCEEDED, Status.FLAGGED) else 0


def _refund_create(
    *, payment: Payment, amount_minor: int, reason: str, source: str, by: User | None, idempotency_key: str, request: HttpRequest | None = None
) -> Refund:
    """Inside a transaction holding the payment row lock."""
    if idempotency_key:
        existing = payment.refunds.filter(idempotency_key=idempotency_key).first()
        if existing is not None:
            return existing
    if amount_minor <= 0 or amount_minor > refund_remaining(payment):
        raise ApplicationError(
            "PAY_003",
            f"At most {refund_remaining(payment)} (minor units) can still be refunded.",
            fields={"amount_minor": [gettext("More than what is left to refund.")]},
        )
    automatic = source in (Refund.Source.POLICY, Refund.Source.SYSTEM)
    refund = Refund.objects.create(
        payment=payment,
        amount_minor=amount_minor,
        reason=reason[:500],
        source=source,
        status=Refund.Status.APPROVED if automatic else Refund.Status.REQUESTED,
        requested_by=by,
        decided_at=timezone.now() if automatic else None,
        idempotency_key=idempotency_key[:100],
    )
    audit_record(
        action="refund.requested",
        actor=by,
        target=refund,
        subject_user=payment.patient,
        request=request,
        metadata={"amount_minor": amount_minor, "source": source, "payment": str(payment.public_id)},
    )
    if automatic:
        _refund_enqueue(refund)
    return refund


def _refund_enqueue(refund: Refund) -> None:
    from .tasks import process_refund

    enqueue_on_commit(process_refund, refund_id=refund.pk)


def refund_request(
    *, payment: Payment, by: User, reason: str, amount_minor: int | None = None, idempotency_key: str = "", request: HttpRequest | None = None
) -> Refund:
    """A patient (for their own payment) or staff asks for a refund, in full or in part. It waits
    for a finance approver; the cancellation policy's refunds do not come through here."""
    reason = (reason or "").strip()
    if not reason:
        raise ApplicationError("REQ_001", fields={"reason": [gettext("Give a reason for the refund.")]})
    if payment.patient_id != by.pk and not staff_can(by, "payments.add_refund"):
        raise ApplicationError("PAY_009")
    with transaction.atomic():
        payment = Payment.objects.select_for_update().select_related("patient").get(pk=payment.pk)
        if payment.status != Status.SUCCEEDED:
            raise ApplicationError("PAY_003", gettext("Only a completed payment can be refunded."))
        amount = refund_remaining(payment) if amount_minor is None else amount_minor
        source = Refund.Source.STAFF if by.is_staff else Refund.Source.PATIENT
        try:
            with transaction.atomic():
                return _refund_create(
                    payment=payment, amount_minor=amount, reason=reason, source=source, by=by, idempotency_key=idempotency_key, request=request
                )
        except IntegrityError:  # the same Idempotency-Key raced in: return that refund
            refund = payment.refunds.filter(idempotency_key=idempotency_key[:100]).first()
            if refund is None:
                raise
            return refund


def refund_for_cancellation(*, appointment_id: int, percent: int) -> Refund | None:
    """The cancellation policy's refund (Step 3's seam): ``percent`` of what was paid, approved at
    once and processed by Celery. Runs once per appointment whatever calls it twice."""
    if percent >= 100:  # a booking covered by a care plan gets its consultation back instead
        from .subscriptions import credits_return

        credits_return(appointment_ids=[appointment_id])
    with transaction.atomic():
        payment = Payment.objects.select_for_update().filter(appointment_id=appointment_id, status=Status.SUCCEEDED).first()
        if payment is None or percent <= 0:
            return None
        amount = min(payment.amount_minor * percent // 100, refund_remaining(payment))
        if amount <= 0:
            return None
        return _refund_create(
            payment=payment,
            amount_minor=amount,
            reason=f"Cancellation: {percent} % refund under the policy.",
            source=Refund.Source.POLICY,
            by=None,
            idempotency_key=f"cancellation-{appointment_id}",
        )


def can_approve_refunds(user: User) -> bool:
    return bool(user.is_active and user.is_staff and user.has_perm("payments.approve_refund"))


def refund_decide(*, refund: Refund, by: User, approve: bool, note: str = "", request: HttpRequest | None = None) -> Refund:
    """A finance approver approves (then Celery processes it) or rejects a requested refund.
    Nobody approves a refund they asked for themselves."""
    if not can_approve_refunds(by):
        raise ApplicationError("AUTH_010", gettext("Approving refunds needs the finance approver permission."))
    with transaction.atomic():
        refund = Refund.objects.select_for_update().select_related("payment__patient").get(pk=refund.pk)
        if refund.status != Refund.Status.REQUESTED:
            raise ApplicationError("PAY_003", gettext("This refund is %(status)s, not waiting for a decision.") % {"status": refund.get_status_display().lower()})
        if refund.requested_by_id == by.pk:
            raise ApplicationError("PAY_012")
        if not approve and not (note or "").strip():
            raise ApplicationError("REQ_001", fields={"note": [gettext("Say why the refund is rejected.")]})
        refund.status = Refund.Status.APPROVED if approve else Refund.Status.REJECTED
        refund.decided_by, refund.decided_at, refund.decision_note = by, timezone.now(), (note or "")[:500]
        refund.save(update_fields=["status", "decided_by", "decided_at", "decision_note", "updated_at"])
        audit_record(
            action=f"refund.{refund.status}",
            actor=by,
            target=refund,
            subject_user=refund.payment.patient,
            request=request,
            metadata={"amount_minor": refund.amount_minor},
        )
        if approve:
            _refund_enqueue(refund)
        else:
            _notify_refund(refund)
    return refund


def refund_process(*, refund_id: int) -> Refund:
    """Send an approved refund to the gateway (or retry a failed one, or one left "processing"
    past its lease by a worker that died). The conditional update claims it, so two workers never
    send it at once; the idempotency key derived from the refund makes a retry after a timeout or
    a killed worker return the same gateway refund instead of a second one."""
    now = timezone.now()
    claimable = Q(status__in=[Refund.Status.APPROVED, Refund.Status.FAILED]) | Q(status=Refund.Status.PROCESSING, updated_at__lt=now - processing_lease())
    claimed = Refund.objects.filter(claimable, pk=refund_id, attempts__lt=settings.REFUND_MAX_ATTEMPTS).update(
        status=Refund.Status.PROCESSING, attempts=F("attempts") + 1, updated_at=now
    )
    refund = Refund.objects.select_related("payment").get(pk=refund_id)
    if not claimed:
        return refund
    try:
        result = gateway_get(refund.payment.gateway).refund(
            payment=refund.payment, amount_minor=refund.amount_minor, idempotency_key=f"refund-{refund.public_id}", reason=refund.reason
        )
    except base.GatewayError as exc:
        logger.warning("refund failed at the gateway", extra={"refund": str(refund.public_id), "retryable": exc.retryable})
        if not exc.retryable:  # no automatic retry: staff look at it (admin action "retry")
            Refund.objects.filter(pk=refund.pk).update(attempts=settings.REFUND_MAX_ATTEMPTS)
        result = base.RefundResult(reference="", status="failed", failure_message=str(exc)[:300])
    return refund_apply_result(refund=refund, result=result)


def refunds_retry_failed() -> int:
    """Every five minutes (beat): failed refunds are sent again with exponential backoff
    (2, 4, 8, … minutes after the last attempt), up to ``REFUND_MAX_ATTEMPTS``, and refunds
    stuck "processing" past ``REFUND_PROCESSING_LEASE_SECONDS`` are sent again."""
    now, count = timezone.now(), 0
    for refund in Refund.objects.filter(status=Refund.Status.FAILED, attempts__lt=settings.REFUND_MAX_ATTEMPTS)[:200]:
        if refund.updated_at <= now - timedelta(minutes=2**refund.attempts):
            _refund_enqueue(refund)
            count += 1
    # A worker killed mid-call left these "processing": sent again with the same idempotency key.
    for refund in Refund.objects.filter(status=Refund.Status.PROCESSING, updated_at__lt=now - processing_lease(), attempts__lt=settings.REFUND_MAX_ATTEMPTS)[:200]:
        _refund_enqueue(refund)
        count += 1
    return count


def processing_lease() -> timedelta:
    return timedelta(seconds=settings.REFUND_PROCESSING_LEASE_SECONDS)


def refund_apply_result(*, refund: Refund, result: base.RefundResult) -> Refund:
    """Record the gateway's answer about a refund, once (callback and webhook both land here)."""
    with transaction.atomic():
        payment = Payment.objects.select_for_update().get(pk=refund.payment_id)
        refund = Refund.objects.select_for_update().get(pk=refund.pk)
        if refund.status == Refund.Status.SUCCEEDED or result.status == "pending":
            if result.reference and not refund.gateway_reference:
                Refund.objects.filter(pk=refund.pk).update(gateway_reference=result.reference)
            return refund
        refund.gateway_reference = result.reference or refund.gateway_reference
        if result.status == "succeeded":
            refund.status, refund.processed_at, refund.failure_message = Refund.Status.SUCCEEDED, timezone.now(), ""
            Payment.objects.filter(pk=payment.pk).update(amount_refunded_minor=F("amount_refunded_minor") + refund.amount_minor)
        else:
            refund.status, refund.failure_message = Refund.Status.FAILED, result.failure_message[:300]
        refund.save(update_fields=["status", "processed_at", "failure_message", "gateway_reference", "updated_at"])
        audit_record(action=f"refund.{refund.status}", target=refund, subject_user=payment.patient, metadata={"amount_minor": refund.amount_minor})
        if refund.status == Refund.Status.SUCCEEDED:
            _notify_refund(refund)
    return refund


def _notify_refund(refund: Refund) -> None:
    from .tasks import notify_refund

    enqueue_or_run_on_commit(notify_refund, refund_id=refund.pk)


# --- Webhooks ------------------------------------------------------------------------------


def webhook_receive(*, gateway_name: str, body: bytes, headers: dict[str, str]) -> tuple[WebhookEvent, bool]:
    """Verify and store a gateway event, then leave the work to Celery. Returns the stored event
    and whether it is new; a duplicate delivery is acknowledged and otherwise ignored."""
    try:
        event = gateway_get(gateway_name).parse_webhook(body=body, headers=headers)
    except base.InvalidSignature as exc:
        logger.warning("webhook signature refused", extra={"gateway": gateway_name})
        raise ApplicationError("PAY_002", gettext("The webhook signature is not valid.")) from exc
    try:
        with transaction.atomic():
            stored = WebhookEvent.objects.create(
                gateway=gateway_name,
                event_id=event.event_id[:100],
                event_type=event.event_type[:100],
                payload=event.payload,
                object_reference=event.payment_reference[:100],
            )
            _event_enqueue(stored)
    except IntegrityError:
        return WebhookEvent.objects.get(gateway=gateway_name, event_id=event.event_id[:100]), False
    return stored, True


def _event_enqueue(event: WebhookEvent) -> None:
    from .tasks import process_webhook_event

    enqueue_on_commit(process_webhook_event, event_id=event.pk)


def _requeue_deferred_events(payment: Payment) -> None:
    references = [ref for ref in (payment.gateway_reference, payment.gateway_payment_id) if ref]
    for event in WebhookEvent.objects.filter(gateway=payment.gateway, status=WebhookEvent.Status.DEFERRED, object_reference__in=references):
        _event_enqueue(event)


class EventNotReady(Exception):
    """The event is about something we have not recorded yet (out of order): try again later."""


def webhook_event_process(*, event_id: int) -> str:
    """Apply one stored event exactly once: a conditional update claims it, so concurrent
    deliveries and task retries cannot apply it twice. Events that arrive before the event they
    depend on (a refund before its payment) are deferred and retried when the payment lands."""
    claimed = WebhookEvent.objects.filter(
        pk=event_id, status__in=[WebhookEvent.Status.RECEIVED, WebhookEvent.Status.DEFERRED, WebhookEvent.Status.FAILED]
    ).update(status=WebhookEvent.Status.PROCESSING, attempts=F("attempts") + 1)
    if not claimed:
        return "skipped"
    stored = WebhookEvent.objects.get(pk=event_id)
    try:
        event = gateway_get(stored.gateway).event_from_payload(stored.payload, event_id=stored.event_id)
        outcome = _apply_event(stored.gateway, event)
    except EventNotReady:
        outcome = WebhookEvent.Status.DEFERRED
    except Exception as exc:  # recorded and retried by the beat task; one bad event never blocks the others
        logger.exception("webhook event failed", extra={"gateway": stored.gateway, "event": stored.event_id})
        WebhookEvent.objects.filter(pk=event_id).update(status=WebhookEvent.Status.FAILED, error=f"{type(exc).__name__}: {exc}"[:500])
        return WebhookEvent.Status.FAILED
    WebhookEvent.objects.filter(pk=event_id).update(status=outcome, processed_at=timezone.now(), error="")
    return outcome


def _payment_for_reference(gateway: str, reference: str) -> Payment | None:
    if not reference:
        return None
    return Payment.objects.filter(Q(gateway_reference=reference) | Q(gateway_payment_id=reference), gateway=gateway).first()


def _apply_event(gateway: str, event: base.GatewayEvent) -> str:
    from . import subscriptions

    if event.kind == base.OTHER:
        return WebhookEvent.Status.IGNORED
    if event.kind in (base.SUBSCRIPTION_PAID, base.SUBSCRIPTION_PAYMENT_FAILED, base.SUBSCRIPTION_UPDATED, base.SUBSCRIPTION_ENDED):
        subscription = subscriptions.subscription_for_event(gateway, event.subscription_reference)
        if subscription is None:
            raise EventNotReady  # our record of the start may not be committed yet
        if event.invoice is not None:
            subscriptions.subscription_invoice_apply(subscription=subscription, invoice=event.invoice)
        if event.subscription is not None:
            subscriptions.subscription_state_apply(subscription=subscription, state=event.subscription)
        return WebhookEvent.Status.PROCESSED
    charge = subscriptions.charge_for_reference(gateway, event.payment_reference) if event.kind in (base.PAYMENT_SUCCEEDED, base.PAYMENT_FAILED) else None
    if charge is not None:  # the first payment of a sandbox subscription (its card page)
        subscriptions.subscription_charge_apply(charge=charge, result=event.charge, source="webhook")
        return WebhookEvent.Status.PROCESSED
    payment = _payment_for_reference(gateway, event.payment_reference)
    if event.kind in (base.PAYMENT_SUCCEEDED, base.PAYMENT_FAILED, base.PAYMENT_CANCELED):
        if payment is None:
            raise EventNotReady  # our own record of the start may not be committed yet
        charge = event.charge
        if charge.status == "succeeded" and not charge.card_last4:
            # Stripe's events carry the charge id but not the card: ask for the full picture.
            try:
                charge = gateway_get(gateway).fetch(payment=payment, client_data={})
            except (base.GatewayError, base.InvalidSignature):
                charge = event.charge
        payment_apply_charge(payment=payment, charge=charge, source="webhook")
        return WebhookEvent.Status.PROCESSED
    # Refund events.
    refund = Refund.objects.filter(payment__gateway=gateway, gateway_reference=event.refund_reference).first() if event.refund_reference else None
    if refund is None and event.refund_key.startswith("refund-"):
        # One we asked for, found by the key the gateway echoes back — even when our own call
        # timed out (and the refund is marked failed) although the gateway made it.
        refund = Refund.objects.filter(public_id=_uuid_or_none(event.refund_key.removeprefix("refund-")), payment__gateway=gateway).first()
    if refund is not None:
        status = "succeeded" if event.kind == base.REFUND_SUCCEEDED else "failed"
        refund_apply_result(refund=refund, result=base.RefundResult(reference=event.refund_reference, status=status, failure_message=event.refund_failure))
        return WebhookEvent.Status.PROCESSED
    if event.kind == base.REFUND_FAILED:
        return WebhookEvent.Status.IGNORED
    if payment is None or payment.status != Status.SUCCEEDED:
        raise EventNotReady  # refunded before we have seen the payment succeed
    _refund_record_external(payment=payment, event=event)
    return WebhookEvent.Status.PROCESSED


def _uuid_or_none(value: str):
    import uuid

    try:
        return uuid.UUID(value)
    except ValueError:
        return None


def _refund_record_external(*, payment: Payment, event: base.GatewayEvent) -> None:
    """A refund made at the gateway itself (its dashboard): record it so our books agree."""
    with transaction.atomic():
        payment = Payment.objects.select_for_update().get(pk=payment.pk)
        if payment.refunds.filter(gateway_reference=event.refund_reference).exists():
            return
        amount = min(event.refund_amount_minor, refund_remaining(payment))
        if amount <= 0:
            logger.warning("external refund exceeds what was paid", extra={"payment": str(payment.public_id)})
            return
        refund = Refund.objects.create(
            payment=payment,
            amount_minor=amount,
            reason="Refunded at the payment provider.",
            source=Refund.Source.GATEWAY,
            status=Refund.Status.SUCCEEDED,
            decided_at=timezone.now(),
            processed_at=timezone.now(),
            gateway_reference=event.refund_reference[:100],
        )
        Payment.objects.filter(pk=payment.pk).update(amount_refunded_minor=F("amount_refunded_minor") + amount)
        audit_record(action="refund.succeeded", target=refund, subject_user=payment.patient, metadata={"amount_minor": amount, "source": "gateway"})
        _notify_refund(refund)


def webhook_events_retry() -> int:
    """Every five minutes (beat): deferred events, failed ones and ones a dead worker left in
    processing are tried again, a bounded number of times."""
    stale = timezone.now() - timedelta(minutes=10)
    WebhookEvent.objects.filter(status=WebhookEvent.Status.PROCESSING, received_at__lt=stale).update(status=WebhookEvent.Status.FAILED)
    retry = WebhookEvent.objects.filter(status__in=[WebhookEvent.Status.DEFERRED, WebhookEvent.Status.FAILED], attempts__lt=12)
    count = 0
    for event in retry[:500]:
        _event_enqueue(event)
        count += 1
    return count


# --- Saved cards -----------------------------------------------------------------------------


def saved_card_delete(*, card: SavedCard, by: User, request: HttpRequest | None = None) -> None:
    if card.user_id != by.pk:
        raise ApplicationError("PAY_009", gettext("Card not found."))
    audit_record(action="payment_method.deleted", actor=by, target=card, subject_user=by, request=request)
    card.delete()


def webhook_event_retry(*, event: WebhookEvent) -> None:
    """Staff asks for a failed or deferred event to be processed again."""
    _event_enqueue(event)
