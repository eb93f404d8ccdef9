"""Step 3 in a real browser: a patient books a paid consultation (service, day, slot, the hold
with its countdown, the reason for the visit), the booking is paid and confirmed, the .ics
event is downloaded and read back, and the patient cancels seeing the refund first; a doctor
edits their availability (a Tuesday range, a closed date) and the booking page follows it.

Time is real here (the browser's clock runs the countdown), so dates are chosen relative to
today. The tests write docs/screenshots/step3-*.png for reviewing the look and fail on any
browser console error (a CSP violation, a missing file).
"""

from __future__ import annotations

import re
from datetime import datetime, time, timedelta
from decimal import Decimal
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from django.conf import settings
from django.utils import timezone
from icalendar import Calendar
from playwright.sync_api import Page, expect
from pypdf import PdfReader

from accounts.tests.factories import UserFactory
from appointments import selectors, services
from appointments.models import Appointment, DoctorSchedule, WeeklyHours
from doctors import demo
from doctors.models import DoctorProfile, DoctorService, Education, Language, Specialization
from doctors.services import doctor_fee_refresh, doctor_search_refresh
from doctors.tests.factories import DoctorProfileFactory

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

PASSWORD = "Vivid-Harbor-2026!"
SCREENSHOTS = Path(settings.BASE_DIR) / "docs" / "screenshots"
PATIENT_TZ = ZoneInfo("Europe/London")  # the browser's zone too (medimeet/core/tests/browser.py)


def shot(page: Page, name: str, step: int = 3) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    # From the top and without a focused field, so the sticky header sits where it belongs.
    page.evaluate("() => { document.activeElement?.blur(); window.scrollTo(0, 0); }")
    page.screenshot(path=str(SCREENSHOTS / f"step{step}-{name}.png"), full_page=True)


def sign_in(page: Page, base_url: str, email: str, path: str = "/accounts/login/") -> None:
    page.goto(f"{base_url}{path}")
    page.get_by_label("Email", exact=True).fill(email)
    page.get_by_label("Password", exact=True).fill(PASSWORD)
    page.get_by_role("button", name="Sign In").click()


def seconds_left(page: Page) -> int:
    minutes, seconds = page.locator("[data-mm-countdown-value]").inner_text().split(":")
    return int(minutes) * 60 + int(seconds)


def local_today(tz: ZoneInfo = PATIENT_TZ):
    return timezone.now().astimezone(tz).date()


def next_weekday(weekdays: set[int], *, after_days: int = 2):
    """The first date at least ``after_days`` from today (patient's zone) on one of ``weekdays``."""
    day = local_today() + timedelta(days=after_days)
    while day.weekday() not in weekdays:
        day += timedelta(days=1)
    return day


