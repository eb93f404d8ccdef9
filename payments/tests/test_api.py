"""The payments API: one response shape for every gateway, the patient/staff/doctor cast on every
payment, webhooks over HTTP, refunds and their approval, reports and receipts."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from django.contrib.auth.models import Permission
from rest_framework.test import APIClient

from accounts.tests.factories import StaffFactory, UserFactory, staff_member
from medimeet.core import roles
from payments.gateways import sandbox
from payments.models import Payment, Refund, SandboxTransaction, WebhookEvent

from .conftest import SLOT, awaiting_payment, pdf_text

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("frozen_time")]


def api(user=None) -> APIClient:
    client = APIClient()
    if user is not None:
        client.force_authenticate(user)
    return client


def create(client, appointment, **extra):
    return client.post("/api/v1/payments/", {"appointment": str(appointment.public_id), **extra}, format="json")


def paid_payment(clinic, patient, start=SLOT):
    appointment = awaiting_payment(clinic, patient, start=start)
    body = create(api(patient), appointment).json()
    sandbox.sandbox_pay(reference=body["checkout"]["reference"], card_number="4242424242424242")
    return Payment.objects.get(public_id=body["id"])


def test_creating_a_payment_returns_the_checkout_and_takes_the_amount_from_the_booking(clinic, patient):
    appointment = awaiting_payment(clinic, patient)

    response = create(api(patient), appointment, amount_minor=1, currency="USD")

    body = response.json()
    assert response.status_code == 201
    assert body["status"] == "pending" and body["gateway"] == "sandbox"
    assert body["amount"] == {"amount_minor": 50000, "currency": "INR", "exponent": 2, "display": "₹500.00"}
    assert body["checkout"]["kind"] == "sandbox_page" and body["checkout"]["url"].endswith(f"/payments/sandbox/{body['checkout']['reference']}/")
    assert body["receipt"] is None


def test_zero_decimal_currencies_keep_whole_units(clinic, patient):
    clinic["service"].currency, clinic["service"].price_minor = "JPY", 5000
    clinic["service"].save()

    body = create(api(patient), awaiting_payment(clinic, patient)).json()

    assert body["amount"] == {"amount_minor": 5000, "currency": "JPY", "exponent": 0, "display": "¥5,000"}
    assert SandboxTransaction.objects.get().amount_minor == 5000


def test_the_idempotency_key_replays_the_same_payment(clinic, patient):
    appointment = awaiting_payment(clinic, patient)
    client = api(patient)

    first = client.post("/api/v1/payments/", {"appointment": str(appointment.public_id)}, format="json", HTTP_IDEMPOTENCY_KEY="abc")
    second = client.post("/api/v1/payments/", {"appointment": str(appointment.public_id)}, format="json", HTTP_IDEMPOTENCY_KEY="abc")

    assert first.json()["id"] == second.json()["id"]
    assert Payment.objects.count() == 1


def test_verify_after_paying_confirms_and_shows_the_receipt(clinic, patient):
    appointment = awaiting_payment(clinic, patient)
    client = api(patient)
    created = create(client, appointment).json()
    sandbox.sandbox_pay(reference=created["checkout"]["reference"], card_number="4242 4242 4242 4242")

    verified = client.post(f"/api/v1/payments/{created['id']}/verify/", {}, format="json").json()
    pdf = client.get(f"/api/v1/payments/{created['id']}/receipt/")

    appointment.refresh_from_db()
    assert verified["status"] == "succeeded" and verified["checkout"] is None
    assert verified["card"] == {"brand": "visa", "last4": "4242"}
    assert verified["receipt"]["number"] == "MM-2026-000001"
    assert appointment.status == "confirmed"
    assert pdf.status_code == 200 and pdf["Content-Type"] == "application/pdf"
    assert "MM-2026-000001" in pdf_text(pdf.content)


@pytest.mark.parametrize("who", ["other_patient", "doctor", "anonymous"])
def test_other_people_cannot_see_verify_refund_or_download_a_payment(clinic, patient, who):
    payment = paid_payment(clinic, patient)
    user = {"other_patient": UserFactory(), "doctor": clinic["doctor"].user, "anonymous": None}[who]
    client = api(user)
    before = (Payment.objects.values_list("status", "amount_refunded_minor").get(), Refund.objects.count())

    responses = [
        client.get(f"/api/v1/payments/{payment.public_id}/"),
        client.post(f"/api/v1/payments/{payment.public_id}/verify/", {}, format="json"),
        client.post(f"/api/v1/payments/{payment.public_id}/refunds/", {"reason": "mine now"}, format="json"),
        client.get(f"/api/v1/payments/{payment.public_id}/receipt/"),
    ]

    expected = 401 if user is None else 404
    assert [r.status_code for r in responses] == [expected] * 4
    if user is not None:
        assert {r.json()["error"]["code"] for r in responses} == {"PAY_009"}
    assert (Payment.objects.values_list("status", "amount_refunded_minor").get(), Refund.objects.count()) == before


def test_paying_for_another_patients_appointment_is_appt_006(clinic, patient):
    response = create(api(UserFactory()), awaiting_payment(clinic, patient))

    assert response.status_code == 404 and response.json()["error"]["code"] == "APPT_006"
    assert not Payment.objects.exists()


def test_paying_twice_is_pay_004(clinic, patient):
    payment = paid_payment(clinic, patient)

    response = create(api(patient), payment.appointment)

    assert response.status_code == 409 and response.json()["error"]["code"] == "PAY_004"


def test_history_lists_only_my_payments_in_constant_queries(clinic, patient, django_assert_max_num_queries):
    for day in range(1, 4):
        paid_payment(clinic, UserFactory(), start=SLOT + timedelta(days=day))
    paid_payment(clinic, patient)

    with django_assert_max_num_queries(6):
        body = api(patient).get("/api/v1/payments/").json()

    assert body["count"] == 1
    assert body["results"][0]["receipt"]["number"].startswith("MM-2026-")


def test_refund_request_above_what_is_left_is_pay_003_and_a_valid_one_waits_for_approval(clinic, patient):
    payment = paid_payment(clinic, patient)
    client = api(patient)

    too_much = client.post(f"/api/v1/payments/{payment.public_id}/refunds/", {"reason": "Too much", "amount_minor": 50001}, format="json")
    asked = client.post(f"/api/v1/payments/{payment.public_id}/refunds/", {"reason": "Doctor was late", "amount_minor": 10000}, format="json")

    assert too_much.status_code == 409 and too_much.json()["error"]["code"] == "PAY_003"
    assert asked.status_code == 201 and asked.json()["status"] == "requested"
    assert Refund.objects.count() == 1


def test_finance_approver_approves_through_the_api_and_plain_staff_cannot(clinic, patient):
    payment = paid_payment(clinic, patient)
    refund_id = (
        api(patient).post(f"/api/v1/payments/{payment.public_id}/refunds/", {"reason": "Doctor was late", "amount_minor": 10000}, format="json").json()["id"]
    )
    approver = StaffFactory()
    approver.user_permissions.add(Permission.objects.get(codename="approve_refund"))

    queue = api(approver).get("/api/v1/admin/refunds/").json()
    denied = api(StaffFactory()).post(f"/api/v1/admin/refunds/{refund_id}/approve/", {}, format="json")
    patient_denied = api(patient).post(f"/api/v1/admin/refunds/{refund_id}/approve/", {}, format="json")
    approved = api(approver).post(f"/api/v1/admin/refunds/{refund_id}/approve/", {}, format="json")

    payment.refresh_from_db()
    assert [r["id"] for r in queue["results"]] == [refund_id]
    assert denied.status_code == 403 and denied.json()["error"]["code"] == "AUTH_010"
    assert patient_denied.status_code == 403
    assert approved.status_code == 200 and approved.json()["status"] == "succeeded"
    assert payment.amount_refunded_minor == 10000


def test_webhook_over_http_is_stored_once_and_a_forged_one_is_400(clinic, patient):
    appointment = awaiting_payment(clinic, patient)
    created = create(api(patient), appointment).json()
    tx = SandboxTransaction.objects.get(reference=created["checkout"]["reference"])
    data = {**sandbox._tx_data(tx), "status": "succeeded", "card": {"brand": "visa", "last4": "4242", "fingerprint": "fp"}}
    body = json.dumps({"id": "evt_http_1", "type": "payment.succeeded", "created": 0, "data": data}).encode()
    client = APIClient()

    forged = client.post("/api/v1/payments/webhooks/sandbox/", body, content_type="application/json", HTTP_SANDBOX_SIGNATURE=sandbox.sign(body, secret="wrong"))
    first = client.post("/api/v1/payments/webhooks/sandbox/", body, content_type="application/json", HTTP_SANDBOX_SIGNATURE=sandbox.sign(body))
    again = client.post("/api/v1/payments/webhooks/sandbox/", body, content_type="application/json", HTTP_SANDBOX_SIGNATURE=sandbox.sign(body))
    unknown = client.post("/api/v1/payments/webhooks/paypal/", body, content_type="application/json")

    appointment.refresh_from_db()
    assert forged.status_code == 400 and forged.json()["error"]["code"] == "PAY_002"
    assert first.json() == {"received": True, "duplicate": False}
    assert again.json() == {"received": True, "duplicate": True}
    assert unknown.status_code == 404
    assert WebhookEvent.objects.count() == 1 and appointment.status == "confirmed"


def test_stripe_webhook_without_keys_is_refused(clinic):
    response = APIClient().post("/api/v1/payments/webhooks/stripe/", b"{}", content_type="application/json", HTTP_STRIPE_SIGNATURE="t=1,v1=abc")

    assert response.status_code == 400 and response.json()["error"]["code"] == "PAY_002"
    assert not WebhookEvent.objects.exists()


def test_doctor_earnings_and_staff_report_with_csv(clinic, patient):
    paid_payment(clinic, patient)

    earnings = api(clinic["doctor"].user).get("/api/v1/doctors/me/earnings/?start_date=2026-11-01&end_date=2026-11-30&group_by=month").json()
    report = api(staff_member(roles.FINANCE)).get("/api/v1/admin/finance/report/?start_date=2026-11-01&end_date=2026-11-30&group_by=doctor&export=csv")
    patient_report = api(patient).get("/api/v1/admin/finance/report/")
    bad_range = api(staff_member(roles.FINANCE)).get("/api/v1/admin/finance/report/?start_date=2026-11-30&end_date=2026-11-01")

    assert earnings["rows"] == [
        {"key": "2026-11-01", "currency": "INR", "payments": 1, "gross_minor": 50000, "refunded_minor": 0, "fee_minor": 5000, "net_minor": 45000}
    ]
    assert report["Content-Type"].startswith("text/csv")
    assert report.content.decode().splitlines() == [
        "key,currency,payments,gross_minor,refunded_minor,fee_minor,net_minor",
        f"{clinic['doctor'].slug},INR,1,50000,0,5000,45000",
    ]
    assert patient_report.status_code == 403
    assert bad_range.status_code == 400 and bad_range.json()["error"]["code"] == "REQ_001"


@pytest.mark.parametrize("url", ["/api/v1/doctors/me/earnings/", "/api/v1/admin/finance/report/"])
def test_report_csv_export_is_a_documented_answer(clinic, patient, url):
    # API fuzzing found `export=csv` answering text/csv where the schema documented JSON only.
    from medimeet.core.tests.openapi import assert_documented

    paid_payment(clinic, patient)
    reader = clinic["doctor"].user if "earnings" in url else staff_member(roles.FINANCE)

    as_csv = api(reader).get(url, {"start_date": "2026-11-01", "end_date": "2026-11-30", "export": "csv"})
    as_json = api(reader).get(url, {"start_date": "2026-11-01", "end_date": "2026-11-30"})

    assert as_csv["Content-Type"].startswith("text/csv") and as_json["Content-Type"] == "application/json"
    assert_documented(as_csv, "GET", url)
    assert_documented(as_json, "GET", url)
