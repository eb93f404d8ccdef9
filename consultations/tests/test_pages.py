"""The consultation pages (the video room and the pre-meeting check) and the join card on the
appointment page: who may open them, and what they say when the room cannot be joined."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, time, timedelta

import pytest
import time_machine

from accounts.tests.factories import UserFactory, staff_member
from appointments import services as appointment_services
from appointments.models import DoctorSchedule, WeeklyHours
from consultations.models import Consultation, Participation, PresenceEvent
from doctors.tests.factories import DoctorProfileFactory, ServiceFactory
from medimeet.core import roles

pytestmark = pytest.mark.django_db

BOOKED_AT = datetime(2026, 11, 2, 7, 0, tzinfo=UTC)
SLOT = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)  # 09:00–09:30: the room is open 08:45–10:00
INSIDE = SLOT - timedelta(minutes=5)


@pytest.fixture
def clock():
    with time_machine.travel(BOOKED_AT, tick=False) as traveller:
        yield traveller


@pytest.fixture
def doctor():
    doctor = DoctorProfileFactory(user__first_name="Priya", user__last_name="Raman", title="Dr.")
    schedule = DoctorSchedule.objects.create(
        doctor=doctor, timezone="UTC", buffer_before_minutes=0, buffer_after_minutes=0, min_notice_minutes=60, max_days_ahead=30
    )
    WeeklyHours.objects.bulk_create([WeeklyHours(schedule=schedule, weekday=d, start_time=time(9), end_time=time(11)) for d in range(7)])
    return doctor


@pytest.fixture
def patient():
    return UserFactory(first_name="Asha", last_name="Verma", timezone="UTC")


@pytest.fixture
def consultation(clock, doctor, patient) -> Consultation:
    service = ServiceFactory(doctor=doctor, name="Video consultation", duration_minutes=30, price_minor=50000)
    hold = appointment_services.appointment_hold(patient=patient, service=service, start=SLOT)
    booked = appointment_services.appointment_confirm_details(appointment=hold, patient=patient, reason="Persistent cough")
    appointment = appointment_services.appointment_mark_paid(appointment=booked)
    return Consultation.objects.get(appointment=appointment)


def staff():
    """Support staff (their role covers consultations), with the second factor staff need."""
    return staff_member(roles.SUPPORT)


def room_url(consultation: Consultation) -> str:
    return f"/consultations/{consultation.room}/"


def check_url(consultation: Consultation) -> str:
    return f"/consultations/{consultation.room}/check/"


def html(response) -> str:
    return response.content.decode()


# --- Who may open the pages --------------------------------------------------------------------


@pytest.mark.parametrize("who", ["patient", "doctor"])
def test_doctor_and_patient_get_the_call_inside_the_join_window(client, clock, consultation, doctor, patient, who):
    clock.move_to(INSIDE)
    client.force_login(patient if who == "patient" else doctor.user)

    response = client.get(room_url(consultation))

    assert response.status_code == 200
    page = html(response)
    assert f'data-role="{who}"' in page
    assert f'data-socket-path="/ws/consultations/{consultation.room}/"' in page
    assert "Consultation with " + ("Dr. Priya Raman" if who == "patient" else "Asha Verma") in page
    assert ("End for everyone" in page, "data-mm-leave" in page) == ((True, False) if who == "doctor" else (False, True))
    assert 'data-testid="room-closed"' not in page
    assert response["Cache-Control"].startswith("max-age=0")


def test_opening_the_page_does_not_join_the_room(client, clock, consultation, patient):
    clock.move_to(INSIDE)
    client.force_login(patient)

    client.get(room_url(consultation))
    client.get(check_url(consultation))

    assert not Participation.objects.exists()
    assert not PresenceEvent.objects.exists()


@pytest.mark.parametrize("who", ["another patient", "another doctor", "staff"])
def test_anyone_else_gets_not_found(client, clock, consultation, who):
    clock.move_to(INSIDE)
    other = {"another patient": lambda: UserFactory(), "another doctor": lambda: DoctorProfileFactory().user, "staff": staff}[who]()
    client.force_login(other)

    assert client.get(room_url(consultation)).status_code == 404
    assert client.get(check_url(consultation)).status_code == 404
    assert not Participation.objects.exists()


def test_anonymous_is_sent_to_sign_in(client, clock, consultation):
    clock.move_to(INSIDE)

    response = client.get(room_url(consultation))

    assert response.status_code == 302
    assert response["Location"].startswith("/accounts/login/?next=/consultations/")


def test_unknown_room_is_not_found(client, clock, consultation, patient):
    client.force_login(patient)

    assert client.get("/consultations/" + "x" * 43 + "/").status_code == 404


# --- Rooms that cannot be joined now --------------------------------------------------------------


def test_before_the_window_the_room_says_when_it_opens_and_reloads_then(client, clock, consultation, patient):
    client.force_login(patient)  # 07:00, the room opens at 08:45

    page = html(client.get(room_url(consultation)))

    assert 'data-reason="WS_OUTSIDE_WINDOW"' in page
    assert "The room is not open yet" in page
    assert "It opens on Monday 2 November at 08:45, 15 minutes before the appointment." in page
    assert 'data-mm-reload-at="2026-11-02T08:45:00+00:00"' in page
    assert "Test your camera and microphone" in page
    assert 'id="mm-consultation"' not in page


def test_after_the_window_the_room_has_closed(client, clock, consultation, doctor):
    clock.move_to(SLOT + timedelta(minutes=61))  # grace ends at 10:00
    client.force_login(doctor.user)

    page = html(client.get(room_url(consultation)))

    assert "The consultation room has closed" in page
    assert "It closed at 10:00, 2 November." in page
    assert "data-mm-reload-at" not in page
    assert 'id="mm-consultation"' not in page


def test_a_cancelled_appointment_has_no_call(client, clock, consultation, patient):
    appointment_services.appointment_cancel(appointment=consultation.appointment, by=patient, reason="Feeling better")
    clock.move_to(INSIDE)
    client.force_login(patient)

    page = html(client.get(room_url(consultation)))

    assert 'data-reason="WS_NOT_ACTIVE"' in page
    assert "This appointment is cancelled" in page
    assert 'id="mm-consultation"' not in page


def test_an_ended_consultation_says_so(client, clock, consultation, doctor, patient):
    clock.move_to(INSIDE)
    Consultation.objects.filter(pk=consultation.pk).update(status=Consultation.Status.ENDED, started_at=INSIDE, ended_at=INSIDE + timedelta(minutes=20))
    client.force_login(patient)

    page = html(client.get(room_url(consultation)))

    assert "This consultation has ended" in page
    assert "It ended at 09:15 on 2 November 2026." in page
    assert 'id="mm-consultation"' not in page


# --- The check page ------------------------------------------------------------------------------


def test_check_page_works_before_the_room_opens(client, clock, consultation, patient, settings):
    settings.STUN_URLS = ["stun:stun.example.org:3478"]
    client.force_login(patient)

    page = html(client.get(check_url(consultation)))

    assert "Test your camera, microphone and connection" in page
    assert 'data-check-socket-path="/ws/network-check/"' in page
    servers = json.loads(re.search(r'<script id="mm-ice-servers" type="application/json">(.*?)</script>', page).group(1))
    assert servers == [{"urls": ["stun:stun.example.org:3478"]}]
    assert [m for m in re.findall(r'data-check="(\w+)"', page)] == ["camera", "microphone", "speaker", "server", "network"]
    assert "The room opens on Monday 2 November at 08:45" in page
    assert "Join the consultation" not in page


def test_check_page_links_to_the_open_room(client, clock, consultation, doctor):
    clock.move_to(INSIDE)
    client.force_login(doctor.user)

    page = html(client.get(check_url(consultation)))

    assert f'href="/consultations/{consultation.room}/"' in page
    assert "Join the consultation" in page


# --- The join card on the appointment page ----------------------------------------------------------


def detail_url(consultation: Consultation) -> str:
    return f"/appointments/{consultation.appointment.public_id}/"


def test_join_card_before_the_window_is_disabled_with_the_opening_time(client, clock, consultation, patient):
    client.force_login(patient)

    page = html(client.get(detail_url(consultation)))

    card = page[page.index('data-testid="join-card"') :]
    card = card[: card.index("</section>")]
    assert "The room opens on Monday 2 November at 08:45, 15 minutes before the start." in card
    assert re.search(r"<button[^>]*disabled[^>]*>.*Join video consultation", card, re.S)
    assert f'href="/consultations/{consultation.room}/check/">Test your camera and microphone' in card
    assert f'href="/consultations/{consultation.room}/"' not in card


@pytest.mark.parametrize("who", ["patient", "doctor"])
def test_join_card_inside_the_window_links_to_the_room(client, clock, consultation, doctor, patient, who):
    clock.move_to(INSIDE)
    client.force_login(patient if who == "patient" else doctor.user)

    page = html(client.get(detail_url(consultation)))

    assert f'href="/consultations/{consultation.room}/"' in page
    assert "Join video consultation" in page


def test_staff_and_cancelled_appointments_have_no_join_card(client, clock, consultation, patient):
    clock.move_to(INSIDE)
    client.force_login(staff())
    response = client.get(detail_url(consultation))
    assert response.status_code == 200
    assert 'data-testid="join-card"' not in html(response)

    appointment_services.appointment_cancel(appointment=consultation.appointment, by=patient, reason="Feeling better")
    client.force_login(patient)
    response = client.get(detail_url(consultation))
    assert response.status_code == 200
    assert 'data-testid="join-card"' not in html(response)
