from datetime import timedelta

import pytest
from django.utils import timezone
from playwright.sync_api import Page

from accounts.tests.factories import UserFactory
from appointments import selectors, services
from appointments.tests.test_e2e import PASSWORD, book_paid, cardiologist, sign_in

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

def snap(page, name, width=1280):
    page.set_viewport_size({"width": width, "height": 800})
    page.evaluate("() => { document.activeElement?.blur(); window.scrollTo(0, 0); }")
    page.screenshot(path=f"/tmp/look-{name}.png", full_page=True)

def test_look(live_server, page: Page):
    errors = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    doctor = cardiologist(weekdays=range(6))
    patient = UserFactory(email="p@example.com", first_name="Asha", last_name="Verma", password=PASSWORD, timezone="Europe/London")
    service = doctor.services.get(name="Video consultation")
    slots = selectors.free_slots(doctor=doctor, service=service, window_start=timezone.now() + timedelta(days=3), window_end=timezone.now() + timedelta(days=4))
    appt = book_paid(doctor, patient, slots[4].start)
    hold = services.appointment_hold(patient=patient, service=doctor.services.get(name="Follow-up consultation"), start=selectors.free_slots(doctor=doctor, service=doctor.services.get(name="Follow-up consultation"), window_start=timezone.now() + timedelta(days=5), window_end=timezone.now() + timedelta(days=6))[0].start)
    services.appointment_confirm_details(appointment=hold, patient=patient, reason="Check")
    sign_in(page, live_server.url, "p@example.com")
    page.goto(f"{live_server.url}/appointments/{hold.public_id}/")
    snap(page, "pending")
    page.goto(f"{live_server.url}/appointments/{appt.public_id}/cancel/")
    snap(page, "cancel")
    page.goto(f"{live_server.url}/appointments/{appt.public_id}/reschedule/")
    snap(page, "reschedule")
    page.goto(f"{live_server.url}/doctors/{doctor.slug}/book/?service={service.public_id}")
    snap(page, "book-mobile", 390)
    page.goto(f"{live_server.url}/appointments/")
    snap(page, "list-mobile", 390)
    page.goto(f"{live_server.url}/doctors/{doctor.slug}/")
    snap(page, "doctor-detail")
    page.context.clear_cookies()
    sign_in(page, live_server.url, "priya.raman@example.com")
    page.goto(f"{live_server.url}/appointments/{appt.public_id}/")
    snap(page, "doctor-view")
    page.goto(f"{live_server.url}/appointments/")
    snap(page, "doctor-list")
    page.goto(f"{live_server.url}/portal/availability/")
    snap(page, "avail-mobile", 390)
    page.goto(f"{live_server.url}/portal/schedule/?week={(timezone.now()+timedelta(days=3)).date().isoformat()}")
    snap(page, "schedule-mobile", 390)
    print("ERRORS", errors)
