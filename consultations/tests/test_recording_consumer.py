"""Recording consent on the consultation socket: both participants' consents are stored and the
room is told the recording state; waiting patients and bad frames are refused; withdrawing or
hanging up stops a running recording."""

from __future__ import annotations

import pytest
from rest_framework.test import APIClient

from consultations.models import Recording, RecordingConsent
from consultations.tests.test_consumer import _sync, booked, close_worker_connections, open_room, socket, until  # noqa: F401 (fixture)
from medimeet.core.flags import VIDEO_RECORDING

pytestmark = [pytest.mark.django_db(transaction=True)]


def consents() -> list[tuple[str, bool, str]]:
    return list(RecordingConsent.objects.order_by("at", "pk").values_list("role", "consent", "source"))


def start_recording(appointment) -> str:
    client = APIClient()
    client.force_authenticate(appointment.doctor.user)
    response = client.post(f"/api/v1/consultations/{appointment.consultation.room}/recordings/", {"mime_type": "video/webm"}, format="json")
    assert response.status_code == 201, response.content
    return response.json()["id"]


@pytest.mark.asyncio
async def test_both_consent_and_everyone_in_the_room_is_told():
    appointment = await _sync(booked)
    doctor, patient, _ = await open_room(appointment)

    await doctor.send_json_to({"type": "recording_consent", "consent": True})
    doctor_only_to_patient = await until(patient, "recording")
    doctor_only_to_doctor = await until(doctor, "recording")
    await patient.send_json_to({"type": "recording_consent", "consent": True})
    both = await until(doctor, "recording")
    await until(patient, "recording")

    nobody_recording = {"active": None, "started_by": None, "started_at": None}
    assert doctor_only_to_patient == doctor_only_to_doctor == {"type": "recording", "consents": {"doctor": True, "patient": False}, **nobody_recording}
    assert both == {"type": "recording", "consents": {"doctor": True, "patient": True}, **nobody_recording}
    assert await _sync(consents) == [("doctor", True, "room"), ("patient", True, "room")]
    await doctor.disconnect()
    await patient.disconnect()


@pytest.mark.asyncio
async def test_a_started_recording_is_announced_and_a_withdrawal_stops_it():
    appointment = await _sync(booked)
    doctor, patient, _ = await open_room(appointment)
    for ws in (doctor, patient):
        await ws.send_json_to({"type": "recording_consent", "consent": True})
        await until(doctor, "recording")
        await until(patient, "recording")

    recording_id = await _sync(start_recording, appointment)
    started = await until(patient, "recording")
    await until(doctor, "recording")
    await patient.send_json_to({"type": "recording_consent", "consent": False})
    stopped = await until(doctor, "recording")

    recording = await _sync(Recording.objects.get)
    assert started["active"] == recording_id and started["consents"] == {"doctor": True, "patient": True}
    assert stopped["active"] is None and stopped["consents"] == {"doctor": True, "patient": False}
    assert recording.status == Recording.Status.STOPPED and recording.ended_at is not None
    await doctor.disconnect()
    await patient.disconnect()


@pytest.mark.asyncio
async def test_the_recording_state_comes_with_the_welcome_and_hanging_up_withdraws_consent():
    appointment = await _sync(booked)
    doctor, patient, _ = await open_room(appointment)
    await patient.send_json_to({"type": "recording_consent", "consent": True})
    await until(doctor, "recording")
    await patient.disconnect()

    again = socket(appointment.consultation.room, appointment.patient)
    await again.connect()
    welcome = await until(again, "welcome")
    await again.send_json_to({"type": "hangup"})
    after_hangup = await until(doctor, "recording")

    assert welcome["recording"]["consents"] == {"doctor": False, "patient": True}
    assert after_hangup["consents"] == {"doctor": False, "patient": False}
    assert await _sync(consents) == [("patient", True, "room"), ("patient", False, "left")]
    await doctor.disconnect()


@pytest.mark.asyncio
async def test_a_waiting_patient_and_bad_frames_cannot_consent():
    appointment = await _sync(booked)
    room = appointment.consultation.room
    doctor = socket(room, appointment.doctor.user)
    patient = socket(room, appointment.patient)
    await doctor.connect()
    await until(doctor, "welcome")
    await patient.connect()
    welcome = await until(patient, "welcome")

    await patient.send_json_to({"type": "recording_consent", "consent": True})
    waiting = await until(patient, "error")
    await doctor.send_json_to({"type": "recording_consent", "consent": "yes"})
    bad = await until(doctor, "error")

    assert welcome["recording"] is None
    assert waiting["code"] == "WS_BAD_MESSAGE" and waiting["message"] == "Wait until the doctor lets you in."
    assert bad == {"type": "error", "code": "WS_BAD_MESSAGE", "message": '"consent" must be true or false.'}
    assert await _sync(consents) == []
    await doctor.disconnect()
    await patient.disconnect()


def _flag_set(name: str, everyone: bool | None) -> None:
    from waffle.models import Flag

    flag = Flag.objects.get(name=name)
    flag.everyone = everyone
    flag.save()
    flag.flush()


@pytest.mark.asyncio
async def test_the_socket_refuses_consent_frames_while_the_flag_is_off_and_stays_open():
    appointment = await _sync(booked)
    doctor, patient, _ = await open_room(appointment)
    await _sync(_flag_set, VIDEO_RECORDING, False)

    await doctor.send_json_to({"type": "recording_consent", "consent": True})
    refused = await until(doctor, "error")
    await doctor.send_json_to({"type": "ping", "t": 1})
    still_open = await until(doctor, "pong")

    assert refused == {"type": "error", "code": "WS_FEATURE_OFF", "message": "Recording consultations is turned off."}
    assert still_open["t"] == 1
    assert await _sync(lambda: list(RecordingConsent.objects.all())) == []
    await doctor.disconnect()
    await patient.disconnect()