def cardiologist(weekdays=range(7)) -> DoctorProfile:
    """Dr. Priya Raman, a listed cardiologist in Bengaluru who works 09:00–13:00 and 14:00–18:00
    India time on ``weekdays``, with a video consultation and a follow-up."""
    demo.reference_data()
    doctor = DoctorProfileFactory(
        user__first_name="Priya",
        user__last_name="Raman",
        user__email="priya.raman@example.com",
        user__password=PASSWORD,
        user__timezone="Asia/Kolkata",
        title="Dr.",
        slug="dr-priya-raman",
        primary_specialization=Specialization.objects.get(name="Cardiology"),
        licence_authority="Karnataka Medical Council",
        licence_country="IN",
        years_experience=12,
        bio="Consultant cardiologist in Bengaluru caring for people with high blood pressure, chest pain and heart failure.",
        clinic_name="Raman Heart Clinic",
        clinic_address="14 Residency Road, Ashok Nagar",
        city="Bengaluru",
        rating_average=Decimal("4.8"),
        rating_count=37,
    )
    doctor.languages.set(Language.objects.filter(code__in=["en", "hi", "ta"]))
    Education.objects.create(doctor=doctor, degree="DM Cardiology", institution="Sri Jayadeva Institute of Cardiovascular Sciences", year=2013)
    DoctorService.objects.create(
        doctor=doctor, name="Video consultation", description="A first consultation by video to discuss your symptoms and reports.",
        price_minor=80000, currency="INR", duration_minutes=20, mode="video",
    )
    DoctorService.objects.create(
        doctor=doctor, name="Follow-up consultation", description="A short review of your treatment within 30 days of a consultation.",
        price_minor=50000, currency="INR", duration_minutes=15, mode="video",
    )
    schedule = DoctorSchedule.objects.create(doctor=doctor, timezone="Asia/Kolkata", buffer_before_minutes=0, buffer_after_minutes=10, min_notice_minutes=60, max_days_ahead=30)
    WeeklyHours.objects.bulk_create(
        [WeeklyHours(schedule=schedule, weekday=d, start_time=s, end_time=e) for d in weekdays for s, e in [(time(9), time(13)), (time(14), time(18))]]
    )
    doctor_fee_refresh(doctor=doctor)
    doctor_search_refresh(doctor=doctor)
    return doctor


def book_paid(doctor, patient, start, service_name="Video consultation", reason="Palpitations after exercise") -> Appointment:
    service = doctor.services.get(name=service_name)
    hold = services.appointment_hold(patient=patient, service=service, start=start)
    booked = services.appointment_confirm_details(appointment=hold, patient=patient, reason=reason)
    return services.appointment_mark_paid(appointment=booked)


