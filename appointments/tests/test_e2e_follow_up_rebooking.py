"""Step 3, the rest, in a real browser: a doctor writes notes and recommends a follow-up, and the
patient books it with one click; a doctor goes on vacation and the patient moves their booking
into the time held for them with one click. Screenshots: docs/screenshots/step3-*.png."""

from __future__ import annotations

from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from django.utils import timezone
from playwright.sync_api import Page, expect

from accounts.tests.factories import UserFactory
from appointments import selectors, services
from appointments.models import Appointment, DoctorSchedule, RebookingOffer, WeeklyHours
from appointments.tests.test_e2e import PASSWORD, book_paid, cardiologist, next_weekday, shot, sign_in
from doctors.models import DoctorService, Specialization
from doctors.tests.factories import DoctorProfileFactory

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]
KOLKATA = ZoneInfo("Asia/Kolkata")  # Dr. Priya Raman's schedule


def patient_asha():
    return UserFactory(email="asha.verma@example.com", first_name="Asha", last_name="Verma", password=PASSWORD, timezone="Europe/London")


def test_doctor_recommends_a_follow_up_and_the_patient_books_it_with_one_click(live_server, page: Page, browser, console_errors):  # noqa: F811
    doctor = cardiologist()
    DoctorService.objects.filter(doctor=doctor, name="Follow-up consultation").update(free_follow_up_days=30)
    patient = patient_asha()
    visit_service = doctor.services.get(name="Video consultation")
    start = (timezone.now() - timedelta(hours=3)).replace(second=0, microsecond=0)
    visit = Appointment.objects.create(
        doctor=doctor, patient=patient, service=visit_service, start=start, end=start + timedelta(minutes=20), blocked_start=start, blocked_end=start + timedelta(minutes=30),
        status="completed", price_minor=80000, currency="INR", reason="Palpitations after exercise",
    )
    follow_up_day = next_weekday(set(range(7)), after_days=10)

    # Given the doctor on the completed consultation's page
    sign_in(page, live_server.url, "priya.raman@example.com", path=f"/appointments/{visit.public_id}/")
    expect(page.get_by_role("heading", name="Consultation notes")).to_be_visible()

    # When they write notes and recommend a follow-up consultation from a date
    page.get_by_role("textbox", name="Notes").fill("ECG normal sinus rhythm. BP 148/92. Start amlodipine 5 mg once daily.\nReview with home readings.")
    page.get_by_role("button", name="Save notes").click()
    expect(page.locator(".mm-messages")).to_contain_text("Notes saved")
    page.get_by_label("Follow-up from").fill(follow_up_day.isoformat())
    page.get_by_label("Service").select_option(label="Follow-up consultation · 15 min · ₹500.00")
    page.get_by_label("Note for the patient").fill("Please bring a week of morning and evening blood pressure readings.")
    page.get_by_role("button", name="Recommend a follow-up").click()

    # Then the recommendation is saved and shown to the doctor
    expect(page.locator(".mm-messages")).to_contain_text("Asha Verma has been emailed a link to book it")
    expect(page.locator("#follow-up-title").locator("..")).to_contain_text(f"Recommended from {follow_up_day:%A} {follow_up_day.day} {follow_up_day:%B %Y}")
    shot(page, "doctor-notes")

    # And the doctor's "Book a patient" page knows Asha as their patient
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Portal").click()
    page.get_by_role("link", name="Book a patient").click()
    page.get_by_label("Patient's email").fill("asha.verma@example.com")
    page.get_by_role("button", name="Show free times").click()
    expect(page.locator("button.mm-slot").first).to_be_visible()
    shot(page, "book-patient")

    # When the patient opens their appointment (another browser context)
    context = browser.new_context(viewport={"width": 1280, "height": 800}, locale="en-GB", timezone_id="Europe/London")
    patient_page = context.new_page()
    patient_page.on("console", lambda message: console_errors.append(message.text) if message.type == "error" else None)
    patient_page.emulate_media(reduced_motion="reduce")
    sign_in(patient_page, live_server.url, "asha.verma@example.com", path=f"/appointments/{visit.public_id}/")

    # Then they read the doctor's notes and see the recommendation
    expect(patient_page.get_by_role("heading", name="Notes from Dr. Priya Raman")).to_be_visible()
    expect(patient_page.locator(".mm-clinical-note")).to_contain_text("amlodipine 5 mg")
    expect(patient_page.locator(".mm-follow-up-card")).to_contain_text(f"from {follow_up_day:%A} {follow_up_day.day} {follow_up_day:%B %Y}")
    shot(patient_page, "follow-up")

    # When they click "Book your follow-up" once
    patient_page.get_by_role("button", name="Book your follow-up").click()

    # Then the first free time from that date is held for them, free inside the follow-up window
    hold = Appointment.objects.get(patient=patient, status="held")
    expect(patient_page).to_have_url(f"{live_server.url}/appointments/{hold.public_id}/")
    expect(patient_page.get_by_role("heading", level=1)).to_have_text("Complete your booking")
    assert hold.service.name == "Follow-up consultation" and hold.price_minor == 0
    from_day = datetime.combine(follow_up_day, time(0), tzinfo=KOLKATA)  # the date is read in the doctor's zone
    assert hold.start >= from_day
    assert selectors.free_slots(doctor=doctor, service=hold.service, window_start=from_day, window_end=hold.start) == []  # the first free one
    expect(patient_page.locator(".mm-appt-summary")).to_contain_text("₹0.00")
    patient_page.get_by_label("Reason for visit").fill("Follow-up on blood pressure, with my readings.")
    shot(patient_page, "follow-up-hold")
    patient_page.get_by_role("button", name="Confirm booking").click()
    expect(patient_page.locator(".mm-page-header-status")).to_have_text("Confirmed")
    hold.refresh_from_db()
    assert hold.status == "confirmed"
    context.close()
    assert console_errors == []


