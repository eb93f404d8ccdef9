"""Payment pages: pay, the sandbox card page, history, receipt verification, doctor earnings,
and who may open them."""

from __future__ import annotations

import pytest

from accounts.tests.factories import UserFactory
from payments import services
from payments.gateways import sandbox
from payments.models import Invoice, Payment

from .conftest import awaiting_payment

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("frozen_time")]


def test_pay_page_starts_the_payment_and_links_the_sandbox_card_page(client, clinic, patient):
    appointment = awaiting_payment(clinic, patient)
    client.force_login(patient)

    response = client.get(f"/appointments/{appointment.public_id}/pay/")

    payment = Payment.objects.get()
    assert response.status_code == 200
    assert f'href="/payments/sandbox/{payment.gateway_reference}/"' in response.content.decode()
    assert "Pay ₹500.00" in response.content.decode()


def test_the_pay_page_allows_the_gateway_scripts_and_no_other_page_does(client, clinic, patient):
    appointment = awaiting_payment(clinic, patient)
    client.force_login(patient)

    pay = client.get(f"/appointments/{appointment.public_id}/pay/")
    detail = client.get(f"/appointments/{appointment.public_id}/")

    assert "https://js.stripe.com" in pay["Content-Security-Policy"]
    assert "https://js.stripe.com" not in detail["Content-Security-Policy"]


def test_a_declined_card_returns_to_the_pay_page_with_the_reason(client, clinic, patient):
    appointment = awaiting_payment(clinic, patient)
    client.force_login(patient)
    client.get(f"/appointments/{appointment.public_id}/pay/")
    payment = Payment.objects.get()

    response = client.post(
        f"/payments/sandbox/{payment.gateway_reference}/", {"card_number": "4000 0000 0000 0002", "expiry": "12/30", "cvc": "123"}, follow=True
    )

    assert response.redirect_chain[-1][0] == f"/appointments/{appointment.public_id}/pay/"
    assert "The payment did not go through: Your card was declined." in response.content.decode()


def test_an_invalid_card_number_is_a_form_error_and_charges_nothing(client, clinic, patient):
    appointment = awaiting_payment(clinic, patient)
    client.force_login(patient)
    client.get(f"/appointments/{appointment.public_id}/pay/")
    payment = Payment.objects.get()

    response = client.post(f"/payments/sandbox/{payment.gateway_reference}/", {"card_number": "1234 5678", "expiry": "12/30", "cvc": "123"})

    payment.refresh_from_db()
    assert response.status_code == 200 and "Enter a test card number" in response.content.decode()
    assert payment.status == "pending"


def test_other_patients_cannot_open_the_pay_sandbox_receipt_or_return_pages(client, clinic, patient):
    appointment = awaiting_payment(clinic, patient)
    payment = services.payment_create(patient=patient, appointment=appointment)
    sandbox.sandbox_pay(reference=payment.gateway_reference, card_number="4242424242424242")
    client.force_login(UserFactory())

    codes = [
        client.get(f"/appointments/{appointment.public_id}/pay/").status_code,
        client.get(f"/payments/sandbox/{payment.gateway_reference}/").status_code,
        client.get(f"/payments/{payment.public_id}/receipt.pdf").status_code,
        client.get(f"/payments/{payment.public_id}/return/").status_code,
    ]

    assert codes == [404, 404, 404, 404]


def test_history_lists_the_payment_with_its_receipt_and_the_receipt_verifies_publicly(client, clinic, patient):
    payment = services.payment_create(patient=patient, appointment=awaiting_payment(clinic, patient))
    sandbox.sandbox_pay(reference=payment.gateway_reference, card_number="4242424242424242")
    invoice = Invoice.objects.get()
    client.force_login(patient)

    history = client.get("/payments/").content.decode()
    client.logout()
    genuine = client.get(f"/receipts/verify/{invoice.verification_code}/")
    fake = client.get("/receipts/verify/0000000000000000/")

    assert invoice.number in history and "Visa •••• 4242" in history
    assert genuine.status_code == 200 and "Genuine." in genuine.content.decode() and "₹500.00" in genuine.content.decode()
    assert patient.last_name not in genuine.content.decode()
    assert fake.status_code == 404 and "Not found." in fake.content.decode()


def test_doctor_earnings_page_shows_net_after_fee(client, clinic, patient):
    payment = services.payment_create(patient=patient, appointment=awaiting_payment(clinic, patient))
    sandbox.sandbox_pay(reference=payment.gateway_reference, card_number="4242424242424242")
    client.force_login(clinic["doctor"].user)

    page = client.get("/portal/earnings/?start_date=2026-11-01&end_date=2026-11-30&group_by=month").content.decode()

    assert "Net earnings (INR)" in page and "₹450.00" in page and "fee ₹50.00" in page