def test_patient_books_pays_adds_to_calendar_and_cancels(live_server, page: Page, console_errors):
    doctor = cardiologist(weekdays=range(6))  # not on Sundays
    patient = UserFactory(email="asha.verma@example.com", first_name="Asha", last_name="Verma", password=PASSWORD, timezone="Europe/London")
    day = next_weekday(set(range(6)), after_days=3)  # more than 24 h ahead: a full refund on cancelling

    # Given a signed-in patient on the doctor's public profile
    sign_in(page, live_server.url, "asha.verma@example.com")
    page.goto(f"{live_server.url}/doctors/{doctor.slug}/")

    # When they book the video consultation, choosing a day three days from now and its first time
    page.get_by_role("link", name="Book Video consultation").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Book a consultation")
    expect(page.locator(".mm-choice.is-selected")).to_contain_text("Video consultation")
    page.get_by_role("navigation", name="Choose a day").locator(f"a[href*='date={day.isoformat()}']").click()
    expect(page.locator("#slots-title")).to_have_text(f"{day:%A} {day.day} {day:%B}")
    expect(page.locator(".mm-zone-note")).to_contain_text("Europe/London")
    expect(page.locator(".mm-zone-note")).to_contain_text("The doctor works in Asia/Kolkata (IST)")
    first_slot = page.locator("button.mm-slot").first
    slot_start = datetime.fromisoformat(first_slot.get_attribute("value"))
    expect(first_slot.locator(".mm-slot-time")).to_have_text(f"{slot_start.astimezone(PATIENT_TZ):%H:%M}")
    expect(first_slot.locator(".mm-slot-alt")).to_contain_text(f"{slot_start.astimezone(ZoneInfo('Asia/Kolkata')):%H:%M}")
    shot(page, "booking")
    first_slot.click()

    # Then the slot is held for them, with a countdown that runs
    appointment = Appointment.objects.get(patient=patient)
    assert (appointment.status, appointment.start, appointment.service.name) == ("held", slot_start, "Video consultation")
    expect(page).to_have_url(f"{live_server.url}/appointments/{appointment.public_id}/")
    expect(page.get_by_role("heading", level=1)).to_have_text("Complete your booking")
    expect(page.locator("[data-mm-countdown]")).to_be_visible()
    first_reading = seconds_left(page)
    page.wait_for_timeout(2100)  # the countdown is the thing under test: let the real clock run
    second_reading = seconds_left(page)
    assert 540 < second_reading < first_reading <= 600
    expect(page.locator(".mm-policy")).to_contain_text("Cancel 24 h or more before: 100 % refund")
    expect(page.locator(".mm-appt-summary")).to_contain_text("₹800.00")
    page.get_by_label("Reason for visit").fill("Palpitations after exercise for two weeks, and some breathlessness climbing stairs.")
    shot(page, "hold")

    # When they confirm their details
    page.get_by_role("button", name="Confirm details").click()

    # Then the paid booking waits for its payment on the pay page, still held
    expect(page.get_by_role("heading", level=1)).to_have_text("Pay for your appointment")
    expect(page.locator("[data-mm-countdown]")).to_be_visible()
    appointment.refresh_from_db()
    assert (appointment.status, appointment.reason) == ("pending_payment", "Palpitations after exercise for two weeks, and some breathlessness climbing stairs.")
    shot(page, "pay", step=4)

    # When they pay on the sandbox gateway's card page, first with a card that is declined
    page.get_by_test_id("pay-button").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Secure payment")
    expect(page.get_by_test_id("amount")).to_have_text("₹800.00")
    page.get_by_label("Card number").fill("4000 0000 0000 0002")
    page.get_by_role("button", name="Pay ₹800.00").click()
    expect(page.locator(".mm-messages")).to_contain_text("The payment did not go through")
    page.get_by_test_id("pay-button").click()
    page.get_by_label("Card number").fill("4242 4242 4242 4242")
    page.locator("#id_card_number").blur()
    shot(page, "sandbox-card", step=4)
    page.get_by_role("button", name="Pay ₹800.00").click()

    # Then it is confirmed, with a receipt and a calendar event that starts at the booked time
    expect(page.locator(".mm-messages")).to_contain_text("Payment received. Your appointment is confirmed")
    expect(page.locator(".mm-page-header-status")).to_have_text("Confirmed")
    expect(page.locator(".mm-history")).to_contain_text("Paid and confirmed")
    expect(page.get_by_test_id("payment-status")).to_contain_text("Paid")
    expect(page.get_by_test_id("payment-status")).to_contain_text("Visa •••• 4242")
    shot(page, "detail")
    with page.expect_download() as receipt_info:
        page.get_by_role("link", name=re.compile(r"Receipt MM-\d{4}-\d{6}")).click()
    receipt_text = "\n".join(p.extract_text() for p in PdfReader(receipt_info.value.path()).pages)
    assert "Receipt" in receipt_text and "₹800.00" in receipt_text and "Dr. Priya Raman" in receipt_text and "GST 18 %" in receipt_text
    with page.expect_download() as download_info:
        page.get_by_role("link", name="Add to calendar (.ics)").click()
    download = download_info.value
    calendar = Calendar.from_ical(Path(download.path()).read_bytes())
    event = next(iter(calendar.walk("VEVENT")))
    assert download.suggested_filename == f"medimeet-{appointment.public_id}.ics"
    assert event["DTSTART"].dt == slot_start
    assert event["DTSTART"].dt.utcoffset() == slot_start.astimezone(PATIENT_TZ).utcoffset()
    assert str(event["SUMMARY"]) == "Video consultation with Dr. Priya Raman"

    # And their list shows it with their other appointments
    other = cardiologist_colleague()
    later = book_paid(other, patient, selectors.free_slots(doctor=other, service=other.services.get(), window_start=timezone.now() + timedelta(days=5), window_end=timezone.now() + timedelta(days=6))[2].start, service_name="Clinic visit", reason="Eczema flare-up")
    past_visit(other, patient)
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Appointments").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("My appointments")
    rows = page.locator(".mm-appt-row")
    expect(rows).to_have_count(2)
    expect(rows.nth(0)).to_contain_text("Dr. Priya Raman")
    expect(rows.nth(0)).to_contain_text("Confirmed")
    expect(rows.nth(1)).to_contain_text("Dr. Lucia Garcia")
    expect(rows.nth(0)).to_contain_text(f"{slot_start.astimezone(PATIENT_TZ):%H:%M}")
    shot(page, "appointments")
    page.get_by_role("link", name="Past").click()
    expect(rows).to_have_count(1)
    expect(rows.nth(0)).to_contain_text("Completed")
    page.get_by_role("link", name="Upcoming").click()
    rows.nth(0).click()

    # When they cancel, they first see what the policy refunds
    page.get_by_role("link", name="Cancel appointment").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Cancel this appointment?")
    expect(page.locator(".mm-refund")).to_contain_text("100 % refund")
    expect(page.locator(".mm-refund")).to_contain_text("₹800.00 of ₹800.00")
    page.get_by_role("button", name="Cancel appointment").click()
    expect(page.locator("#id_reason_error")).to_have_text("Give a reason for cancelling.")
    page.get_by_label("Reason for cancelling").fill("My symptoms have settled; I will book again if they return.")
    page.get_by_role("button", name="Cancel appointment").click()

    # Then it is cancelled with a full refund, processed through the gateway, and the time is free again
    expect(page.locator(".mm-messages")).to_contain_text("The appointment is cancelled. A refund of 100 % is on its way.")
    expect(page.locator(".mm-page-header-status")).to_have_text("Cancelled")
    page.reload()
    expect(page.get_by_test_id("refund-status")).to_have_text(re.compile(r"₹800.00 · Refunded on"))
    expect(page.get_by_test_id("payment-status")).to_contain_text("Refunded")
    shot(page, "refunded", step=4)
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Payments").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Payments and receipts")
    expect(page.locator("tbody tr").first).to_contain_text("Refund ₹800.00: refunded")
    shot(page, "payments", step=4)
    appointment.refresh_from_db()
    assert (appointment.status, appointment.refund_percent, appointment.cancelled_by) == ("cancelled", 100, "patient")
    later.refresh_from_db()
    assert later.status == "confirmed"
    assert any(s.start == slot_start for s in selectors.free_slots(doctor=doctor, service=appointment.service, window_start=slot_start - timedelta(hours=1), window_end=slot_start + timedelta(hours=1)))

    assert console_errors == []


