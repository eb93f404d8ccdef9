"""Payments through the sandbox gateway end to end: create, pay, webhook + callback applied once,
amount checks, hold expiry, refunds and their approval, invoices, reconciliation."""

from __future__ import annotations

import io
import json
import threading
from datetime import timedelta

import pytest
from constance.test import override_config
from django.core import mail
from django.core.management import call_command
from django.db import close_old_connections

from accounts.tests.factories import StaffFactory, UserFactory, staff_member
from appointments import services as appointment_services
from appointments.models import AppointmentEvent
from medimeet.core import roles
from medimeet.core.errors import ApplicationError
from medimeet.core.models import AuditEvent
from payments import selectors, services
from payments.gateways import base, gateway_name_for, sandbox
from payments.models import Invoice, Payment, Refund, SandboxTransaction, WebhookEvent

from .conftest import NOW, awaiting_payment, pdf_text

# Real commits: payments act after commit (webhooks, refunds, receipts), as in production.
pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("frozen_time")]

VISA, DECLINED = "4242 4242 4242 4242", "4000 0000 0000 0002"


def pay(payment, card=VISA):
    return sandbox.sandbox_pay(reference=payment.gateway_reference, card_number=card)


def finance_approver():
    return staff_member(roles.FINANCE)


def signed_sandbox_event(event_type, data, event_id="evt_test_1"):
    body = json.dumps({"id": event_id, "type": event_type, "created": 0, "data": data}).encode()
    return body, {sandbox.SIGNATURE_HEADER: sandbox.sign(body)}


def tx_data(tx, **overrides):
    """The sandbox's event data for a transaction, as if a Visa card had paid it."""
    return {**sandbox._tx_data(tx), "card": {"brand": "visa", "last4": "4242", "fingerprint": "fp-visa"}, **overrides}


# --- Gateway choice ----------------------------------------------------------------------------


def test_gateway_is_razorpay_for_inr_or_india_and_stripe_otherwise_when_keys_are_set(settings):
    settings.STRIPE_SECRET_KEY, settings.STRIPE_WEBHOOK_SECRET = "sk_test_x", "whsec_x"
    settings.RAZORPAY_KEY_ID, settings.RAZORPAY_KEY_SECRET, settings.RAZORPAY_WEBHOOK_SECRET = "rzp_test_x", "secret", "whsecret"

    assert gateway_name_for(currency="INR") == "razorpay"
    assert gateway_name_for(currency="USD", billing_country="in") == "razorpay"
    assert gateway_name_for(currency="USD", billing_country="US") == "stripe"
    assert gateway_name_for(currency="JPY") == "stripe"
    settings.PAYMENT_GATEWAY = "sandbox"
    assert gateway_name_for(currency="INR") == "sandbox"


def test_without_keys_every_payment_goes_to_the_sandbox():
    assert gateway_name_for(currency="INR") == "sandbox"
    assert gateway_name_for(currency="USD", billing_country="US") == "sandbox"


# --- The happy path ------------------------------------------------------------------------------


def test_paying_on_the_sandbox_confirms_the_appointment_once_and_emails_a_receipt_pdf(clinic, patient):
    appointment = awaiting_payment(clinic, patient)

    payment = services.payment_create(patient=patient, appointment=appointment)
    pay(payment)  # the sandbox delivers its signed webhook after commit
    payment.refresh_from_db()
    services.payment_verify(payment=payment, by=patient, client_data={})  # the client callback, after the webhook

    appointment.refresh_from_db()
    assert (payment.status, payment.amount_minor, payment.currency, payment.gateway) == ("succeeded", 50000, "INR", "sandbox")
    assert (payment.card_brand, payment.card_last4) == ("visa", "4242")
    assert appointment.status == "confirmed"
    assert AppointmentEvent.objects.filter(appointment=appointment, to_status="confirmed").count() == 1
    assert WebhookEvent.objects.get().status == "processed"
    invoice = Invoice.objects.get()
    assert invoice.number == "MM-2026-000001"
    receipt = next(m for m in mail.outbox if "receipt" in m.subject.lower())
    assert receipt.to == [patient.email]
    name, content, mimetype = receipt.attachments[0]
    assert (name, mimetype) == ("MM-2026-000001.pdf", "application/pdf")
    text = pdf_text(content)
    assert "MM-2026-000001" in text and "₹500.00" in text and "GST 18 %" in text and invoice.verification_code in text


