"""A guest in the consultation socket: the session of the browser that opened the invitation,
admission by the doctor, a three-person mesh with addressed signaling, and withdrawal."""

from __future__ import annotations

import asyncio

import pytest
from channels.testing import WebsocketCommunicator
from django.test import Client
from rest_framework.test import APIClient

from consultations.models import Participation, PresenceEvent
from consultations.services import chat_post
from consultations.tests.test_consumer import _sync, booked, close_worker_connections, closed_with, open_room, until  # noqa: F401 (autouse fixture)
from medimeet.asgi import application

pytestmark = [pytest.mark.django_db(transaction=True)]


def invited_guest(appointment, *, name="Asha Rao", relationship="interpreter") -> tuple[bytes, str]:
    """Invite a guest as the patient and open the link in a fresh browser: its session cookie
    and the invitation id."""
    api = APIClient()
    api.force_authenticate(appointment.patient)
    created = api.post(f"/api/v1/consultations/{appointment.consultation.room}/guests/", {"name": name, "relationship": relationship}, format="json").json()
    browser = Client()
    assert browser.post(created["link"]).status_code == 302
    return f"sessionid={browser.cookies['sessionid'].value}".encode(), created["id"]


def guest_socket(room: str, cookie: bytes) -> WebsocketCommunicator:
    headers = [(b"origin", b"http://127.0.0.1"), (b"host", b"127.0.0.1"), (b"cookie", cookie)]
    return WebsocketCommunicator(application, f"/ws/consultations/{room}/", headers=headers)


async def room_with_guest(appointment):
    """The doctor and the patient in the call, and an admitted guest: the three sockets."""
    cookie, invite_id = await _sync(invited_guest, appointment)
    doctor, patient, patient_id = await open_room(appointment)
    guest, _, _, _ = await admitted_guest(appointment, doctor, cookie)
    return doctor, patient, guest, {"patient": patient_id, "invite": invite_id, "cookie": cookie}


async def admitted_guest(appointment, doctor, cookie):
    guest = guest_socket(appointment.consultation.room, cookie)
    await guest.connect()
    welcome = await until(guest, "welcome")
    waiting = await until(doctor, "presence")
    await doctor.send_json_to({"type": "admit", "participant": waiting["participant"]["id"]})
    admitted = await until(guest, "admitted")
    return guest, welcome, waiting, admitted


@pytest.mark.asyncio
async def test_the_doctor_admits_the_guest_who_sees_only_the_chat_from_then_on():
    appointment = await _sync(booked)
    cookie, _ = await _sync(invited_guest, appointment)
    doctor, patient, patient_id = await open_room(appointment)
    patient_row = await _sync(Participation.objects.get, public_id=patient_id)
    await _sync(chat_post, participation=patient_row, body="Before the interpreter joined")

    guest, welcome, waiting, admitted = await admitted_guest(appointment, doctor, cookie)
    await doctor.send_json_to({"type": "chat", "body": "Welcome, Asha"})
    chat = await until(guest, "chat")

    assert welcome["state"] == "waiting" and welcome["chat"] == []
    assert welcome["you"]["role"] == "guest" and welcome["you"]["name"] == "Asha Rao"
    assert waiting["participant"]["state"] == "waiting" and waiting["participant"]["relationship"] == "Interpreter"
    assert admitted["chat"] == []  # nothing said before they were let in
    assert chat["body"] == "Welcome, Asha"
    guest_row = await _sync(Participation.objects.select_related("guest").get, role="guest")
    assert guest_row.user_id is None and guest_row.guest.name == "Asha Rao"
    kinds = await _sync(lambda: list(PresenceEvent.objects.filter(participation=guest_row).values_list("kind", flat=True)))
    assert kinds == ["waiting", "admitted"]
    for ws in (doctor, patient, guest):
        await ws.disconnect()


