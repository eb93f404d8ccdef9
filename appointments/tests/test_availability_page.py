"""The booking page's side of live availability: the socket it names, the slot-picker fragment
its script re-renders from, and what publishing costs the requests that change free time."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from accounts.tests.factories import UserFactory
from appointments import services
from appointments.availability_events import _PendingEvent
from appointments.tests import test_pages as pages
from appointments.tests.test_pages import SLOT, book_url, hold_for, slot_values

pytestmark = pytest.mark.django_db

# The booking pages' cast and clock (a Monday, 07:00 UTC).
clinic, patient, frozen_time = pages.clinic, pages.patient, pages.frozen_time


def test_the_booking_page_subscribes_to_its_doctor_when_live_availability_is_on(client, clinic, patient, settings):
    settings.LIVE_AVAILABILITY_ON_PAGES = True
    client.force_login(patient)

    page = client.get(book_url(clinic)).content.decode()

    assert f'data-mm-socket="/ws/doctors/{clinic["doctor"].slug}/availability/"' in page
    assert f'data-mm-refresh="/doctors/{clinic["doctor"].slug}/book/?service={clinic["service"].public_id}&amp;date=2026-11-02"' in page
    assert 'data-mm-duration="30"' in page
    assert 'data-mm-window-start="2026-11-02T00:00:00+00:00"' in page and 'data-mm-window-end="2026-11-16T00:00:00+00:00"' in page
    assert "js/availability.js" in page


def test_without_live_availability_the_page_loads_no_socket_script(client, clinic, patient, settings):
    settings.LIVE_AVAILABILITY_ON_PAGES = False
    client.force_login(patient)

    assert "js/availability.js" not in client.get(book_url(clinic)).content.decode()


def test_the_slot_picker_fragment_is_the_day_strip_and_the_days_times_only(client, clinic, patient):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    hold_for(clinic, UserFactory(), start=datetime(2026, 11, 2, 9, 30, tzinfo=UTC))
    client.force_login(patient)
    with CaptureQueriesContext(connection) as page_queries:
        full = client.get(book_url(clinic))

    with CaptureQueriesContext(connection) as fragment_queries:
        fragment = client.get(book_url(clinic), headers={"X-MediMeet-Fragment": "slot-picker"})

    html = fragment.content.decode()
    assert fragment.status_code == 200
    assert "<html" not in html and "mm-day-strip" in html and "slots-title" in html
    assert slot_values(fragment) == slot_values(full) == ["2026-11-02T09:00:00+00:00", "2026-11-02T10:00:00+00:00", "2026-11-02T10:30:00+00:00"]
    assert fragment["Cache-Control"].startswith("max-age=0")
    assert len(fragment_queries) < len(page_queries)


def test_anonymous_visitors_and_doctors_get_no_fragment(client, clinic):
    anonymous = client.get(book_url(clinic), headers={"X-MediMeet-Fragment": "slot-picker"})
    client.force_login(clinic["doctor"].user)
    doctor = client.get(book_url(clinic), headers={"X-MediMeet-Fragment": "slot-picker"})

    assert anonymous.status_code == 302 and "/accounts/login/" in anonymous["Location"]
    assert doctor.status_code == 302


def test_publishing_costs_no_query_after_a_hold_or_a_cancellation(clinic, patient, django_capture_on_commit_callbacks, django_assert_num_queries):
    # One transaction (the test's): the cancellation joins the hold's pending event, as any two
    # changes of one doctor in one transaction do.
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        hold = services.appointment_hold(patient=patient, service=clinic["service"], start=SLOT)
        services.appointment_cancel(appointment=hold, by=patient, reason="Changed my mind")

    (event,) = [c for c in callbacks if isinstance(c, _PendingEvent)]
    with django_assert_num_queries(0):  # the schedule came with the hold (locked) and the cancellation (its policy)
        event()
    assert [c.state for c in event.changes] == ["held", "freed"]


def test_the_reschedule_page_is_live_too_and_its_fragment_keeps_the_appointments_own_time_free(client, clinic, patient, settings):
    settings.LIVE_AVAILABILITY_ON_PAGES = True
    appointment = pages.confirmed(clinic, patient, start=SLOT + timedelta(days=1))
    hold_for(clinic, UserFactory(), start=datetime(2026, 11, 3, 10, 0, tzinfo=UTC))
    client.force_login(patient)
    url = f"/appointments/{appointment.public_id}/reschedule/?date=2026-11-03"

    page = client.get(url)
    fragment = client.get(url, headers={"X-MediMeet-Fragment": "slot-picker"})

    html = page.content.decode()
    assert f'data-mm-socket="/ws/doctors/{clinic["doctor"].slug}/availability/"' in html and "js/availability.js" in html
    assert f'data-mm-refresh="/appointments/{appointment.public_id}/reschedule/?date=2026-11-03"' in html
    assert "<html" not in fragment.content.decode() and "mm-day-strip" in fragment.content.decode()
    # Its own time (09:00 on the 3rd) is offered, the other patient's hold (10:00) is not.
    assert slot_values(fragment) == slot_values(page) == ["2026-11-03T09:00:00+00:00", "2026-11-03T09:30:00+00:00", "2026-11-03T10:30:00+00:00"]


def test_another_patients_reschedule_fragment_is_404(client, clinic, patient):
    appointment = pages.confirmed(clinic, patient)
    client.force_login(UserFactory())

    response = client.get(f"/appointments/{appointment.public_id}/reschedule/", headers={"X-MediMeet-Fragment": "slot-picker"})

    assert response.status_code == 404


def test_the_doctors_book_a_patient_page_is_live_and_its_fragment_keeps_the_patient_and_service(client, clinic, patient, settings):
    from appointments.models import Appointment, DoctorSchedule

    settings.LIVE_AVAILABILITY_ON_PAGES = True
    earlier = pages.confirmed(clinic, patient, start=SLOT + timedelta(days=3))
    Appointment.objects.filter(pk=earlier.pk).update(status="completed")
    DoctorSchedule.objects.filter(doctor=clinic["doctor"]).update(min_notice_minutes=180)  # 09:00 today is inside it
    client.force_login(clinic["doctor"].user)
    query = f"patient={patient.email}&service={clinic['service'].public_id}"

    page = client.get(f"/portal/book-patient/?{query}")
    fragment = client.get(f"/portal/book-patient/?{query}&date=2026-11-02", headers={"X-MediMeet-Fragment": "slot-picker"})

    html = page.content.decode()
    assert "js/availability.js" in html
    assert f'data-mm-refresh="/portal/book-patient/?patient={patient.email.replace("@", "%40")}&amp;service={clinic["service"].public_id}&amp;date=2026-11-02"' in html
    assert "<html" not in fragment.content.decode()
    assert SLOT.isoformat() in slot_values(fragment)  # inside the doctor's own notice: the doctor may book it
    assert f'href="?patient={patient.email.replace("@", "%40")}&amp;service={clinic["service"].public_id}&amp;date=' in fragment.content.decode()
