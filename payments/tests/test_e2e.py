"""Step 4 in a real browser, besides the booking-and-paying journey in appointments/test_e2e.py:
a doctor reads their earnings and anyone checks a receipt. Screenshots docs/screenshots/step4-*."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone
from playwright.sync_api import Page, expect

from accounts.tests.factories import UserFactory
from appointments import selectors
from appointments import services as appointment_services
from appointments.tests.test_e2e import cardiologist, shot, sign_in
from payments import services
from payments.gateways import sandbox
from payments.models import Invoice

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


def paid_consultations(doctor, count: int) -> None:
    service = doctor.services.get(name="Video consultation")
    slots = selectors.free_slots(doctor=doctor, service=service, window_start=timezone.now() + timedelta(days=2), window_end=timezone.now() + timedelta(days=9))
    for index in range(count):
        patient = UserFactory(first_name=["Asha", "Rohan", "Meera"][index % 3], last_name="Verma")
        hold = appointment_services.appointment_hold(patient=patient, service=service, start=slots[index * 5].start)
        booked = appointment_services.appointment_confirm_details(appointment=hold, patient=patient, reason="Follow-up of blood pressure")
        payment = services.payment_create(patient=patient, appointment=booked)
        sandbox.sandbox_pay(reference=payment.gateway_reference, card_number="4242424242424242")
    first = booked  # the last one is cancelled by the patient: refunded in full
    appointment_services.appointment_cancel(appointment=first, by=first.patient, reason="Travelling")


def test_doctor_reads_earnings_and_a_receipt_verifies(live_server, page: Page, console_errors):  # noqa: F811
    doctor = cardiologist()
    paid_consultations(doctor, 3)

    sign_in(page, live_server.url, "priya.raman@example.com")
    page.goto(f"{live_server.url}/portal/earnings/")

    expect(page.get_by_role("heading", level=1)).to_have_text("Earnings")
    # 3 × ₹800 paid, ₹800 refunded, fee 10 % of the ₹1,600 kept = ₹160 → net ₹1,440
    expect(page.get_by_test_id("net-INR")).to_have_text("₹1,440.00")
    shot(page, "earnings", step=4)

    invoice = Invoice.objects.order_by("sequence").first()
    page.goto(f"{live_server.url}/receipts/verify/{invoice.verification_code}/")
    expect(page.get_by_role("alert").or_(page.get_by_role("status"))).to_contain_text("Genuine.")
    shot(page, "receipt-verified", step=4)
    assert console_errors == []


def test_anyone_uploads_a_receipt_and_reads_whether_it_is_genuine(live_server, page: Page, browser, console_errors, tmp_path):  # noqa: F811
    from medimeet.core.tests.browser import screenshot
    from medimeet.core.tests.signed_pdfs import page_overwritten
    from payments.receipts import invoice_pdf

    paid_consultations(cardiologist(), 1)
    invoice = Invoice.objects.order_by("sequence").first()
    genuine, altered = tmp_path / f"{invoice.number}.pdf", tmp_path / "altered.pdf"
    genuine.write_bytes(invoice_pdf(invoice))  # Playwright's loop runs in this thread: signing copes
    altered.write_bytes(page_overwritten(genuine.read_bytes(), "Total paid 8.00"))

    page.goto(f"{live_server.url}/receipts/verify/{invoice.verification_code}/")
    page.get_by_role("link", name="Check its digital signature").click()
    page.get_by_label("PDF file").set_input_files(str(genuine))
    page.get_by_role("button", name="Check the signature").click()

    expect(page.get_by_role("status")).to_contain_text("Valid: signed by MediMeet on ")
    expect(page.get_by_role("status")).to_contain_text(f"Receipt {invoice.number}.")
    screenshot(page, "signed-document-valid")

    page.get_by_label("PDF file").set_input_files(str(altered))
    page.get_by_role("button", name="Check the signature").click()
    expect(page.get_by_role("alert")).to_contain_text("This document was altered after signing.")
    screenshot(page, "signed-document-altered")
    assert console_errors == []

    hindi = browser.new_context(viewport={"width": 1280, "height": 900}, locale="hi-IN")
    hindi_page = hindi.new_page()
    hindi_page.goto(f"{live_server.url}/documents/verify/")
    hindi_page.get_by_label("PDF फ़ाइल").set_input_files(str(genuine))
    hindi_page.get_by_role("button", name="हस्ताक्षर जाँचें").click()
    expect(hindi_page.get_by_role("status")).to_contain_text("मान्य: MediMeet ने")  # (no screenshot: this Chromium has no Devanagari font)
    hindi.close()