@pytest.mark.asyncio
async def test_three_people_form_a_mesh_with_frames_delivered_only_to_their_addressee():
    appointment = await _sync(booked)
    cookie, _ = await _sync(invited_guest, appointment)
    doctor, patient, patient_id = await open_room(appointment)
    doctor_id = (await _sync(Participation.objects.get, role="doctor")).public_id

    guest, welcome, _, _ = await admitted_guest(appointment, doctor, cookie)
    guest_id = welcome["you"]["id"]
    ready = [await until(ws, "peer_ready") for ws in (doctor, patient, guest)]
    await doctor.send_json_to({"type": "offer", "to": guest_id, "sdp": "v=0 doctor→guest"})
    await patient.send_json_to({"type": "offer", "to": guest_id, "sdp": "v=0 patient→guest"})
    offers = [await until(guest, "offer"), await until(guest, "offer")]
    await guest.send_json_to({"type": "answer", "to": patient_id, "sdp": "v=0 guest→patient"})
    answer = await until(patient, "answer")

    assert {frame["participant"] for frame in ready} == {guest_id}
    assert sorted((o["from"], o["sdp"], o["to"]) for o in offers) == sorted(
        [(str(doctor_id), "v=0 doctor→guest", guest_id), (patient_id, "v=0 patient→guest", guest_id)]
    )
    assert (answer["from"], answer["sdp"]) == (guest_id, "v=0 guest→patient")
    # The doctor received neither the patient's offer to the guest nor the guest's answer.
    await doctor.send_json_to({"type": "ping", "t": 1})
    assert (await doctor.receive_json_from(timeout=2))["type"] == "pong"
    for ws in (doctor, patient, guest):
        await ws.disconnect()


@pytest.mark.asyncio
async def test_a_guest_cannot_admit_end_or_address_bad_ids():
    appointment = await _sync(booked)
    doctor, patient, guest, ids = await room_with_guest(appointment)
    patient_id = ids["patient"]

    await guest.send_json_to({"type": "end"})
    refused_end = await until(guest, "error")
    await guest.send_json_to({"type": "admit", "participant": patient_id})
    refused_admit = await until(guest, "error")
    await guest.send_json_to({"type": "offer", "to": 42, "sdp": "v=0"})
    bad_address = await until(guest, "error")

    assert refused_end["code"] == refused_admit["code"] == "WS_FORBIDDEN"
    assert bad_address["code"] == "WS_BAD_MESSAGE"
    consultation = await _sync(lambda: type(appointment.consultation).objects.get(pk=appointment.consultation.pk))
    assert consultation.status == "live"
    for ws in (doctor, patient, guest):
        await ws.disconnect()


@pytest.mark.asyncio
async def test_withdrawing_the_invitation_disconnects_the_guest_and_keeps_them_out():
    appointment = await _sync(booked)
    doctor, patient, guest, ids = await room_with_guest(appointment)
    invite_id, cookie = ids["invite"], ids["cookie"]

    def withdraw():
        api = APIClient()
        api.force_authenticate(appointment.patient)
        return api.delete(f"/api/v1/consultations/{appointment.consultation.room}/guests/{invite_id}/").status_code

    assert await _sync(withdraw) == 204
    error = await until(guest, "error")
    code = await closed_with(guest)
    again = guest_socket(appointment.consultation.room, cookie)
    await again.connect()
    refused = await until(again, "error")

    assert (error["code"], code) == ("WS_FORBIDDEN", 4403)
    assert refused["code"] == "WS_FORBIDDEN" and "withdrawn" in refused["message"]
    assert await closed_with(again) == 4403
    for ws in (doctor, patient):
        await ws.disconnect()


@pytest.mark.asyncio
async def test_a_guest_session_opens_only_the_room_it_was_invited_to():
    invited_to, other = await _sync(booked), await _sync(booked)
    cookie, _ = await _sync(invited_guest, invited_to)

    ws = guest_socket(other.consultation.room, cookie)
    await ws.connect()
    await ws.send_json_to({"type": "offer", "sdp": "v=0"})
    error = await until(ws, "error")

    assert error["code"] == "WS_UNAUTHENTICATED"
    assert await _sync(Participation.objects.filter(consultation=other.consultation).count) == 0
    await ws.disconnect()
    await asyncio.sleep(0)
