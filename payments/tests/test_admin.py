"""The back office for money: the refund approval actions, flagged payments and the finance report."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import Permission

from accounts.tests.factories import staff_member
from medimeet.core.models import AuditEvent
from payments import services
from payments.gateways import sandbox
from payments.models import Refund

from .conftest import awaiting_payment

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("frozen_time")]


@pytest.fixture
def finance_client(client):
    staff = staff_member()
    staff.user_permissions.add(*Permission.objects.filter(content_type__app_label="payments"))
    client.force_login(staff)
    return client


def requested_refund(clinic, patient) -> Refund:
    payment = services.payment_create(patient=patient, appointment=awaiting_payment(clinic, patient))
    sandbox.sandbox_pay(reference=payment.gateway_reference, card_number="4242424242424242")
    payment.refresh_from_db()
    return services.refund_request(payment=payment, by=patient, reason="The call dropped twice", amount_minor=10000)


def test_rejecting_refunds_in_the_admin_asks_for_a_reason_first(finance_client, clinic, patient):
    refund = requested_refund(clinic, patient)
    action = {"action": "reject", "_selected_action": [refund.pk]}

    asked = finance_client.post("/admin/payments/refund/", action)
    done = finance_client.post("/admin/payments/refund/", {**action, "apply": "1", "note": "The consultation was completed"})

    refund.refresh_from_db()
    assert asked.status_code == 200 and "The call dropped twice" in asked.content.decode()
    assert done.status_code == 302
    assert (refund.status, refund.decision_note) == ("rejected", "The consultation was completed")


def test_approving_in_the_admin_processes_the_refund(finance_client, clinic, patient):
    refund = requested_refund(clinic, patient)

    finance_client.post("/admin/payments/refund/", {"action": "approve", "_selected_action": [refund.pk]})

    refund.refresh_from_db()
    assert refund.status == "succeeded"


def test_the_finance_report_page_and_its_csv(finance_client, clinic, patient):
    requested_refund(clinic, patient)

    page = finance_client.get("/admin/payments/payment/report/?start_date=2026-11-01&end_date=2026-11-30&group_by=gateway")
    csv = finance_client.get("/admin/payments/payment/report/?start_date=2026-11-01&end_date=2026-11-30&group_by=gateway&export=csv")

    assert page.status_code == 200 and "₹500.00" in page.content.decode()
    assert csv.content.decode().splitlines()[1] == "sandbox,INR,1,50000,0,5000,45000"


def test_staff_who_may_only_look_at_refunds_cannot_approve_one_by_posting_the_action(client, clinic, patient):
    refund = requested_refund(clinic, patient)
    viewer = staff_member()
    viewer.user_permissions.add(*Permission.objects.filter(content_type__app_label="payments", codename__startswith="view_"))
    client.force_login(viewer)

    client.post("/admin/payments/refund/", {"action": "approve", "_selected_action": [refund.pk]})

    refund.refresh_from_db()
    assert refund.status == "requested"
    assert not AuditEvent.objects.filter(action="admin.action").exists()


def test_a_refund_decision_in_the_admin_is_audited_once_it_is_applied_not_when_the_reason_is_asked(finance_client, clinic, patient):
    refund = requested_refund(clinic, patient)
    action = {"action": "reject", "_selected_action": [refund.pk]}

    finance_client.post("/admin/payments/refund/", action)
    asked = AuditEvent.objects.filter(action="admin.action").count()
    finance_client.post("/admin/payments/refund/", {**action, "apply": "1", "note": "Completed"})

    entry = AuditEvent.objects.get(action="admin.action")
    assert asked == 0
    assert entry.metadata == {"model": "payments.refund", "action": "reject", "ids": [str(refund.pk)], "count": 1}
