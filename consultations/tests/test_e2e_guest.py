"""A guest in a real browser: the patient invites an interpreter from the room, the interpreter
opens the one-time link in a browser of their own (no account), the doctor admits them, and the
three of them form a mesh — every pair's RTCPeerConnection connects and decodes video.

Served by a real Daphne (``asgi_live_server``); writes docs/screenshots/step5-guest-*.png and
fails on any browser console error.
"""

from __future__ import annotations

from collections.abc import Iterator
from urllib.parse import urlsplit

import pytest
from playwright.sync_api import Browser, Page, expect

from appointments.tests.test_e2e import shot, sign_in
from consultations.models import GuestInvite, Participation
from consultations.tests.test_e2e import DESKTOP, appointment_starting_soon
from medimeet.core.tests.browser import Person

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def three(media_browser: Browser) -> Iterator[dict[str, Person]]:
    contexts = [media_browser.new_context(viewport=DESKTOP, locale="en-GB", timezone_id="Europe/London") for _ in range(3)]
    for context in contexts:
        context.set_default_timeout(20_000)
    yield {"doctor": Person(contexts[0]), "patient": Person(contexts[1]), "guest": Person(contexts[2])}
    for context in contexts:
        context.close()


def decodes_video_from(page: Page, participant: str) -> None:
    page.wait_for_function(
        """async (id) => {
            const pc = window.mmConsultation.peer(id);
            if (!pc || pc.connectionState !== "connected") return false;
            let frames = 0;
            (await pc.getStats()).forEach((s) => { if (s.type === "inbound-rtp" && s.kind === "video") frames += s.framesDecoded || 0; });
            return frames > 0;
        }""",
        arg=participant,
    )


def test_the_patient_invites_an_interpreter_whom_the_doctor_admits_into_a_three_way_call(asgi_live_server, three):
    appointment = appointment_starting_soon()
    room = appointment.consultation.room
    doctor, patient, guest = three["doctor"], three["patient"], three["guest"]

    # Given the doctor and the patient in the call
    sign_in(doctor.page, asgi_live_server, "priya.raman@example.com")
    doctor.page.goto(f"{asgi_live_server}/consultations/{room}/")
    doctor.page.get_by_role("button", name="Join consultation").click()
    expect(doctor.page.locator("#mm-consultation")).to_have_attribute("data-call-state", "admitted")
    sign_in(patient.page, asgi_live_server, "asha.verma@example.com")
    patient.page.goto(f"{asgi_live_server}/consultations/{room}/")
    patient.page.get_by_role("button", name="Join consultation").click()
    doctor.page.get_by_role("button", name="Admit Asha Verma").click()
    expect(patient.page.locator("#mm-consultation")).to_have_attribute("data-peer-state", "connected")

    # When the patient invites an interpreter from the room
    patient.page.get_by_role("button", name="Invite a guest").click()
    patient.page.get_by_label("Their name").fill("Ravi Menon")
    patient.page.get_by_label("Who they are").select_option("interpreter")
    patient.page.get_by_role("button", name="Create the link").click()
    link_field = patient.page.get_by_label("Invitation link")
    expect(link_field).to_be_visible()
    link = link_field.input_value()
    expect(patient.page.locator("[data-mm-guest-current]")).to_contain_text("Ravi Menon · Interpreter · link not used yet")
    shot(patient.page, "guest-invite", step=5)

    # Then the interpreter opens it in their own browser, without an account, and waits
    assert GuestInvite.objects.get().used_at is None
    guest.page.goto(asgi_live_server + urlsplit(link).path)  # SITE_URL's host, this server's port
    expect(guest.page.get_by_test_id("guest-invitation")).to_contain_text("Hello Ravi Menon")
    expect(guest.page.get_by_test_id("guest-invitation")).to_contain_text("Dr. Priya Raman")
    shot(guest.page, "guest-invitation", step=5)
    guest.page.get_by_role("button", name="Join the consultation").click()
    expect(guest.page.get_by_role("heading", level=1)).to_have_text("Consultation with Dr. Priya Raman")
    guest.page.get_by_role("button", name="Join consultation").click()
    expect(guest.page.locator("#mm-consultation")).to_have_attribute("data-call-state", "waiting")

    # When the doctor admits them
    waiting = doctor.page.locator("[data-mm-people] li[data-state='waiting']")
    expect(waiting).to_contain_text("Ravi Menon")
    expect(waiting).to_contain_text("Interpreter")
    doctor.page.get_by_role("button", name="Admit Ravi Menon").click()

    # Then every pair of the three is connected and decodes the other's video
    ids = dict(Participation.objects.values_list("role", "public_id"))
    ids = {role: str(value) for role, value in ids.items()}
    expect(guest.page.locator("#mm-consultation")).to_have_attribute("data-peer-state", "connected")
    for page, me in ((doctor.page, "doctor"), (patient.page, "patient"), (guest.page, "guest")):
        for other in ("doctor", "patient", "guest"):
            if other != me:
                decodes_video_from(page, ids[other])
    expect(doctor.page.locator(f".mm-guest-tile[data-participant='{ids['guest']}']")).to_have_attribute("data-remote-video", "playing")
    expect(guest.page.locator(f".mm-guest-tile[data-participant='{ids['patient']}']")).to_have_attribute("data-peer-state", "connected")
    expect(doctor.page.locator("[data-mm-people] li[data-state='admitted']")).to_have_count(3)
    expect(patient.page.locator("[data-mm-guest-current]")).to_contain_text("link used")
    shot(doctor.page, "guest-three-way", step=5)

    # And the guest's chat reaches both, and theirs reaches the guest
    guest.page.get_by_label("Message to the call").fill("Hello, I will translate.")
    guest.page.get_by_label("Message to the call").press("Enter")
    expect(doctor.page.locator(".mm-chat-message").last).to_contain_text("Hello, I will translate.")
    expect(patient.page.locator(".mm-chat-message").last).to_contain_text("Ravi Menon")

    for person in (doctor, patient, guest):
        assert person.errors == []
