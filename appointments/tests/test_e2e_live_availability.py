"""Live availability in real browsers: two patients on the same booking page; one holds a time
and it disappears from the other's page within a second, with a clear message for the one who
was looking at it. Served by Daphne (HTTP and websockets in one process, the in-memory layer).
Writes docs/screenshots/step11-live-*.png."""

from __future__ import annotations

from datetime import datetime

import pytest
from playwright.sync_api import Browser, Page, expect

from accounts.tests.factories import UserFactory
from appointments.models import Appointment
from appointments.tests.test_e2e import PASSWORD, cardiologist, next_weekday, shot, sign_in
from medimeet.core.tests.browser import DESKTOP

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def daphne_with_live_pages(settings, request) -> str:
    """asgi_live_server with the booking page's socket on: the setting is changed before the
    server process is forked from this one, so the server has it too."""
    settings.LIVE_AVAILABILITY_ON_PAGES = True
    return request.getfixturevalue("asgi_live_server")


@pytest.fixture
def cast():
    """Dr. Priya Raman's video consultation, Asha and Rahul (both in London), and a day to look at."""
    doctor = cardiologist()
    asha = UserFactory(email="asha.verma@example.com", first_name="Asha", last_name="Verma", password=PASSWORD, timezone="Europe/London")
    UserFactory(email="rahul.mehta@example.com", first_name="Rahul", last_name="Mehta", password=PASSWORD, timezone="Europe/London")
    return doctor, doctor.services.get(name="Video consultation"), asha, next_weekday(set(range(7)), after_days=2)


def patient_page(browser: Browser, errors: list[str]) -> Page:
    context = browser.new_context(viewport=DESKTOP, locale="en-GB", timezone_id="Europe/London")
    context.set_default_timeout(10_000)
    page = context.new_page()
    page.emulate_media(reduced_motion="reduce")
    page.on("console", lambda message: errors.append(f"{page.url}: {message.text}") if message.type == "error" else None)
    return page


def test_a_time_one_patient_holds_disappears_from_the_other_patients_page_within_a_second(daphne_with_live_pages, cast, browser: Browser):
    base = daphne_with_live_pages
    doctor, service, asha, day = cast
    booking_path = f"/doctors/{doctor.slug}/book/?service={service.public_id}&date={day.isoformat()}"
    errors: list[str] = []

    # Given two patients, each in their own browser, on the same day of the same booking page
    asha_page, rahul_page = patient_page(browser, errors), patient_page(browser, errors)
    sign_in(asha_page, base, "asha.verma@example.com", path=booking_path)
    sign_in(rahul_page, base, "rahul.mehta@example.com", path=booking_path)
    for page in (asha_page, rahul_page):
        expect(page.locator("#slots-title")).to_have_text(f"{day:%A} {day.day} {day:%B}")
        expect(page.locator("[data-mm-live-slots]")).to_have_attribute("data-mm-live", "open")
    slots_before = rahul_page.locator("button.mm-slot").count()
    taken_value = rahul_page.locator("button.mm-slot").nth(2).get_attribute("value")
    taken_label = rahul_page.locator("button.mm-slot").nth(2).locator(".mm-slot-time").inner_text()
    day_count = rahul_page.locator(".mm-day.is-selected .mm-day-count")
    expect(day_count).to_have_text(f"{slots_before} free")

    # And Rahul is looking at the third time of the day
    rahul_page.locator(f"button.mm-slot[value='{taken_value}']").hover()

    # When Asha holds that very time
    asha_page.locator(f"button.mm-slot[value='{taken_value}']").click()
    expect(asha_page.get_by_role("heading", level=1)).to_have_text("Complete your booking")
    hold = Appointment.objects.get(patient=asha)
    assert (hold.status, hold.start) == ("held", datetime.fromisoformat(taken_value))

    # Then it disappears from Rahul's page within a second, and he is told why
    expect(rahul_page.locator(f"button.mm-slot[value='{taken_value}']")).to_have_count(0, timeout=1000)
    gone = rahul_page.locator("[data-mm-slot-gone]")
    expect(gone).to_be_visible(timeout=1000)
    expect(gone).to_have_text(f"The time you were looking at, {taken_label}, has just been taken by someone else. Please choose another time.")
    # And once the day is re-rendered by the server, its count follows; other times stay
    expect(day_count).to_have_text(f"{slots_before - 1} free", timeout=2000)
    expect(rahul_page.locator("button.mm-slot")).to_have_count(slots_before - 1)
    shot(asha_page, "live-holder", step=11)
    shot(rahul_page, "live-other-patient", step=11)

    # When Asha goes back and chooses another time, her first hold is given back
    asha_page.goto(f"{base}{booking_path}")
    other_value = asha_page.locator("button.mm-slot").nth(4).get_attribute("value")
    asha_page.locator(f"button.mm-slot[value='{other_value}']").click()
    expect(asha_page.get_by_role("heading", level=1)).to_have_text("Complete your booking")

    # Then on Rahul's page the first time is back and the new one has gone, within a second
    expect(rahul_page.locator(f"button.mm-slot[value='{taken_value}']")).to_have_count(1, timeout=1000)
    expect(rahul_page.locator(f"button.mm-slot[value='{other_value}']")).to_have_count(0, timeout=1000)
    expect(day_count).to_have_text(f"{slots_before - 1} free")
    assert errors == []