def cardiologist_colleague():
    """A second listed doctor, for a fuller appointments list."""
    doctor = DoctorProfileFactory(
        user__first_name="Lucia", user__last_name="Garcia", user__timezone="Europe/London", title="Dr.", slug="dr-lucia-garcia",
        primary_specialization=Specialization.objects.get(name="Dermatology"), city="London", country="GB",
    )
    DoctorService.objects.create(doctor=doctor, name="Clinic visit", price_minor=9000, currency="GBP", duration_minutes=30, mode="in_person")
    schedule = DoctorSchedule.objects.create(doctor=doctor, timezone="Europe/London", buffer_before_minutes=0, buffer_after_minutes=0, min_notice_minutes=60)
    WeeklyHours.objects.bulk_create([WeeklyHours(schedule=schedule, weekday=d, start_time=time(9), end_time=time(17)) for d in range(7)])
    return doctor


def past_visit(doctor, patient) -> Appointment:
    """A consultation that already took place (written directly: the slot engine only offers the future)."""
    start = (timezone.now() - timedelta(days=20)).replace(hour=10, minute=0, second=0, microsecond=0)
    service = doctor.services.get()
    return Appointment.objects.create(
        doctor=doctor, patient=patient, service=service, start=start, end=start + timedelta(minutes=30), blocked_start=start, blocked_end=start + timedelta(minutes=30),
        status="completed", price_minor=service.price_minor, currency=service.currency, reason="Itchy rash on both forearms",
    )


