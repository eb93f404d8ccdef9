"""Finance's admin actions on payments: accepting or refunding a flagged payment (each asks for a
reason first) and processing failed webhook events again. The applied action does what the
service does — booking confirmed with its invoice, or the money returned — and is audited;
roles outside finance get 403."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from django.core import mail

from accounts.tests.factories import UserFactory, staff_member
from medimeet.core import roles
from medimeet.core.models import AuditEvent
from medimeet.core.tests.admin_actions import ask_then_apply, audited_actions, changelist, ids, run_action, signed_in
from payments import services
from payments.models import Invoice, Payment, Refund, SandboxTransaction, WebhookEvent

from .conftest import SLOT, awaiting_payment
from .test_services import flagged, signed_sandbox_event, tx_data

# Real commits: settling, refunds and webhook processing happen after commit, as in production.
pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("frozen_time")]
PAYMENTS, EVENTS = changelist(Payment), changelist(WebhookEvent)


@pytest.fixture
def finance(client):
    return signed_in(client, roles.FINANCE)


def state(payment: Payment) -> tuple[str, str]:
    payment.refresh_from_db()
    payment.appointment.refresh_from_db()
    return payment.status, payment.appointment.status


def lost_event(clinic, patient, *, start=SLOT, event_id: str = "evt_lost", status: str = "failed") -> tuple[WebhookEvent, Payment]:
    """The gateway's "paid" event for a payment, stored but not applied (``failed``: the worker
    died on it), as the beat task or staff find it."""
    payment = services.payment_create(patient=patient, appointment=awaiting_payment(clinic, patient, start=start))
    SandboxTransaction.objects.filter(reference=payment.gateway_reference).update(status="succeeded")
    body, _ = signed_sandbox_event("payment.succeeded", tx_data(SandboxTransaction.objects.get(reference=payment.gateway_reference)), event_id)
    event = WebhookEvent.objects.create(
        gateway="sandbox", event_id=event_id, event_type="payment.succeeded", payload=json.loads(body), object_reference=payment.gateway_reference,
        status=status, attempts=1, error="OperationalError: server closed the connection unexpectedly" if status == "failed" else "",
    )  # fmt: skip
    return event, payment


def test_finance_accepts_a_flagged_payment_with_a_reason_and_the_booking_is_confirmed(client, clinic, patient, finance):
    _, payment = flagged(clinic, patient, 49999)

    asked, between = ask_then_apply(client, PAYMENTS, "accept_flagged", [payment], note="")
    asked_state = state(payment)
    _, done = ask_then_apply(client, PAYMENTS, "accept_flagged", [payment], note="Rounding at the bank")

    assert asked.status_code == 200 and "expected 50000 INR" in asked.content.decode()
    assert between.status_code == 200 and between.context["form"].errors == {"note": ["This field is required."]}
    assert asked_state == ("flagged", "pending_payment")
    assert done.status_code == 302
    assert state(payment) == ("succeeded", "confirmed")
    assert Invoice.objects.filter(payment=payment).exists()
    assert [m.to for m in mail.outbox if "receipt" in m.subject.lower()] == [[patient.email]]
    assert AuditEvent.objects.filter(action="payment.flag_accepted", actor=finance).count() == 1
    assert audited_actions() == [(finance.pk, "payments.payment", "accept_flagged", ids(payment), 1)]


def test_finance_refunds_a_flagged_payment_with_a_reason_and_the_money_goes_back(client, clinic, patient, finance):
    _, payment = flagged(clinic, patient, 100)

    asked, done = ask_then_apply(client, PAYMENTS, "refund_flagged", [payment], note="Amount tampered with")

    assert asked.status_code == 200 and done.status_code == 302
    assert state(payment) == ("succeeded", "pending_payment")
    assert list(Refund.objects.values_list("payment", "amount_minor", "status", "reason")) == [
        (payment.pk, 100, "succeeded", "Flagged payment returned: Amount tampered with")
    ]
    assert not Invoice.objects.exists()
    assert AuditEvent.objects.filter(action="payment.flag_refunded", actor=finance).count() == 1
    assert audited_actions() == [(finance.pk, "payments.payment", "refund_flagged", ids(payment), 1)]


@pytest.mark.parametrize("action", ["accept_flagged", "refund_flagged"])
def test_the_reason_page_for_a_flagged_payment_changes_nothing(client, clinic, patient, finance, action):
    _, payment = flagged(clinic, patient, 49999)

    asked = run_action(client, PAYMENTS, action, [payment])

    assert asked.status_code == 200
    assert state(payment) == ("flagged", "pending_payment")
    assert not Refund.objects.exists() and not Invoice.objects.exists()
    assert audited_actions() == []


def test_finance_processes_a_failed_webhook_event_again_and_the_payment_lands(client, clinic, patient, finance):
    failed, payment = lost_event(clinic, patient)
    processed, _ = lost_event(clinic, UserFactory(), start=SLOT + timedelta(hours=1), event_id="evt_done", status="processed")

    response = run_action(client, EVENTS, "retry", [failed, processed])

    failed.refresh_from_db()
    processed.refresh_from_db()
    assert response.status_code == 302
    assert (failed.status, failed.attempts, failed.error) == ("processed", 2, "")
    assert (processed.status, processed.attempts) == ("processed", 1)  # only failed or deferred events go again
    assert state(payment) == ("succeeded", "confirmed")
    assert audited_actions() == [(finance.pk, "payments.webhookevent", "retry", ids(failed, processed), 2)]


@pytest.mark.parametrize("role", [roles.SUPPORT, roles.CONTENT_EDITOR, roles.COMPLIANCE])
def test_roles_outside_finance_get_403_on_payments_and_webhooks_and_change_nothing(client, clinic, patient, role):
    _, payment = flagged(clinic, patient, 100)
    failed, _ = lost_event(clinic, UserFactory(), start=SLOT + timedelta(hours=1))
    client.force_login(staff_member(role))

    responses = [
        run_action(client, PAYMENTS, "refund_flagged", [payment], apply="1", note="Amount tampered with"),
        run_action(client, PAYMENTS, "accept_flagged", [payment], apply="1", note="Fine"),
        run_action(client, EVENTS, "retry", [failed]),
    ]

    failed.refresh_from_db()
    assert [r.status_code for r in responses] == [403, 403, 403]
    assert state(payment) == ("flagged", "pending_payment") and not Refund.objects.exists()
    assert (failed.status, failed.attempts) == ("failed", 1)
    assert audited_actions() == []