def test_a_time_another_patient_holds_disappears_from_the_reschedule_page(daphne_with_live_pages, cast, browser: Browser):
    from datetime import UTC, timedelta

    from appointments import selectors, services

    base = daphne_with_live_pages
    doctor, service, asha, day = cast
    # Asha's confirmed appointment, three days after the day she looks at to move it to.
    first_free = selectors.free_slots(
        doctor=doctor, service=service, window_start=datetime.combine(day + timedelta(days=3), datetime.min.time(), tzinfo=UTC), window_end=datetime.combine(day + timedelta(days=4), datetime.min.time(), tzinfo=UTC)
    )[0]
    hold = services.appointment_hold(patient=asha, service=service, start=first_free.start, reason="Chest pain when climbing stairs")
    appointment = services.appointment_mark_paid(appointment=hold)
    errors: list[str] = []

    # Given Asha on her reschedule page, looking at the day, and Rahul on the booking page of that day
    asha_page, rahul_page = patient_page(browser, errors), patient_page(browser, errors)
    sign_in(asha_page, base, "asha.verma@example.com", path=f"/appointments/{appointment.public_id}/reschedule/?date={day.isoformat()}")
    sign_in(rahul_page, base, "rahul.mehta@example.com", path=f"/doctors/{doctor.slug}/book/?service={service.public_id}&date={day.isoformat()}")
    expect(asha_page.get_by_role("heading", level=1)).to_have_text("Choose a new time")
    expect(asha_page.locator("[data-mm-live-slots]")).to_have_attribute("data-mm-live", "open")
    slots_before = asha_page.locator("button.mm-slot").count()
    taken_value = asha_page.locator("button.mm-slot").nth(1).get_attribute("value")
    taken_label = asha_page.locator("button.mm-slot").nth(1).locator(".mm-slot-time").inner_text()
    asha_page.locator(f"button.mm-slot[value='{taken_value}']").hover()

    # When Rahul holds that time
    rahul_page.locator(f"button.mm-slot[value='{taken_value}']").click()
    expect(rahul_page.get_by_role("heading", level=1)).to_have_text("Complete your booking")

    # Then it disappears from Asha's reschedule page within a second, and she is told why
    expect(asha_page.locator(f"button.mm-slot[value='{taken_value}']")).to_have_count(0, timeout=1000)
    expect(asha_page.locator("[data-mm-slot-gone]")).to_have_text(
        f"The time you were looking at, {taken_label}, has just been taken by someone else. Please choose another time.", timeout=1000
    )
    expect(asha_page.locator("button.mm-slot")).to_have_count(slots_before - 1, timeout=2000)
    shot(asha_page, "live-reschedule", step=11)

    # And she can still move her appointment to another time shown
    moved_to = asha_page.locator("button.mm-slot").nth(3).get_attribute("value")
    asha_page.locator(f"button.mm-slot[value='{moved_to}']").click()
    expect(asha_page.get_by_role("heading", level=1)).not_to_have_text("Choose a new time")
    appointment.refresh_from_db()
    assert (appointment.start, appointment.reschedule_count) == (datetime.fromisoformat(moved_to), 1)
    assert errors == []