def test_doctor_edits_availability_and_patients_see_it(live_server, page: Page, browser, console_errors):
    doctor = cardiologist(weekdays={0, 2, 4})  # Monday, Wednesday, Friday
    tuesday = next_weekday({1})
    wednesday, closed = tuesday + timedelta(days=1), tuesday + timedelta(days=3)  # the Friday of that week closes
    service = doctor.services.get(name="Video consultation")

    # Given the doctor signed in, on their portal's Availability tab
    sign_in(page, live_server.url, "priya.raman@example.com", path="/portal/")
    portal = page.get_by_role("navigation", name="Doctor portal")
    portal.get_by_role("link", name="Availability").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Availability")
    expect(page.locator(".mm-hours-row")).to_have_count(7)  # six saved ranges and an empty row

    # When they add a Tuesday range in a new row and save
    page.get_by_role("button", name="Add a range").click()
    expect(page.locator("[data-mm-formset-rows] .mm-hours-row")).to_have_count(8)
    page.locator("[name='hours-6-weekday']").select_option(label="Tuesday")
    page.locator("[name='hours-6-start']").fill("10:00")
    page.locator("[name='hours-6-end']").fill("14:00")
    page.locator("[name='hours-7-weekday']").select_option(label="Tuesday")
    page.locator("[name='hours-7-start']").fill("13:00")
    page.locator("[name='hours-7-end']").fill("15:00")
    page.get_by_role("button", name="Save availability").click()

    # Then an overlap is refused next to the row, and without it the range is saved
    expect(page.locator("#id_hours-7-start_error")).to_have_text("Overlaps 10:00–14:00 on Tuesday.")
    page.locator("[name='hours-7-weekday']").select_option(label="Choose a day")
    page.locator("[name='hours-7-start']").fill("")
    page.locator("[name='hours-7-end']").fill("")
    page.get_by_label("Buffer after (minutes)").fill("5")
    page.get_by_role("button", name="Save availability").click()
    expect(page.locator(".mm-messages")).to_contain_text("Your availability is saved.")
    assert list(doctor.schedule.weekly_hours.filter(weekday=1).values_list("start_time", "end_time")) == [(time(10), time(14))]

    # When they close a working day with an override
    page.get_by_label("Date", exact=True).fill(closed.isoformat())
    page.get_by_label("Closed all day").check()
    expect(page.locator("#id_start")).to_be_hidden()
    page.get_by_label("Note").fill("Cardiology conference")
    page.get_by_role("button", name="Add date").click()

    # Then the date is listed as closed
    expect(page.locator(".mm-messages")).to_contain_text("is closed")
    expect(page.locator(".mm-override")).to_contain_text(f"{closed:%a} {closed.day} {closed:%b %Y}")
    expect(page.locator(".mm-override")).to_contain_text("Closed · Cardiology conference")
    shot(page, "availability")

    # And their week shows the bookings patients make on the new hours
    patients = [UserFactory(first_name=first, last_name=last, timezone="Europe/London", password=PASSWORD) for first, last in [("Asha", "Verma"), ("Tom", "Hughes"), ("Meera", "Iyer"), ("Daniel", "Okoye")]]
    tuesday_slots = selectors.free_slots(
        doctor=doctor, service=service, window_start=datetime.combine(tuesday, time(0), tzinfo=PATIENT_TZ), window_end=datetime.combine(tuesday + timedelta(days=1), time(0), tzinfo=PATIENT_TZ)
    )
    booked = [book_paid(doctor, patients[0], tuesday_slots[0].start), book_paid(doctor, patients[1], tuesday_slots[3].start, reason="Review of blood pressure readings")]
    wednesday_slots = selectors.free_slots(
        doctor=doctor, service=service, window_start=datetime.combine(wednesday, time(0), tzinfo=PATIENT_TZ), window_end=datetime.combine(wednesday + timedelta(days=1), time(0), tzinfo=PATIENT_TZ)
    )
    booked += [book_paid(doctor, patients[2], wednesday_slots[1].start, reason="Chest tightness"), book_paid(doctor, patients[3], wednesday_slots[6].start, reason="ECG follow-up")]
    pending = services.appointment_hold(patient=patients[0], service=service, start=wednesday_slots[9].start)
    services.appointment_confirm_details(appointment=pending, patient=patients[0], reason="Second opinion")
    portal.get_by_role("link", name="Schedule").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Schedule")
    monday = local_today() - timedelta(days=local_today().weekday())
    if tuesday >= monday + timedelta(days=7):
        page.get_by_role("link", name="Next week").click()
    tuesday_column = page.locator(".mm-week-day").nth(1)
    expect(tuesday_column).to_contain_text("10:00–14:00")
    expect(tuesday_column.locator(".mm-week-appt")).to_have_count(2)
    expect(tuesday_column).to_contain_text("Asha Verma")
    shot(page, "schedule")

    # Given a patient on the booking page
    page.context.clear_cookies()
    sign_in(page, live_server.url, patients[2].email, path=f"/doctors/{doctor.slug}/book/?service={service.public_id}&date={tuesday.isoformat()}")

    # Then Tuesday, a day the doctor did not work before, has free times, and the closed day none
    expect(page.locator("#slots-title")).to_have_text(f"{tuesday:%A} {tuesday.day} {tuesday:%B}")
    expect(page.locator("button.mm-slot").first).to_be_visible()
    assert page.locator("button.mm-slot").count() == len(tuesday_slots) - 2
    closed_day = page.get_by_role("navigation", name="Choose a day").locator("li").nth((closed - local_today()).days)
    expect(closed_day).to_contain_text("no free times")
    expect(closed_day.locator("a")).to_have_count(0)
    page.goto(f"{live_server.url}/doctors/{doctor.slug}/book/?service={service.public_id}&date={closed.isoformat()}")
    expect(page.get_by_text("No free times on this day")).to_be_visible()
    expect(page.locator("button.mm-slot")).to_have_count(0)
    assert booked[0].start.astimezone(ZoneInfo("Asia/Kolkata")).time() == time(10)

    assert console_errors == []


