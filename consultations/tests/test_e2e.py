"""Step 5 in a real browser: a doctor and a patient (two browser contexts with a generated camera
and microphone) meet in the video room. The patient waits, the doctor admits them, the video
flows both ways over a real RTCPeerConnection, they chat, and the doctor ends the consultation;
the database then holds the evidence (start, end, who was connected how long) and the
appointment is completed. Also the pre-meeting check page.

Served by a real Daphne (``asgi_live_server``): pages and websockets from one origin, as in
production. The tests write docs/screenshots/step5-*.png and fail on any browser console error.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

import pytest
from django.utils import timezone
from playwright.sync_api import Browser, expect

from accounts.tests.factories import UserFactory
from appointments.models import Appointment
from appointments.tests.test_e2e import PASSWORD, cardiologist, shot, sign_in
from consultations.models import Consultation, Participation
from consultations.services import consultation_ensure
from medimeet.core.tests.browser import Person, expect_call_connected
from medimeet.core.tests.layers import unreachable_channel_layers

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

DESKTOP = {"width": 1280, "height": 860}


@pytest.fixture
def people(media_browser: Browser) -> Iterator[dict[str, Person]]:
    contexts = [media_browser.new_context(viewport=DESKTOP, locale="en-GB", timezone_id="Europe/London") for _ in range(2)]
    for context in contexts:
        context.set_default_timeout(15_000)
    yield {"doctor": Person(contexts[0]), "patient": Person(contexts[1])}
    for context in contexts:
        context.close()


def appointment_starting_soon(minutes: int = 5) -> Appointment:
    """A confirmed video consultation of Dr. Priya Raman with Asha Verma, starting in a few
    minutes (its room is open), made directly: booking rules (notice, opening hours) are not
    what this test is about."""
    doctor = cardiologist()
    patient = UserFactory(email="asha.verma@example.com", first_name="Asha", last_name="Verma", password=PASSWORD, timezone="Europe/London")
    service = doctor.services.get(name="Video consultation")
    start = (timezone.now() + timedelta(minutes=minutes)).replace(second=0, microsecond=0)
    end = start + timedelta(minutes=service.duration_minutes)
    appointment = Appointment.objects.create(
        doctor=doctor, patient=patient, service=service, start=start, end=end, blocked_start=start, blocked_end=end,
        status=Appointment.Status.CONFIRMED, price_minor=service.price_minor, currency=service.currency, reason="Palpitations after exercise",
    )  # fmt: skip
    consultation_ensure(appointment=appointment)
    return appointment


def test_doctor_admits_the_patient_they_talk_and_the_doctor_ends_the_consultation(asgi_live_server, people):
    appointment = appointment_starting_soon()
    consultation = appointment.consultation
    doctor, patient = people["doctor"], people["patient"]

    # Given the patient on their appointment page, inside the join window
    sign_in(patient.page, asgi_live_server, "asha.verma@example.com")
    patient.page.goto(f"{asgi_live_server}/appointments/{appointment.public_id}/")
    expect(patient.page.get_by_test_id("join-card")).to_contain_text("The room is open.")

    # When they join the video consultation
    patient.page.get_by_role("link", name="Join video consultation").click()
    expect(patient.page.get_by_role("heading", level=1)).to_have_text("Consultation with Dr. Priya Raman")
    room = patient.page.locator("#mm-consultation")
    patient.page.get_by_role("button", name="Join consultation").click()

    # Then they wait for the doctor, with their own picture showing
    expect(room).to_have_attribute("data-call-state", "waiting")
    expect(room).to_have_attribute("data-socket-state", "open")
    expect(patient.page.locator("[data-mm-stage-message]")).to_have_text("Waiting for Dr. Priya Raman to let you in")
    expect(patient.page.locator("[data-mm-connection]")).to_have_text("In the waiting room")
    expect(patient.page.get_by_label("Message to Dr. Priya Raman")).to_be_disabled()
    shot(patient.page, "waiting-room", step=5)

    # When the doctor joins, they see the patient waiting and admit them
    sign_in(doctor.page, asgi_live_server, "priya.raman@example.com")
    doctor.page.goto(f"{asgi_live_server}/consultations/{consultation.room}/")
    doctor_room = doctor.page.locator("#mm-consultation")
    doctor.page.get_by_role("button", name="Join consultation").click()
    expect(doctor_room).to_have_attribute("data-call-state", "admitted")
    waiting = doctor.page.locator("[data-mm-people] li[data-state='waiting']")
    expect(waiting).to_contain_text("Asha Verma")
    expect(waiting).to_contain_text("In the waiting room")
    expect(doctor.page.locator("[data-mm-stage-message]")).to_have_text("Asha Verma is in the waiting room")
    shot(doctor.page, "doctor-admits", step=5)
    doctor.page.get_by_role("button", name="Admit Asha Verma").click()

    # Then both peer connections connect and each side decodes the other's video
    expect_call_connected(patient.page, "Dr. Priya Raman")
    expect_call_connected(doctor.page, "Asha Verma")
    expect(doctor.page.locator("[data-mm-people] li[data-state='admitted']")).to_have_count(2)

    # When they chat, each message reaches both sides
    patient.page.get_by_label("Message to Dr. Priya Raman").fill("Hello doctor, I can see and hear you.")
    patient.page.get_by_role("button", name="Send").click()
    expect(doctor.page.locator(".mm-chat-message").last).to_contain_text("Asha Verma")
    expect(doctor.page.locator(".mm-chat-message").last).to_contain_text("Hello doctor, I can see and hear you.")
    doctor.page.get_by_label("Message to Asha Verma").fill("Good. Tell me about the palpitations.")
    doctor.page.get_by_label("Message to Asha Verma").press("Enter")
    expect(patient.page.locator(".mm-chat-message").last).to_contain_text("Dr. Priya Raman")
    expect(patient.page.locator(".mm-chat-message").last).to_contain_text("Good. Tell me about the palpitations.")
    expect(patient.page.locator(".mm-chat-message.is-mine .mm-chat-name")).to_have_text("You")
    expect(patient.page.locator(".mm-chat-message.is-mine .mm-chat-body")).to_have_text("Hello doctor, I can see and hear you.")

    # And when the patient mutes their microphone, the doctor sees it
    patient.page.get_by_role("button", name="Mute your microphone").click()
    expect(patient.page.get_by_role("button", name="Unmute your microphone")).to_be_visible()
    expect(doctor.page.locator("[data-mm-people] li", has_text="Asha Verma")).to_contain_text("microphone off")
    expect(doctor.page.locator("[data-mm-remote-muted]")).to_be_visible()
    patient.page.get_by_role("button", name="Unmute your microphone").click()
    expect(doctor.page.locator("[data-mm-remote-muted]")).to_be_hidden()
    shot(doctor.page, "in-call-doctor", step=5)
    shot(patient.page, "in-call", step=5)

    # When the doctor ends the consultation for everyone
    doctor.page.get_by_role("button", name="End for everyone").click()
    doctor.page.get_by_role("button", name="End consultation").click()

    # Then both see that it ended, and nobody's camera stays on
    for page in (doctor.page, patient.page):
        expect(page.locator("#mm-consultation")).to_have_attribute("data-call-state", "ended")
        expect(page.get_by_role("heading", name="The consultation has ended")).to_be_visible()
        expect(page.locator("#mm-consultation")).to_have_attribute("data-socket-state", "closed")
    expect(patient.page.locator("[data-mm-ended-text]")).to_have_text(
        "Dr. Priya Raman ended the consultation. Notes and follow-ups appear on the appointment page."
    )
    shot(patient.page, "ended", step=5)

    # And the database holds the evidence
    for _ in range(50):  # the server records a departure when the socket closes
        if not Participation.objects.filter(consultation=consultation, sockets__gt=0).exists():
            break
        doctor.page.wait_for_timeout(100)
    consultation = Consultation.objects.get(pk=consultation.pk)
    assert consultation.status == Consultation.Status.ENDED
    assert consultation.started_at is not None and consultation.ended_at is not None
    assert consultation.started_at <= consultation.ended_at
    assert consultation.ended_by_id == appointment.doctor.user_id
    participations = {p.role: p for p in Participation.objects.filter(consultation=consultation)}
    assert set(participations) == {"doctor", "patient"}
    for participation in participations.values():
        assert participation.first_joined_at is not None
        assert participation.admitted_at is not None
        assert participation.sockets == 0
        assert participation.seconds_connected >= 1
        assert participation.first_joined_at <= consultation.ended_at
    assert participations["patient"].first_joined_at < participations["doctor"].first_joined_at  # the patient waited
    assert list(consultation.chat_messages.values_list("body", flat=True)) == ["Hello doctor, I can see and hear you.", "Good. Tell me about the palpitations."]
    appointment.refresh_from_db()
    assert appointment.status == Appointment.Status.COMPLETED

    # And the room page now says so
    patient.page.goto(f"{asgi_live_server}/consultations/{consultation.room}/")
    expect(patient.page.get_by_role("heading", name="This consultation has ended")).to_be_visible()

    assert doctor.errors == [] and patient.errors == []


def test_check_page_tests_camera_microphone_speakers_and_network(asgi_live_server, people):
    appointment = appointment_starting_soon(minutes=90)  # the room is not open yet
    patient = people["patient"]
    sign_in(patient.page, asgi_live_server, "asha.verma@example.com")

    # Given the patient follows "Test your camera and microphone" from their appointment
    patient.page.goto(f"{asgi_live_server}/appointments/{appointment.public_id}/")
    expect(patient.page.get_by_test_id("join-opens")).to_contain_text("The room opens on")
    expect(patient.page.get_by_role("button", name="Join video consultation")).to_be_disabled()
    patient.page.get_by_role("link", name="Test your camera and microphone").click()

    # Then camera, microphone, the server and a route for the video pass; the speakers wait for them
    check = patient.page.locator("#mm-check")
    expect(check).to_have_attribute("data-check-state", "done")
    for key in ("camera", "microphone", "server", "network"):
        expect(check.locator(f"[data-check='{key}']")).to_have_attribute("data-status", "pass")
    expect(check.locator("[data-check='server'] [data-mm-check-detail]")).to_contain_text(" ms round trip")
    expect(check.locator("[data-check='network'] [data-mm-check-detail]")).to_contain_text("local ×")
    expect(check.locator("[data-check='speaker']")).to_have_attribute("data-status", "todo")
    expect(patient.page.locator("[data-mm-check-summary]")).to_have_text("Almost done: play the test sound to check your speakers.")

    # When they play the test sound and say they heard it
    patient.page.get_by_role("button", name="Play test sound").click()
    patient.page.get_by_role("button", name="Yes, I heard it").click()

    # Then everything is ready, and the generated microphone moves the level meter
    expect(check.locator("[data-check='speaker']")).to_have_attribute("data-status", "pass")
    expect(patient.page.locator("[data-mm-check-summary]")).to_have_text("Everything is ready for your consultation.")
    patient.page.wait_for_function("() => Number(document.querySelector('[data-mm-level]').getAttribute('aria-valuenow')) > 0")
    shot(patient.page, "check", step=5)
    assert patient.errors == []


@pytest.fixture
def channel_layer_down(settings):
    """Redis, the channel layer, is not there (a port where nothing listens). Requested before
    ``asgi_live_server``: the server process starts with these settings."""
    settings.CHANNEL_LAYERS = unreachable_channel_layers()


def test_with_the_live_service_down_the_room_says_so_and_keeps_retrying(channel_layer_down, asgi_live_server, people):
    appointment = appointment_starting_soon()
    patient = people["patient"]
    sign_in(patient.page, asgi_live_server, "asha.verma@example.com")
    patient.page.goto(f"{asgi_live_server}/consultations/{appointment.consultation.room}/")
    room = patient.page.locator("#mm-consultation")

    patient.page.get_by_role("button", name="Join consultation").click()

    # The socket is refused with 4503 (not a refusal to this person): the page says why and retries
    expect(room).to_have_attribute("data-socket-state", "reconnecting")
    expect(patient.page.locator("[data-mm-connection]")).to_have_text("The live connection service is unavailable right now, retrying…")
    expect(patient.page.get_by_role("heading", name="You cannot join right now")).to_have_count(0)
    shot(patient.page, "live-service-unavailable", step=10)
