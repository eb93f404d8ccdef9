"""The whole product in one journey, through the pages as people use it (Step 10).

A cardiologist applies with her licence, a verification officer approves her in the back
office, and she opens her diary. A patient signs up, finds her, books a consultation a few
minutes ahead and pays on the sandbox card page; the confirmation email carries the calendar
event. At the appointment time both meet in the video room, the doctor admits the patient, they
see each other and chat, the doctor writes her notes and a prescription and ends the
consultation. The patient downloads the receipt and the prescription and reviews the doctor;
a finance officer finds all of it on the dashboard.

How it is served: the whole ASGI application on Daphne in a process of its own
(``asgi_live_server``: pages, static files and the websockets of the video room), with the mail of
the embedded default — one ``.eml`` file per message in a local outbox (``local_outbox``) —
because that process cannot fill this one's ``mail.outbox``. Tasks run eagerly in it.

Time is real (the browser, the video and the authenticator codes run on it). The booking is not
bypassed: the doctor takes bookings without notice and opens a session today that starts a few
minutes from now (special hours for the date), so the slot the patient books is inside the video
room's join window (``CONSULTATION_JOIN_BEFORE_MINUTES``) by the time they meet; the doctor's time
zone is one where that session ends before midnight (``a_zone_in_working_hours``).

The ORM is used only to set up the reference data (specializations, languages, rating
categories) and the two staff members, and to assert what was stored. Screenshots of each main
step: docs/screenshots/journey-*.png. Any browser console error fails the test.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import datetime, timedelta
from importlib import import_module
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from allauth.mfa.totp.internal.auth import generate_totp_secret
from django.apps import apps
from django.utils import timezone
from icalendar import Calendar
from playwright.sync_api import Browser, Page, expect
from pypdf import PdfReader

from accounts.tests.factories import staff_member
from appointments.models import Appointment
from consultations.models import Consultation
from doctors import demo
from doctors.models import DoctorProfile
from medimeet.core import roles
from medimeet.core.tests.browser import Person, expect_call_connected, expect_fits_the_window, screenshot, sign_in, sign_in_with_code, sign_out
from medimeet.core.tests.journey import Application, a_zone_in_working_hours, admin_action, attachments_of, doctor_application_fill, prescription_issue
from payments.models import Invoice, Payment
from records.models import Prescription
from reviews.models import Review

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

PASSWORD = "Vivid-Harbor-2026!"
STAFF_PASSWORD = "Quiet-Meadow-Lantern-77"
PATIENT_ZONE = ZoneInfo("Europe/London")  # the browser contexts' zone too
DESKTOP = {"width": 1280, "height": 860}
WIDE = {"width": 1440, "height": 1000}  # the admin's lists and the dashboard


def shot(page: Page, name: str) -> None:
    expect_fits_the_window(page)
    screenshot(page, f"journey-{name}")


@pytest.fixture
def people(media_browser: Browser) -> Iterator[dict[str, Person]]:
    """Everyone of the journey, each in a browser context of their own; the doctor and the
    patient with a generated camera and microphone."""
    cast = {}
    for name, viewport in [("doctor", DESKTOP), ("patient", DESKTOP), ("verifier", WIDE), ("analyst", WIDE)]:
        context = media_browser.new_context(viewport=viewport, locale="en-GB", timezone_id="Europe/London")
        context.set_default_timeout(15_000)
        cast[name] = Person(context)
    yield cast
    for person in cast.values():
        person.context.close()


def test_a_doctor_joins_a_patient_books_pays_meets_them_by_video_and_reviews_and_staff_see_it(local_outbox, asgi_live_server, people, tmp_path):
    base = asgi_live_server
    doctor, patient, verifier, analyst = (people[name].page for name in ("doctor", "patient", "verifier", "analyst"))
    demo.reference_data()
    # The default rating categories of data migration 0002 (an earlier transactional test's flush takes them)
    import_module("reviews.migrations.0002_default_categories").create(apps, None)
    verifier_secret, analyst_secret = generate_totp_secret(), generate_totp_secret()
    staff_member(roles.VERIFICATION, email="vera.joshi@medimeet.local", first_name="Vera", last_name="Joshi", password=STAFF_PASSWORD, totp_secret=verifier_secret)
    staff_member(roles.FINANCE, email="meera.pillai@medimeet.local", first_name="Meera", last_name="Pillai", password=STAFF_PASSWORD, timezone="Europe/London", totp_secret=analyst_secret)
    doctor_zone = a_zone_in_working_hours(timezone.now())
    licence = tmp_path / "kmc-registration.pdf"
    licence.write_bytes(demo.DEMO_PDF)

    # --- 1. A doctor applies, is approved and opens her diary ------------------------------------
    # Given a cardiologist on the home page, when she applies with her licence
    doctor.goto(base)
    doctor.get_by_role("link", name="Apply to join", exact=True).click()
    doctor_application_fill(
        doctor,
        Application(
            first_name="Priya", last_name="Raman", email="priya.raman@example.com", password=PASSWORD, timezone=doctor_zone.key, years=12,
            specialization="Cardiology", licence_number="KMC-2012/48213", licence_authority="Karnataka Medical Council", licence_country="IN",
            licence_expiry=timezone.localdate() + timedelta(days=3 * 365), licence_pdf=licence,
        ),
    )  # fmt: skip
    shot(doctor, "1-apply")
    doctor.get_by_role("button", name="Submit application").click()

    # Then she is asked to confirm her address, and does so from the email
    expect(doctor.get_by_role("heading", level=1)).to_have_text("Verify Your Email Address")
    doctor.goto(local_outbox.link(r"http\S*/accounts/confirm-email/\S+", to="priya.raman@example.com"))
    doctor.get_by_role("button", name="Confirm").click()
    expect(doctor).to_have_url(f"{base}/accounts/login/")

    # And she adds the degrees cardiology requires to her profile, with her degree certificate
    sign_in(doctor, base, "priya.raman@example.com", PASSWORD, path="/portal/")
    expect(doctor.get_by_role("heading", level=1)).to_have_text("Welcome, Dr. Priya Raman")
    portal = doctor.get_by_role("navigation", name="Doctor portal")
    portal.get_by_role("link", name="Profile").click()
    doctor.get_by_label("Biography").fill("Consultant cardiologist in Bengaluru caring for people with high blood pressure, chest pain, palpitations and heart failure.")
    doctor.get_by_label("English", exact=True).check()
    doctor.get_by_label("Hindi", exact=True).check()
    doctor.get_by_label("City").fill("Bengaluru")
    for index, (degree, institution, year) in enumerate([("MBBS", "Bangalore Medical College", "2006"), ("MD", "Kasturba Medical College, Manipal", "2010")]):
        if index:
            doctor.get_by_role("button", name="Add another degree").click()
        doctor.locator(f"[name='education-{index}-degree']").fill(degree)
        doctor.locator(f"[name='education-{index}-institution']").fill(institution)
        doctor.locator(f"[name='education-{index}-year']").fill(year)
    doctor.get_by_role("button", name="Save profile").click()
    expect(doctor.locator(".mm-messages")).to_contain_text("Your profile has been saved.")
    portal.get_by_role("link", name="Documents").click()
    doctor.get_by_label("Type of document").select_option(label="Qualification")
    doctor.get_by_label("File", exact=True).set_input_files({"name": "md-degree.pdf", "mimeType": "application/pdf", "buffer": demo.DEMO_PDF})
    doctor.get_by_role("button", name="Upload").click()
    expect(doctor.locator(".mm-messages")).to_contain_text("Document uploaded.")
    shot(doctor, "1-documents")
    application = DoctorProfile.objects.get(user__email="priya.raman@example.com")
    assert application.verification_status == DoctorProfile.Status.SUBMITTED
    assert sorted(application.documents.values_list("kind", "original_name")) == [("licence", "kmc-registration.pdf"), ("qualification", "md-degree.pdf")]

    # When a verification officer signs in with her authenticator code and approves the application
    sign_in_with_code(verifier, base, email="vera.joshi@medimeet.local", password=STAFF_PASSWORD, secret=verifier_secret)
    verifier.goto(f"{base}/admin/doctors/doctorprofile/?verification_status__exact=submitted")
    expect(verifier.get_by_role("row", name=re.compile("Priya Raman"))).to_be_visible()
    verifier.locator("#toggle-nav-sidebar").click()  # the queue's columns need the width
    shot(verifier, "1-verification-queue")
    admin_action(verifier, base, "/admin/doctors/doctorprofile/?verification_status__exact=submitted", application.pk, "start_review")
    expect(verifier.locator(".messagelist")).to_contain_text("1 application(s) now under review.")
    admin_action(verifier, base, "/admin/doctors/doctorprofile/?verification_status__exact=under_review", application.pk, "approve")
    expect(verifier.locator(".messagelist")).to_contain_text("1 application(s) now approved.")
    application.refresh_from_db()
    assert (application.verification_status, application.is_listed) == (DoctorProfile.Status.APPROVED, True)

    # When the doctor, back in her portal, adds her video consultation and sets her hours:
    # weekdays, no minimum notice, and an extra session today starting in a few minutes
    doctor.reload()
    expect(doctor.locator(".mm-portal-identity")).to_contain_text("Approved")
    portal.get_by_role("link", name="Services").click()
    doctor.get_by_label("Name", exact=True).fill("Video consultation")
    doctor.get_by_label("Description").fill("A first consultation by video to discuss your symptoms and reports.")
    doctor.get_by_label("Price").fill("800")
    doctor.get_by_label("Duration (minutes)").fill("20")
    doctor.get_by_label("Mode").select_option(label="Video")
    doctor.get_by_role("button", name="Add service").click()
    expect(doctor.locator(".mm-messages")).to_contain_text("Service added.")
    portal.get_by_role("link", name="Availability").click()
    doctor.locator("[name='hours-0-weekday']").select_option(label="Monday")
    for field, value in [("hours-0-start", "09:00"), ("hours-0-end", "13:00"), ("min_notice_hours", "0")]:
        doctor.locator(f"[name='{field}']").fill(value)
    doctor.get_by_role("button", name="Save availability").click()
    expect(doctor.locator(".mm-messages")).to_contain_text("Your availability is saved.")
    now = timezone.now().astimezone(doctor_zone)
    session_start = (now + timedelta(minutes=9)).replace(second=0, microsecond=0)
    doctor.get_by_label("Date", exact=True).fill(now.date().isoformat())
    doctor.get_by_role("radio", name="Special hours").check()
    doctor.locator("#id_start").fill(f"{session_start:%H:%M}")
    doctor.locator("#id_end").fill(f"{session_start + timedelta(hours=1):%H:%M}")
    doctor.get_by_label("Note").fill("Extra video clinic")
    doctor.get_by_role("button", name="Add date").click()
    expect(doctor.locator(".mm-override")).to_contain_text("Extra video clinic")
    shot(doctor, "1-availability")
    sign_out(doctor)

    # --- 2. A patient signs up, finds her, books and pays ------------------------------------------
    # Given a visitor, when they create an account and confirm their address from the email
    patient.goto(base)
    patient.get_by_role("navigation", name="Main").get_by_role("link", name="Create account").click()
    patient.get_by_label("First name").fill("Asha")
    patient.get_by_label("Last name").fill("Verma")
    patient.get_by_label("Time zone").select_option(PATIENT_ZONE.key)
    patient.get_by_label("Email", exact=True).fill("asha.verma@example.com")
    patient.get_by_label("Password", exact=True).fill(PASSWORD)
    patient.get_by_label("Password (again)").fill(PASSWORD)
    patient.get_by_role("button", name="Sign Up").click()
    expect(patient.get_by_role("heading", level=1)).to_have_text("Verify Your Email Address")
    patient.goto(local_outbox.link(r"http\S*/accounts/confirm-email/\S+", to="asha.verma@example.com"))
    patient.get_by_role("button", name="Confirm").click()
    sign_in(patient, base, "asha.verma@example.com", PASSWORD)
    expect(patient.get_by_role("heading", level=1)).to_have_text("Hello, Asha")

    # When they search for the doctor and open her profile
    patient.get_by_role("navigation", name="Main").get_by_role("link", name="Find a doctor").click()
    patient.get_by_label("Search doctors by name, condition or skill").fill("Raman")
    patient.get_by_role("search").get_by_role("button", name="Search").click()
    card = patient.locator(".mm-doctor-card").filter(has_text="Dr. Priya Raman")
    expect(card).to_contain_text("Cardiology")
    shot(patient, "2-search")
    card.get_by_role("link", name="View profile").click()
    expect(patient.get_by_role("heading", level=1)).to_have_text("Dr. Priya Raman")
    expect(patient.locator(".mm-doctor-hero")).to_contain_text("Licence verified")

    # And book today's session: the first time, held for them while they give the reason
    patient.get_by_role("link", name="Book Video consultation").click()
    patient.get_by_role("navigation", name="Choose a day").locator(f"a[href*='date={session_start.astimezone(PATIENT_ZONE).date().isoformat()}']").click()
    first_slot = patient.locator("button.mm-slot").first
    assert datetime.fromisoformat(first_slot.get_attribute("value")) == session_start
    first_slot.click()
    expect(patient.get_by_role("heading", level=1)).to_have_text("Complete your booking")
    patient.get_by_label("Reason for visit").fill("Palpitations after exercise for two weeks, and some breathlessness climbing stairs.")
    shot(patient, "2-hold")
    patient.get_by_role("button", name="Confirm details").click()

    # And pay on the sandbox gateway's card page
    expect(patient.get_by_role("heading", level=1)).to_have_text("Pay for your appointment")
    patient.get_by_test_id("pay-button").click()
    expect(patient.get_by_role("heading", level=1)).to_have_text("Secure payment")
    patient.get_by_label("Card number").fill("4242 4242 4242 4242")
    patient.locator("#id_card_number").blur()
    shot(patient, "2-card")
    patient.get_by_role("button", name="Pay ₹800.00").click()

    # Then the booking is confirmed, and the confirmation email's calendar event starts at the slot
    expect(patient.locator(".mm-messages")).to_contain_text("Payment received. Your appointment is confirmed")
    expect(patient.locator(".mm-page-header-status")).to_have_text("Confirmed")
    shot(patient, "2-confirmed")
    appointment = Appointment.objects.get(patient__email="asha.verma@example.com")
    assert (appointment.status, appointment.start, appointment.doctor_id) == ("confirmed", session_start, application.pk)
    confirmation = [m for m in local_outbox.messages(to="asha.verma@example.com") if attachments_of(m, "text/calendar")][-1]
    event = next(iter(Calendar.from_ical(attachments_of(confirmation, "text/calendar")[0]).walk("VEVENT")))
    assert event["DTSTART"].dt == session_start
    assert str(event["SUMMARY"]) == "Video consultation with Dr. Priya Raman"

    # --- 3. At the appointment time they meet by video ----------------------------------------
    # Given the patient on their appointment page, inside the join window, when they join
    expect(patient.get_by_test_id("join-card")).to_contain_text("The room is open.")
    patient.get_by_role("link", name="Join video consultation").click()
    patient.get_by_role("button", name="Join consultation").click()

    # Then they wait for the doctor
    room = patient.locator("#mm-consultation")
    expect(room).to_have_attribute("data-call-state", "waiting")
    expect(patient.locator("[data-mm-stage-message]")).to_have_text("Waiting for Dr. Priya Raman to let you in")
    shot(patient, "3-waiting-room")

    # When the doctor opens the appointment from her list, joins and admits the patient
    sign_in(doctor, base, "priya.raman@example.com", PASSWORD, path="/appointments/")
    doctor.locator(".mm-appt-row", has_text="Asha Verma").click()
    expect(doctor.get_by_test_id("join-card")).to_contain_text("The room is open.")
    doctor.get_by_role("link", name="Join video consultation").click()
    doctor.get_by_role("button", name="Join consultation").click()
    expect(doctor.locator("[data-mm-people] li[data-state='waiting']")).to_contain_text("Asha Verma")
    doctor.get_by_role("button", name="Admit Asha Verma").click()

    # Then the call connects both ways, with video decoded on each side
    expect_call_connected(patient, "Dr. Priya Raman")
    expect_call_connected(doctor, "Asha Verma")

    # And they chat, each message reaching the other
    patient.get_by_label("Message to Dr. Priya Raman").fill("Hello doctor, I can see and hear you.")
    patient.get_by_role("button", name="Send").click()
    expect(doctor.locator(".mm-chat-message").last).to_contain_text("Hello doctor, I can see and hear you.")
    doctor.get_by_label("Message to Asha Verma").fill("Good. Tell me about the palpitations.")
    doctor.get_by_label("Message to Asha Verma").press("Enter")
    expect(patient.locator(".mm-chat-message").last).to_contain_text("Good. Tell me about the palpitations.")
    shot(doctor, "3-call-doctor")
    shot(patient, "3-call-patient")

    # --- 4. The doctor writes notes and a prescription, then ends the consultation --------------
    # Given the call going on, when the doctor opens the appointment in another tab and writes
    desk = people["doctor"].open_page()
    desk.goto(f"{base}/appointments/{appointment.public_id}/")
    desk.get_by_role("textbox", name="Notes").fill("Palpitations on exertion for two weeks. ECG advised. Start a low-dose beta blocker; review in a week.")
    desk.get_by_role("button", name="Save notes").click()
    expect(desk.locator(".mm-messages")).to_contain_text("Notes saved.")
    shot(desk, "4-notes")
    desk.get_by_role("link", name="Prescription").click()
    medicine = {"Name": "Metoprolol", "Dose": "25 mg", "Frequency": "Once a day", "Duration": "30 days", "Instructions": "In the morning, after breakfast"}
    prescription_issue(desk, medicine=medicine, advice="Avoid strenuous exercise until the ECG. Cut down on coffee.", follow_up="In one week, with the ECG report")
    shot(desk, "4-prescription")
    desk.close()

    # When she ends the consultation for everyone
    doctor.get_by_role("button", name="End for everyone").click()
    doctor.get_by_role("button", name="End consultation").click()

    # Then both see that it ended
    for page in (doctor, patient):
        expect(page.locator("#mm-consultation")).to_have_attribute("data-call-state", "ended")
    shot(patient, "4-ended")
    appointment.refresh_from_db()
    assert appointment.status == Appointment.Status.COMPLETED
    consultation = Consultation.objects.get(appointment=appointment)
    assert consultation.status == Consultation.Status.ENDED
    assert list(consultation.chat_messages.values_list("body", flat=True)) == ["Hello doctor, I can see and hear you.", "Good. Tell me about the palpitations."]

    # --- 5. The patient downloads the receipt and the prescription, and reviews the doctor --------
    # Given the patient back on their appointment page, which shows the doctor's notes
    patient.goto(f"{base}/appointments/{appointment.public_id}/")
    expect(patient.get_by_text("ECG advised.", exact=False)).to_be_visible()
    invoice = Invoice.objects.get(payment__appointment=appointment)

    # When they download the receipt, then it is a PDF with its number
    with patient.expect_download() as receipt:
        patient.get_by_role("link", name=re.compile(rf"Receipt {invoice.number}")).click()
    receipt_path = Path(receipt.value.path())
    assert receipt_path.read_bytes().startswith(b"%PDF-")
    receipt_text = "\n".join(page.extract_text() for page in PdfReader(receipt_path).pages)
    assert invoice.number in receipt_text and "₹800.00" in receipt_text

    # When they open their record and download the prescription, then it is the doctor's
    patient.get_by_role("navigation", name="Main").get_by_role("link", name="Medical record").click()
    with patient.expect_download() as prescription:
        patient.get_by_role("link", name="Prescription PDF").click()
    prescription_text = "\n".join(page.extract_text() for page in PdfReader(prescription.value.path()).pages)
    assert "Metoprolol" in prescription_text and Prescription.objects.get().verification_code in prescription_text
    shot(patient, "5-record")

    # When they review the consultation
    patient.goto(f"{base}/appointments/{appointment.public_id}/")
    patient.get_by_role("link", name="Write a review").click()
    patient.locator("fieldset", has_text="Overall").get_by_text("5 ★").click()
    patient.locator("fieldset", has_text="Punctuality").get_by_text("5 ★").click()
    patient.get_by_label("Your review").fill("Dr. Raman listened carefully, explained what the palpitations could be and what the ECG will show.")
    shot(patient, "5-review")
    patient.get_by_role("button", name="Publish review").click()

    # Then the review passes the filter and is published on the doctor's page at once
    expect(patient.locator("[role=alert]").first).to_contain_text("Your review is published")
    patient.goto(f"{base}/doctors/{application.slug}/")
    expect(patient.get_by_test_id("doctor-reviews").get_by_test_id("review")).to_have_count(1)
    expect(patient.get_by_test_id("doctor-reviews")).to_contain_text("Asha V.")
    shot(patient, "5-doctor-page")
    assert Review.objects.get().status == Review.Status.PUBLISHED

    # --- 6. Staff see it on the dashboard ---------------------------------------------------
    # Given a finance officer signed in with her authenticator code, when she opens the dashboard
    sign_in_with_code(analyst, base, email="meera.pillai@medimeet.local", password=STAFF_PASSWORD, secret=analyst_secret)
    analyst.goto(f"{base}/admin/")
    analyst.get_by_role("link", name="Metrics, charts and custom reports").click()

    # Then the booking, the consultation, the payment and the review are in the figures
    expect(analyst.locator('[data-metric="bookings"]')).to_have_text("1")
    expect(analyst.locator('[data-metric="consultations"]')).to_have_text("1")
    expect(analyst.locator('[data-metric="revenue-INR"]')).to_have_text("₹800.00")
    expect(analyst.locator('[data-metric="rating"]')).to_have_text("5.00")
    # The one revenue chart (one currency) is as wide as the others, not stretched across the page
    assert analyst.locator("#chart-revenue-inr").bounding_box()["width"] <= analyst.locator("#chart-bookings").bounding_box()["width"] + 1
    shot(analyst, "6-dashboard")

    # And the database holds the whole story
    appointment.refresh_from_db()
    assert appointment.status == Appointment.Status.COMPLETED
    payment = Payment.objects.get(appointment=appointment)
    assert (payment.status, payment.amount_minor, payment.currency, payment.amount_refunded_minor) == ("succeeded", 80000, "INR", 0)
    assert appointment.clinical_note.text.startswith("Palpitations on exertion for two weeks.")
    prescription = Prescription.objects.get()
    assert (prescription.appointment_id, prescription.status, prescription.registration_number) == (appointment.pk, "issued", "KMC-2012/48213")
    review = Review.objects.get()
    assert (review.appointment_id, review.overall, review.status) == (appointment.pk, 5, Review.Status.PUBLISHED)
    application.refresh_from_db()
    assert application.rating_count == 1
    assert [p.errors for p in people.values()] == [[], [], [], []]