def test_hold_page_says_when_the_hold_expires_and_disables_the_form(live_server, page: Page, console_errors):
    doctor = cardiologist()
    patient = UserFactory(email="asha.verma@example.com", password=PASSWORD, timezone="Europe/London")
    service = doctor.services.get(name="Video consultation")
    start = selectors.free_slots(doctor=doctor, service=service, window_start=timezone.now() + timedelta(days=2), window_end=timezone.now() + timedelta(days=3))[0].start
    hold = services.appointment_hold(patient=patient, service=service, start=start)
    sign_in(page, live_server.url, "asha.verma@example.com")

    # Given the hold page open, with the browser's clock under the test's control
    page.clock.install()
    page.goto(f"{live_server.url}/appointments/{hold.public_id}/")
    expect(page.locator("[data-mm-countdown-value]")).to_have_text(re.compile(r"^(10:00|9:5\d)$"))
    expect(page.get_by_text("Your hold expired.")).to_be_hidden()

    # When the ten minutes pass without the details being sent
    page.clock.fast_forward("10:01")

    # Then the page says so, offers another time and no longer accepts the form
    expect(page.get_by_text("Your hold expired.")).to_be_visible()
    expect(page.locator("[data-mm-countdown-value]")).to_have_text("0:00")
    expect(page.get_by_label("Reason for visit")).to_be_disabled()
    expect(page.get_by_role("button", name="Confirm details")).to_be_disabled()
    expect(page.locator("[data-mm-hold-expired]").get_by_role("link", name="Choose another time")).to_have_attribute(
        "href", f"/doctors/{doctor.slug}/book/?service={service.public_id}"
    )

    assert console_errors == []
