"""Browser: a patient switches to Hindi and sees the portal and their booking email in Hindi;
the notification pages and the staff outbox, photographed for review (docs/screenshots/step6-*)."""

from __future__ import annotations

import re

import pytest
from django.core import mail
from django.utils import timezone
from playwright.sync_api import Page, expect

from accounts.tests.factories import UserFactory
from appointments.tests.test_e2e import PASSWORD, book_paid, cardiologist, next_weekday, shot, sign_in
from medimeet.core.notifications import notify

from .notification_samples import cast, context_for

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


def test_a_patient_switches_to_hindi_and_sees_the_portal_and_the_booking_email_in_hindi(live_server, page: Page, console_errors):
    doctor = cardiologist()
    patient = UserFactory(email="asha.verma@example.com", first_name="Asha", last_name="Verma", password=PASSWORD, timezone="Asia/Kolkata")

    # Given a signed-in patient whose portal is in English
    sign_in(page, live_server.url, "asha.verma@example.com")
    expect(page.get_by_role("link", name="Dashboard", exact=True)).to_be_visible()

    # When they choose Hindi in their notification preferences
    page.goto(f"{live_server.url}/notifications/preferences/")
    expect(page.get_by_role("heading", level=1)).to_have_text("Notification preferences")
    page.get_by_label("Language of emails and pages").select_option("hi")
    page.get_by_role("button", name="Save preferences").click()

    # Then the portal speaks Hindi
    expect(page.get_by_role("heading", level=1)).to_have_text("सूचना प्राथमिकताएँ")
    expect(page.locator(".alert-success")).to_contain_text("आपकी सूचना प्राथमिकताएँ सहेज ली गई हैं।")
    expect(page.get_by_role("link", name="डैशबोर्ड", exact=True)).to_be_visible()
    expect(page.locator("html")).to_have_attribute("lang", "hi")
    patient.refresh_from_db()
    assert patient.language == "hi"
    shot(page, "preferences-hi", step=6)
    page.goto(f"{live_server.url}/account/")
    expect(page.get_by_role("heading", level=1)).to_have_text("नमस्ते, Asha")
    # and so do the page scripts (the JavaScript catalogue): the search's filter button counts in Hindi
    page.goto(f"{live_server.url}/doctors/?city=Pune")
    expect(page.locator("[data-mm-filters-toggle] span")).to_have_text(re.compile(r"^फ़िल्टर \(\d+\)$"))

    # When they book and pay for a consultation
    day = next_weekday(set(range(7)), after_days=2)
    start = timezone.make_aware(timezone.datetime.combine(day, timezone.datetime.min.time().replace(hour=10)), timezone=timezone.get_fixed_timezone(330))
    book_paid(doctor, patient, start)

    # Then the booking email is in Hindi, with the time in their zone and the doctor's
    confirmation = next(m for m in mail.outbox if m.to == ["asha.verma@example.com"] and "पक्का" in m.subject)
    assert confirmation.subject == "MediMeet: आपका अपॉइंटमेंट पक्का हो गया है"
    assert "प्रिय Asha Verma," in confirmation.body and "10:00 (Asia/Kolkata)" in confirmation.body
    page.goto(f"{live_server.url}/notifications/")
    expect(page.get_by_role("heading", level=1)).to_have_text("आपकी सूचनाएँ")
    expect(page.locator("tbody tr").first).to_contain_text("पक्का हो गया है")
    shot(page, "history-hi", step=6)
    page.set_content(confirmation.alternatives[0][0])
    expect(page.get_by_role("heading", level=1)).to_have_text("आपका अपॉइंटमेंट पक्का हो गया है")
    expect(page.get_by_role("link", name="अपना अपॉइंटमेंट देखें")).to_be_visible()
    shot(page, "email-booking-hi", step=6)
    assert console_errors == []


def test_staff_read_the_outbox_and_the_emails_look_right(live_server, page: Page, settings, tmp_path, console_errors):
    settings.EMAIL_BACKEND = "medimeet.core.mail.OutboxEmailBackend"
    settings.EMAIL_OUTBOX_DIR = tmp_path / "outbox"
    settings.MFA_REQUIRED_FOR_STAFF = False
    people = cast()
    for event in ("appointment.reminder", "payment.receipt", "account.new_device_sign_in"):
        user, context = context_for(event, people)
        notify(user=user, event=event, context=context)
    UserFactory(email="staff@example.com", password=PASSWORD, role="staff", is_staff=True, is_superuser=True)

    sign_in(page, live_server.url, "staff@example.com")
    page.goto(f"{live_server.url}/staff/outbox/")
    expect(page.get_by_role("heading", level=1)).to_have_text("Outbox")
    expect(page.locator("tbody tr")).to_have_count(3)
    shot(page, "outbox", step=6)
    page.get_by_role("link", name="Reminder: your appointment on 2 November, 14:30 (Asia/Kolkata)").click()
    expect(page.locator("pre")).to_contain_text("How to prepare:")
    frame = page.frame_locator("iframe")
    expect(frame.get_by_role("heading", level=1)).to_have_text("Your appointment is coming up")
    expect(frame.get_by_role("link", name="Unsubscribe from “Appointment reminders”")).to_be_visible()
    shot(page, "outbox-reminder", step=6)
    page.goto(f"{live_server.url}/admin/core/notification/")
    expect(page.locator("#result_list tbody tr")).to_have_count(3)
    shot(page, "admin-log", step=6)
    assert console_errors == []


def test_the_preferences_page_in_english(live_server, page: Page, console_errors):
    UserFactory(email="ravi@example.com", first_name="Ravi", password=PASSWORD, timezone="Asia/Kolkata")
    sign_in(page, live_server.url, "ravi@example.com")
    page.goto(f"{live_server.url}/notifications/preferences/")
    page.get_by_label("Remind me before each appointment").fill("2d, 1h, 15")
    page.get_by_role("button", name="Save preferences").click()
    expect(page.locator(".mm-field-errors")).to_have_text("Write each time as a number and a unit, e.g. 24h, 90m or 2d.")
    page.get_by_label("Remind me before each appointment").fill("2d, 1h, 15m")
    page.get_by_role("button", name="Save preferences").click()
    expect(page.locator(".alert-success")).to_contain_text("Your notification preferences are saved.")
    expect(page.get_by_label("Remind me before each appointment")).to_have_value("48h, 1h, 15m")
    shot(page, "preferences", step=6)
    assert console_errors == []