def test_a_hindi_patients_receipt_is_in_hindi_with_an_embedded_devanagari_font(clinic, patient):
    from pypdf import PdfReader

    from payments.receipts import invoice_pdf

    patient.language = "hi"
    patient.save(update_fields=["language"])
    payment = services.payment_create(patient=patient, appointment=awaiting_payment(clinic, patient))
    pay(payment)
    invoice = Invoice.objects.get(payment=payment)

    content = invoice_pdf(invoice)

    reader = PdfReader(io.BytesIO(content))
    fonts = {str(font.get_object()["/BaseFont"]) for page in reader.pages for font in page["/Resources"]["/Font"].values()}
    text = pdf_text(content)
    assert any("NotoSansDevanagari" in name.replace("-", "") for name in fonts)
    assert "रसीद" in text and invoice.number in text and "₹500.00" in text  # (pypdf garbles some conjuncts: simple words only)


def test_the_amount_is_the_appointments_price_with_gst_carved_out_for_india(clinic, patient):
    payment = services.payment_create(patient=patient, appointment=awaiting_payment(clinic, patient))
    pay(payment)

    invoice = Invoice.objects.get(payment=payment)
    # 18 % included in 500.00: 500 × 18 / 118 = 76.27
    assert (invoice.total_minor, invoice.tax_minor, invoice.subtotal_minor, invoice.tax_name) == (50000, 7627, 42373, "GST")
    assert Payment.objects.get().platform_fee_minor == 5000


def test_a_declined_card_fails_the_payment_and_the_patient_can_try_again(clinic, patient):
    appointment = awaiting_payment(clinic, patient)
    first = services.payment_create(patient=patient, appointment=appointment)

    pay(first, DECLINED)
    first.refresh_from_db()
    second = services.payment_create(patient=patient, appointment=appointment)
    pay(second)

    appointment.refresh_from_db()
    second.refresh_from_db()
    assert (first.status, first.failure_code) == ("failed", "card_declined")
    assert second.pk != first.pk and second.status == "succeeded"
    assert appointment.status == "confirmed"


def test_creating_twice_without_a_key_resumes_the_pending_payment(clinic, patient):
    appointment = awaiting_payment(clinic, patient)

    first = services.payment_create(patient=patient, appointment=appointment)
    again = services.payment_create(patient=patient, appointment=appointment)

    assert again.pk == first.pk and again.gateway_reference == first.gateway_reference
    assert SandboxTransaction.objects.count() == 1


def test_the_same_idempotency_key_replays_the_payment_and_a_reused_key_for_another_booking_is_refused(clinic, patient):
    first_appointment = awaiting_payment(clinic, patient)
    first = services.payment_create(patient=patient, appointment=first_appointment, idempotency_key="pay-1")

    again = services.payment_create(patient=patient, appointment=first_appointment, idempotency_key="pay-1")
    other = awaiting_payment(clinic, patient, start=first_appointment.start + timedelta(days=1))
    with pytest.raises(ApplicationError) as refused:
        services.payment_create(patient=patient, appointment=other, idempotency_key="pay-1")

    assert again.pk == first.pk
    assert refused.value.code == "REQ_001"
    assert Payment.objects.count() == 1


def test_a_gateway_timeout_on_create_is_pay_008_and_the_retry_with_the_same_key_makes_one_charge(clinic, patient, monkeypatch):
    appointment = awaiting_payment(clinic, patient)
    real_start = sandbox.SandboxGateway.start
    calls = []

    def flaky_start(self, **kwargs):
        calls.append(kwargs["payment"].public_id)
        if len(calls) == 1:
            raise base.GatewayError("Read timed out")
        return real_start(self, **kwargs)

    monkeypatch.setattr(sandbox.SandboxGateway, "start", flaky_start)
    with pytest.raises(ApplicationError) as timeout:
        services.payment_create(patient=patient, appointment=appointment, idempotency_key="k-1")
    payment = services.payment_create(patient=patient, appointment=appointment, idempotency_key="k-1")

    assert timeout.value.code == "PAY_008"
    assert calls[0] == calls[1] == payment.public_id  # same payment, same gateway idempotency key
    assert Payment.objects.count() == 1 and SandboxTransaction.objects.count() == 1
    assert payment.gateway_reference


