"""The ``video-recording`` flag: off, the room page offers no recording, the recording API
refuses to start (FEAT_001), a running recording stops at its next chunk and consent cannot be
given (withdrawing still works); on (the default), all of it works as before."""

# ruff: noqa: F811  (fixtures imported from the module that defines them, then requested by name)
from __future__ import annotations

import pytest
from waffle.testutils import override_flag

from consultations.models import Recording, RecordingChunk, RecordingConsent
from consultations.services import recording_consent_set
from consultations.tests.test_pages import INSIDE, clock, consultation, doctor, patient, room_url  # noqa: F401 (fixtures)
from consultations.tests.test_recordings import EBML, WEBM, Room
from medimeet.core.errors import ApplicationError
from medimeet.core.flags import VIDEO_RECORDING

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize("on", [True, False])
def test_the_room_offers_recording_only_while_the_flag_is_on(client, clock, consultation, doctor, on):
    clock.move_to(INSIDE)
    client.force_login(doctor.user)

    with override_flag(VIDEO_RECORDING, active=on):
        page = client.get(room_url(consultation)).content.decode()

    assert ("data-mm-recording" in page, "data-recording-module=" in page, "Record this consultation" in page) == (on, on, on)


def test_the_recording_api_refuses_to_start_while_the_flag_is_off():
    room = Room()

    with override_flag(VIDEO_RECORDING, active=False):
        refused = room.start()
    allowed = room.start()

    assert refused.status_code == 403
    assert refused.json()["error"]["code"] == "FEAT_001"
    assert allowed.status_code == 201
    assert Recording.objects.count() == 1


def test_turning_the_flag_off_stops_a_running_recording_at_its_next_chunk_and_keeps_what_was_stored(django_capture_on_commit_callbacks):
    room = Room()
    recording_id = room.start().json()["id"]
    assert room.put(recording_id, 0, EBML + b"cluster zero").status_code == 201

    with override_flag(VIDEO_RECORDING, active=False):
        with django_capture_on_commit_callbacks() as told:
            refused = room.put(recording_id, 1, b"cluster one")
    after = room.put(recording_id, 1, b"cluster one")

    recording = Recording.objects.get()
    assert (refused.status_code, refused.json()["error"]["code"]) == (403, "FEAT_001")
    assert after.json()["error"]["code"] == "CONS_015"  # stopped: turning the flag on again does not resume it
    assert recording.status == Recording.Status.STOPPED and recording.ended_at is not None
    assert list(RecordingChunk.objects.values_list("seq", flat=True)) == [0]
    assert len(told) == 1  # the room hears that recording stopped


def test_consent_cannot_be_given_while_the_flag_is_off_but_can_be_withdrawn():
    room = Room(consent=(True, False))

    with override_flag(VIDEO_RECORDING, active=False):
        with pytest.raises(ApplicationError) as refused:
            recording_consent_set(participation=room.patient, consent=True)
        withdrawn = recording_consent_set(participation=room.doctor, consent=False)

    assert refused.value.code == "FEAT_001"
    assert withdrawn is not None and withdrawn.consent is False
    assert list(RecordingConsent.objects.order_by("at", "pk").values_list("role", "consent")) == [("doctor", True), ("doctor", False)]


def test_the_flag_follows_the_person_a_group_can_have_recording_while_everyone_else_does_not():
    from django.contrib.auth.models import Group
    from waffle.models import Flag

    room = Room(consent=(False, False))
    pilot = Group.objects.create(name="Recording pilot")
    room.doctor_user.groups.add(pilot)
    room.patient_user.groups.add(pilot)
    flag = Flag.objects.get(name=VIDEO_RECORDING)
    flag.everyone = None
    flag.save()
    flag.groups.add(pilot)
    flag.flush()

    for participation in (room.doctor, room.patient):
        recording_consent_set(participation=participation, consent=True)
    started = room.start()
    room.doctor_user.groups.clear()
    flag.flush()
    outside_the_pilot = room.start()

    assert started.status_code == 201, started.content
    assert outside_the_pilot.json()["error"]["code"] == "FEAT_001"
    assert Recording.objects.filter(mime_type=WEBM).count() == 1