def test_patient_moves_their_booking_into_the_time_held_for_them_when_the_doctor_goes_away(live_server, page: Page, console_errors):  # noqa: F811
    doctor = cardiologist()
    colleague = DoctorProfileFactory(
        user__first_name="Arjun", user__last_name="Mehta", user__timezone="Asia/Kolkata", title="Dr.", slug="dr-arjun-mehta",
        primary_specialization=Specialization.objects.get(name="Cardiology"), city="Chennai", country="IN",
    )
    DoctorService.objects.create(doctor=colleague, name="Video consultation", price_minor=90000, currency="INR", duration_minutes=20, mode="video")
    schedule = DoctorSchedule.objects.create(doctor=colleague, timezone="Asia/Kolkata", buffer_before_minutes=0, buffer_after_minutes=10, min_notice_minutes=60)
    WeeklyHours.objects.bulk_create([WeeklyHours(schedule=schedule, weekday=d, start_time=time(9), end_time=time(18)) for d in range(7)])
    patient = patient_asha()
    slot = selectors.free_slots(doctor=doctor, service=doctor.services.get(name="Video consultation"), window_start=timezone.now() + timedelta(days=4), window_end=timezone.now() + timedelta(days=5))[0]
    booking = book_paid(doctor, patient, slot.start)
    away = booking.start.astimezone(KOLKATA).date()

    # Given the doctor goes away over the booking (the offer is made after commit)
    services.doctor_vacation_set(doctor=doctor, first_day=away - timedelta(days=1), last_day=away + timedelta(days=2), by=doctor.user)
    offer = RebookingOffer.objects.get(appointment=booking)
    assert offer.same_doctor_hold is not None and offer.other_doctor_hold is not None

    # When the patient opens the appointment
    sign_in(page, live_server.url, "asha.verma@example.com", path=f"/appointments/{booking.public_id}/")

    # Then both held times are offered, with what each means for the payment
    card = page.locator(".mm-offer-card")
    expect(card).to_contain_text("Dr. Priya Raman is away on the day of this appointment")
    expect(card.locator(".mm-offer")).to_have_count(2)
    expect(card.locator(".mm-offer").nth(0)).to_contain_text("you have paid and pay nothing more")
    expect(card.locator(".mm-offer").nth(1)).to_contain_text("Dr. Arjun Mehta")
    expect(card.locator(".mm-offer").nth(1)).to_contain_text("₹900.00")
    shot(page, "rebooking-offer")

    # When they move to the later time with the same doctor, with one click
    page.get_by_role("button", name="Move to this time").click()

    # Then the paid booking has moved and the colleague's time is free again
    expect(page.locator(".mm-messages")).to_contain_text("is moved to")
    expect(page.locator(".mm-messages")).to_contain_text("Nothing more to pay.")
    expect(page.locator(".mm-offer-card")).to_have_count(0)
    booking.refresh_from_db()
    offer.refresh_from_db()
    assert (booking.status, booking.start, booking.price_minor) == ("confirmed", offer.same_doctor_hold.start, 80000)
    assert offer.other_doctor_hold.status == "cancelled"
    shot(page, "rebooking-moved")
    assert console_errors == []