# --- Refusals ------------------------------------------------------------------------------------


def test_paying_for_someone_elses_appointment_is_not_found_and_changes_nothing(clinic, patient):
    appointment = awaiting_payment(clinic, patient)

    with pytest.raises(ApplicationError) as refused:
        services.payment_create(patient=UserFactory(), appointment=appointment)

    assert refused.value.code == "APPT_006"
    assert not Payment.objects.exists()


def test_paying_before_the_details_are_confirmed_or_after_payment_is_refused(clinic, patient):
    hold = appointment_services.appointment_hold(
        patient=patient, service=clinic["service"], start=awaiting_payment(clinic, UserFactory()).start + timedelta(hours=1)
    )
    with pytest.raises(ApplicationError) as not_ready:
        services.payment_create(patient=patient, appointment=hold)
    appointment = awaiting_payment(clinic, patient, start=hold.start + timedelta(days=1))
    pay(services.payment_create(patient=patient, appointment=appointment))
    with pytest.raises(ApplicationError) as paid:
        services.payment_create(patient=patient, appointment=appointment)

    assert not_ready.value.code == "PAY_010"
    assert paid.value.code == "PAY_004"
    assert Payment.objects.count() == 1


def test_an_unsupported_currency_is_pay_005(clinic, patient):
    appointment = awaiting_payment(clinic, patient)

    with override_config(PAYMENT_CURRENCIES="USD"), pytest.raises(ApplicationError) as refused:  # the platform setting staff edit
        services.payment_create(patient=patient, appointment=appointment)

    assert refused.value.code == "PAY_005"
    assert not Payment.objects.exists()


def test_too_many_failed_attempts_in_an_hour_stop_new_payments(clinic, patient, settings):
    settings.PAYMENT_MAX_FAILURES_PER_HOUR = 3
    appointment = awaiting_payment(clinic, patient)
    for _ in range(3):
        pay(services.payment_create(patient=patient, appointment=appointment), DECLINED)

    with pytest.raises(ApplicationError) as refused:
        services.payment_create(patient=patient, appointment=appointment)

    assert refused.value.code == "PAY_007"
    assert Payment.objects.count() == 3


def test_a_charge_of_another_amount_flags_the_payment_and_does_not_confirm(clinic, patient):
    appointment = awaiting_payment(clinic, patient)
    payment = services.payment_create(patient=patient, appointment=appointment)
    tx = SandboxTransaction.objects.get()
    body, headers = signed_sandbox_event("payment.succeeded", tx_data(tx, status="succeeded", amount_minor=100))

    services.webhook_receive(gateway_name="sandbox", body=body, headers=headers)

    payment.refresh_from_db()
    appointment.refresh_from_db()
    assert payment.status == "flagged" and "100 INR" in payment.flag_reason
    assert appointment.status == "pending_payment"
    assert not Invoice.objects.exists()
    assert AuditEvent.objects.filter(action="payment.flagged").exists()


# --- Webhooks ------------------------------------------------------------------------------------


def test_a_forged_webhook_is_pay_002_and_nothing_is_stored_or_changed(clinic, patient):
    payment = services.payment_create(patient=patient, appointment=awaiting_payment(clinic, patient))
    tx = SandboxTransaction.objects.get()
    body, _ = signed_sandbox_event("payment.succeeded", tx_data(tx, status="succeeded"))

    with pytest.raises(ApplicationError) as forged:
        services.webhook_receive(gateway_name="sandbox", body=body, headers={sandbox.SIGNATURE_HEADER: sandbox.sign(body, secret="not-the-secret")})

    payment.refresh_from_db()
    assert forged.value.code == "PAY_002"
    assert not WebhookEvent.objects.exists()
    assert payment.status == "pending"


