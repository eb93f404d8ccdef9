"""The ``video-recording`` flag: off, the room page offers no recording, the recording API
refuses to start (FEAT_001) and consent cannot be given (withdrawing still works); on (the
default), all of it works as before."""

# ruff: noqa: F811  (fixtures imported from the module that defines them, then requested by name)
from __future__ import annotations

import pytest
from waffle.testutils import override_flag

from consultations.models import Recording, RecordingConsent
from consultations.services import recording_consent_set
from consultations.tests.test_pages import INSIDE, clock, consultation, doctor, patient, room_url  # noqa: F401 (fixtures)
from consultations.tests.test_recordings import WEBM, Room
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

