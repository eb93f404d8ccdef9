"""Recording with consent in a real two-browser call (Daphne, Chromium with a generated camera and
microphone): the doctor asks, the patient agrees, the doctor's browser records the call for a few
seconds with MediaRecorder and uploads it; the doctor stops it; the download is a WebM file, and a
shared link downloads it without signing in. Writes docs/screenshots/step5-recording.png."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Browser, expect

from appointments.tests.test_e2e import shot, sign_in
from consultations.models import Recording, RecordingConsent
from consultations.tests import test_e2e as call
from consultations.tests.test_e2e import DESKTOP, appointment_starting_soon

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]
people = call.people  # the two browser contexts of the call (fixture)

EBML_MAGIC = bytes.fromhex("1a45dfa3")


def test_both_consent_the_doctor_records_stops_and_the_recording_downloads(asgi_live_server, people, media_browser: Browser):
    appointment = appointment_starting_soon()
    room_url = f"{asgi_live_server}/consultations/{appointment.consultation.room}/"
    doctor, patient = people["doctor"], people["patient"]

    # Given the doctor and the patient in a connected call
    sign_in(doctor.page, asgi_live_server, "priya.raman@example.com")
    sign_in(patient.page, asgi_live_server, "asha.verma@example.com")
    for person in (doctor, patient):
        person.page.goto(room_url)
        expect(person.page.get_by_label("Record this consultation")).to_be_disabled()  # not before joining
        person.page.get_by_role("button", name="Join consultation").click()
    doctor.page.get_by_role("button", name="Admit Asha Verma").click()
    for person in (doctor, patient):
        expect(person.page.locator("#mm-consultation")).to_have_attribute("data-peer-state", "connected")
        expect(person.page.locator("#mm-consultation")).to_have_attribute("data-remote-video", "playing")
    doctor_panel, patient_panel = doctor.page.locator("[data-mm-recording]"), patient.page.locator("[data-mm-recording]")
    expect(doctor_panel).to_contain_text("Recording is off. It starts only when you and the patient both turn it on.")

    # When the doctor turns Record on, the patient is asked and nothing records yet
    doctor.page.get_by_label("Record this consultation").check()
    expect(doctor_panel).to_have_attribute("data-state", "waiting")
    expect(doctor_panel).to_contain_text("Waiting for the patient's consent")
    expect(patient_panel).to_have_attribute("data-state", "asked")
    expect(patient_panel).to_contain_text("The doctor would like to record this consultation. Turn on Record if you agree.")
    assert Recording.objects.count() == 0

    # And when the patient agrees, the doctor's browser records, and both see it
    patient.page.get_by_label("Record this consultation").check()
    for person in (doctor, patient):
        expect(person.page.locator("[data-mm-recording]")).to_have_attribute("data-state", "recording")
        expect(person.page.locator("[data-mm-record-badge]")).to_be_visible()
        expect(person.page.locator("[data-mm-record-status]")).to_contain_text("Recording ●")
    doctor.page.wait_for_timeout(6_500)  # a real recording takes real time: two 3 s slices and a bit
    shot(doctor.page, "recording", step=5)

    # When the doctor turns Record off
    doctor.page.get_by_label("Record this consultation").uncheck()

    # Then the recording is finished and saved, whole, and nobody is asked to record any more
    expect(doctor_panel).to_have_attribute("data-state", "saved")
    expect(doctor_panel).to_contain_text("Recording stopped and saved.")
    expect(patient.page.locator("[data-mm-record-badge]")).to_be_hidden()
    recording = Recording.objects.get()
    assert recording.status == Recording.Status.COMPLETE
    assert recording.chunk_count >= 2 and recording.bytes > 10_000
    assert recording.mime_type.startswith("video/webm")
    assert list(RecordingConsent.objects.values_list("role", "consent")) == [("doctor", True), ("patient", True), ("doctor", False)]

    # And the download is a WebM file (EBML magic) of exactly the recorded size
    download = doctor.page.request.get(f"{asgi_live_server}/api/v1/recordings/{recording.public_id}/download/")
    body = download.body()
    assert download.status == 200 and download.headers["content-type"].startswith("video/webm")
    assert body[:4] == EBML_MAGIC and len(body) == recording.bytes

    # And on the appointment page the patient finds it and shares a link that works without signing in
    patient.page.goto(f"{asgi_live_server}/appointments/{appointment.public_id}/")
    card = patient.page.get_by_test_id("recordings")
    expect(card.locator("[data-status='complete']")).to_contain_text("Complete")
    expect(card.get_by_role("link", name="Download")).to_be_visible()
    card.get_by_role("button", name="Copy share link").click()
    link = card.locator("[data-mm-share-url]")
    expect(link).to_have_value(re.compile("^" + re.escape(f"{asgi_live_server}/recordings/shared/")))
    shot(patient.page, "recordings", step=5)
    anonymous = media_browser.new_context(viewport=DESKTOP)
    try:
        shared = anonymous.request.get(link.input_value())
        assert shared.status == 200 and shared.body() == body
    finally:
        anonymous.close()
    for person in (doctor, patient):
        assert person.errors == []