def test_an_old_signature_outside_the_tolerance_window_is_refused(clinic, patient):
    body, _ = signed_sandbox_event("payment.succeeded", {})
    stale = sandbox.sign(body, timestamp=int(NOW.timestamp()) - 3600)

    with pytest.raises(ApplicationError) as refused:
        services.webhook_receive(gateway_name="sandbox", body=body, headers={sandbox.SIGNATURE_HEADER: stale})

    assert refused.value.code == "PAY_002"


def test_the_same_event_delivered_five_times_changes_state_once(clinic, patient):
    appointment = awaiting_payment(clinic, patient)
    payment = services.payment_create(patient=patient, appointment=appointment)
    tx = SandboxTransaction.objects.get()
    body, headers = signed_sandbox_event("payment.succeeded", tx_data(tx, status="succeeded", card={"brand": "visa", "last4": "4242", "fingerprint": "f"}))

    results = [services.webhook_receive(gateway_name="sandbox", body=body, headers=headers)[1] for _ in range(5)]

    payment.refresh_from_db()
    assert results == [True, False, False, False, False]
    assert WebhookEvent.objects.count() == 1 and payment.status == "succeeded"
    assert Invoice.objects.count() == 1
    assert AppointmentEvent.objects.filter(appointment=appointment, to_status="confirmed").count() == 1


def test_a_refund_event_before_its_payment_event_waits_and_then_applies(clinic, patient):
    appointment = awaiting_payment(clinic, patient)
    payment = services.payment_create(patient=patient, appointment=appointment)
    tx = SandboxTransaction.objects.get()
    paid = tx_data(tx, status="succeeded")
    refund_body, refund_headers = signed_sandbox_event(
        "refund.succeeded", {**paid, "amount_refunded_minor": 20000, "refund": {"id": "sbx_re_1", "amount_minor": 20000}}, "evt_refund"
    )
    payment_body, payment_headers = signed_sandbox_event("payment.succeeded", paid, "evt_payment")

    services.webhook_receive(gateway_name="sandbox", body=refund_body, headers=refund_headers)
    deferred = WebhookEvent.objects.get(event_id="evt_refund").status
    services.webhook_receive(gateway_name="sandbox", body=payment_body, headers=payment_headers)

    payment.refresh_from_db()
    assert deferred == "deferred"
    assert WebhookEvent.objects.get(event_id="evt_refund").status == "processed"
    assert payment.status == "succeeded" and payment.amount_refunded_minor == 20000
    refund = Refund.objects.get()
    assert (refund.source, refund.status, refund.gateway_reference, refund.amount_minor) == ("gateway", "succeeded", "sbx_re_1", 20000)


@pytest.mark.django_db(transaction=True)
def test_five_concurrent_deliveries_of_one_event_change_state_once(clinic, patient):
    appointment = awaiting_payment(clinic, patient)
    payment = services.payment_create(patient=patient, appointment=appointment)
    tx = SandboxTransaction.objects.get()
    body, headers = signed_sandbox_event("payment.succeeded", tx_data(tx, status="succeeded"))
    barrier, outcomes = threading.Barrier(5), []

    def deliver():
        try:
            barrier.wait()
            outcomes.append(services.webhook_receive(gateway_name="sandbox", body=body, headers=headers)[1])
        finally:
            close_old_connections()

    threads = [threading.Thread(target=deliver) for _ in range(5)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    payment.refresh_from_db()
    assert sorted(outcomes) == [False, False, False, False, True]
    assert payment.status == "succeeded" and Invoice.objects.count() == 1
    assert AppointmentEvent.objects.filter(appointment=appointment, to_status="confirmed").count() == 1


# --- Holds that lapse ------------------------------------------------------------------------------


def test_a_hold_that_lapses_before_payment_releases_the_slot_and_voids_the_payment(clinic, patient, frozen_time):
    appointment = awaiting_payment(clinic, patient)
    payment = services.payment_create(patient=patient, appointment=appointment)

    frozen_time.shift(timedelta(minutes=11))
    appointment_services.holds_release_expired()
    voided = services.payments_void_lapsed()
    pay(payment)  # too late: the sandbox refuses a canceled payment

    payment.refresh_from_db()
    appointment.refresh_from_db()
    assert voided == 1
    assert appointment.status == "expired" and payment.status == "voided"
    assert SandboxTransaction.objects.get().status == "canceled"
    assert not Invoice.objects.exists()


def test_money_that_arrives_after_the_hold_lapsed_is_refunded_in_full(clinic, patient, frozen_time):
    appointment = awaiting_payment(clinic, patient)
    payment = services.payment_create(patient=patient, appointment=appointment)
    tx = SandboxTransaction.objects.get()
    SandboxTransaction.objects.filter(pk=tx.pk).update(status="succeeded")  # the gateway took the money…

    frozen_time.shift(timedelta(minutes=11))
    appointment_services.holds_release_expired()
    body, headers = signed_sandbox_event("payment.succeeded", tx_data(tx, status="succeeded"))
    services.webhook_receive(gateway_name="sandbox", body=body, headers=headers)  # …and says so late

    payment.refresh_from_db()
    appointment.refresh_from_db()
    assert appointment.status == "expired"
    assert payment.status == "succeeded" and payment.amount_refunded_minor == 50000
    assert Refund.objects.get().source == "system"


# --- Refunds -------------------------------------------------------------------------------------


def paid(clinic, patient, start=None):
    appointment = awaiting_payment(clinic, patient, **({"start": start} if start else {}))
    payment = services.payment_create(patient=patient, appointment=appointment)
    pay(payment)
    payment.refresh_from_db()
    appointment.refresh_from_db()
    return appointment, payment


def test_cancelling_48_hours_ahead_refunds_in_full_through_the_gateway_and_tells_the_patient(clinic, patient):
    appointment, payment = paid(clinic, patient)
    mail.outbox.clear()

    appointment_services.appointment_cancel(appointment=appointment, by=patient, reason="Feeling better")

    payment.refresh_from_db()
    refund = Refund.objects.get()
    assert (refund.status, refund.source, refund.amount_minor) == ("succeeded", "policy", 50000)
    assert payment.amount_refunded_minor == 50000 and payment.refundable_minor == 0
    assert SandboxTransaction.objects.get().amount_refunded_minor == 50000
    assert any("refund of ₹500.00 processed" in m.subject for m in mail.outbox)


def test_cancelling_inside_the_half_refund_tier_refunds_half(clinic, patient, frozen_time):
    appointment, payment = paid(clinic, patient)
    frozen_time.shift(timedelta(hours=40))  # 10 hours before

    appointment_services.appointment_cancel(appointment=appointment, by=patient, reason="Work trip")

    payment.refresh_from_db()
    assert payment.amount_refunded_minor == 25000
    assert Refund.objects.get().amount_minor == 25000


def test_a_patients_refund_request_waits_for_an_approver_who_is_not_the_requester(clinic, patient):
    _, payment = paid(clinic, patient)
    approver = finance_approver()

    refund = services.refund_request(payment=payment, by=patient, reason="The doctor never joined", amount_minor=10000)
    with pytest.raises(ApplicationError) as no_permission:
        services.refund_decide(refund=refund, by=StaffFactory(), approve=True)
    decided = services.refund_decide(refund=refund, by=approver, approve=True)

    refund.refresh_from_db()
    payment.refresh_from_db()
    assert no_permission.value.code == "AUTH_010"
    assert decided.status == "approved" and refund.status == "succeeded"
    assert payment.amount_refunded_minor == 10000
    assert AuditEvent.objects.filter(action="refund.approved", actor=approver).exists()


def test_staff_cannot_approve_a_refund_they_asked_for(clinic, patient):
    _, payment = paid(clinic, patient)
    approver = finance_approver()
    refund = services.refund_request(payment=payment, by=approver, reason="Goodwill after a complaint")

    with pytest.raises(ApplicationError) as refused:
        services.refund_decide(refund=refund, by=approver, approve=True)

    refund.refresh_from_db()
    assert refused.value.code == "PAY_012" and refund.status == "requested"


def test_rejecting_needs_a_reason_and_tells_the_patient(clinic, patient):
    _, payment = paid(clinic, patient)
    refund = services.refund_request(payment=payment, by=patient, reason="Changed my mind")
    approver = finance_approver()
    mail.outbox.clear()

    with pytest.raises(ApplicationError):
        services.refund_decide(refund=refund, by=approver, approve=False)
    services.refund_decide(refund=refund, by=approver, approve=False, note="The consultation took place")

    refund.refresh_from_db()
    assert refund.status == "rejected"
    assert mail.outbox and "not approved" in mail.outbox[0].body


def test_partial_refunds_add_up_and_a_refund_above_what_is_left_is_pay_003(clinic, patient):
    _, payment = paid(clinic, patient)
    approver = finance_approver()

    for amount in (20000, 20000):
        services.refund_decide(refund=services.refund_request(payment=payment, by=patient, reason="Partial", amount_minor=amount), by=approver, approve=True)
    with pytest.raises(ApplicationError) as too_much:
        services.refund_request(payment=payment, by=patient, reason="More", amount_minor=10001)

    payment.refresh_from_db()
    assert too_much.value.code == "PAY_003"
    assert payment.amount_refunded_minor == 40000
    assert services.refund_remaining(payment) == 10000


def test_a_failed_gateway_refund_is_retried_later_with_the_same_idempotency_key(clinic, patient, monkeypatch, frozen_time):
    _, payment = paid(clinic, patient)
    real_refund = sandbox.SandboxGateway.refund
    keys = []

    def flaky_refund(self, **kwargs):
        keys.append(kwargs["idempotency_key"])
        if len(keys) == 1:
            raise base.GatewayError("connection reset")
        return real_refund(self, **kwargs)

    monkeypatch.setattr(sandbox.SandboxGateway, "refund", flaky_refund)
    refund = services.refund_for_cancellation(appointment_id=payment.appointment_id, percent=100)
    refund.refresh_from_db()
    failed = (refund.status, refund.attempts)
    too_soon = services.refunds_retry_failed()
    frozen_time.shift(timedelta(minutes=3))
    retried = services.refunds_retry_failed()

    refund.refresh_from_db()
    assert failed == ("failed", 1)
    assert (too_soon, retried) == (0, 1)
    assert refund.status == "succeeded" and refund.attempts == 2
    assert keys[0] == keys[1] == f"refund-{refund.public_id}"
    assert SandboxTransaction.objects.get().amount_refunded_minor == 50000


def test_the_cancellation_refund_is_made_once_however_often_it_is_asked(clinic, patient):
    _, payment = paid(clinic, patient)

    first = services.refund_for_cancellation(appointment_id=payment.appointment_id, percent=100)
    second = services.refund_for_cancellation(appointment_id=payment.appointment_id, percent=100)

    assert second is None or second.pk == first.pk
    assert Refund.objects.count() == 1


@pytest.mark.django_db(transaction=True)
def test_concurrent_refund_requests_never_exceed_what_was_paid(clinic, patient):
    _, payment = paid(clinic, patient)
    barrier, created, refused = threading.Barrier(10), [], []

    def ask():
        try:
            barrier.wait()
            created.append(services.refund_request(payment=payment, by=patient, reason="Race", amount_minor=15000))
        except ApplicationError as exc:
            refused.append(exc.code)
        finally:
            close_old_connections()

    threads = [threading.Thread(target=ask) for _ in range(10)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert len(created) == 3 and refused == ["PAY_003"] * 7
    assert sum(r.amount_minor for r in Refund.objects.all()) == 45000


# --- Invoices and reconciliation ----------------------------------------------------------------


def test_invoice_numbers_run_without_gaps_within_a_year(clinic, patient):
    for day in range(3):
        paid(clinic, UserFactory(), start=clinic and NOW.replace(hour=9) + timedelta(days=2 + day))

    assert list(Invoice.objects.order_by("sequence").values_list("number", flat=True)) == ["MM-2026-000001", "MM-2026-000002", "MM-2026-000003"]


def test_reconciliation_lists_what_the_gateway_and_we_disagree_on(clinic, patient, capsys):
    _, payment = paid(clinic, patient)
    call_command("payments_reconcile", "--gateway", "sandbox", "--since", "2026-11-01", "--until", "2026-11-03")
    SandboxTransaction.objects.update(amount_refunded_minor=100)

    with pytest.raises(SystemExit) as failed:
        call_command("payments_reconcile", "--gateway", "sandbox", "--since", "2026-11-01", "--until", "2026-11-03")

    out = capsys.readouterr().out
    assert failed.value.code == 1
    assert f"{payment.gateway_reference}: refunded differs (ours: 0; gateway: 100)" in out


def test_finance_report_groups_by_gateway_and_currency_with_refunds_and_fee(clinic, patient):
    appointment, payment = paid(clinic, patient)
    appointment_services.appointment_cancel(appointment=appointment, by=patient, reason="Moving")  # full refund
    paid(clinic, UserFactory(), start=appointment.start + timedelta(days=1))

    rows = selectors.finance_report(start=NOW - timedelta(days=1), end=NOW + timedelta(days=1), group_by="gateway")

    assert rows == [{"key": "sandbox", "currency": "INR", "payments": 2, "gross_minor": 100000, "refunded_minor": 50000, "fee_minor": 5000, "net_minor": 45000}]


def flagged(clinic, patient, amount_minor):
    appointment = awaiting_payment(clinic, patient)
    payment = services.payment_create(patient=patient, appointment=appointment)
    tx = SandboxTransaction.objects.get(reference=payment.gateway_reference)
    SandboxTransaction.objects.filter(pk=tx.pk).update(status="succeeded", amount_minor=amount_minor)
    body, headers = signed_sandbox_event("payment.succeeded", tx_data(tx, status="succeeded", amount_minor=amount_minor))
    services.webhook_receive(gateway_name="sandbox", body=body, headers=headers)
    payment.refresh_from_db()
    return appointment, payment


def test_a_finance_approver_accepts_a_flagged_payment_and_the_booking_is_confirmed(clinic, patient):
    appointment, payment = flagged(clinic, patient, 49999)
    approver = finance_approver()

    with pytest.raises(ApplicationError) as plain_staff:
        services.payment_flag_resolve(payment=payment, by=StaffFactory(), accept=True, note="Rounding at the bank")
    services.payment_flag_resolve(payment=payment, by=approver, accept=True, note="Rounding at the bank")

    payment.refresh_from_db()
    appointment.refresh_from_db()
    assert plain_staff.value.code == "AUTH_010"
    assert (payment.status, payment.amount_received_minor) == ("succeeded", 49999)
    assert appointment.status == "confirmed" and Invoice.objects.filter(payment=payment).exists()
    assert AuditEvent.objects.filter(action="payment.flag_accepted", actor=approver).exists()


def test_refunding_a_flagged_payment_returns_what_the_gateway_took(clinic, patient):
    appointment, payment = flagged(clinic, patient, 100)

    services.payment_flag_resolve(payment=payment, by=finance_approver(), accept=False, note="Amount tampered with")

    payment.refresh_from_db()
    appointment.refresh_from_db()
    refund = Refund.objects.get()
    assert (refund.amount_minor, refund.status) == (100, "succeeded")
    assert appointment.status == "pending_payment" and not Invoice.objects.exists()
    with pytest.raises(ApplicationError) as again:
        services.payment_flag_resolve(payment=payment, by=finance_approver(), accept=True, note="Changed my mind")
    assert again.value.code == "PAY_003"


def test_without_the_sandbox_a_currency_with_no_gateway_keys_is_pay_008(clinic, patient, settings):
    settings.PAYMENT_SANDBOX_ALLOWED = False

    with pytest.raises(ApplicationError) as refused:
        services.payment_create(patient=patient, appointment=awaiting_payment(clinic, patient))

    assert refused.value.code == "PAY_008"
    assert not Payment.objects.exists()
