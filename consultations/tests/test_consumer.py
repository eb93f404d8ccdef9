"""The consultation socket through Channels' WebsocketCommunicator and the real ASGI application
(session cookie and JWT authentication, the channel layer of the settings: in-memory, or Redis
when REDIS_URL is set)."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
import pytest_asyncio
from channels.testing import WebsocketCommunicator
from django.conf import settings
from django.test import Client
from django.utils import timezone

from accounts.tests.factories import PASSWORD, UserFactory
from appointments.models import Appointment
from consultations.models import ChatMessage, Consultation, Participation, QualitySample
from consultations.services import consultation_ensure
from doctors.tests.factories import DoctorProfileFactory, ServiceFactory
from medimeet.asgi import application
from medimeet.core.tests.layers import unreachable_channel_layers

pytestmark = [pytest.mark.django_db(transaction=True)]


@pytest_asyncio.fixture(autouse=True)
async def close_worker_connections():
    """Consumers reach the database from asgiref's worker thread: close its connection after
    each test so PostgreSQL can drop the test database at the end."""
    yield
    from channels.db import database_sync_to_async
    from django.db import connections

    await database_sync_to_async(connections.close_all)()


def booked(start_in=timedelta(minutes=5), status="confirmed", patient=None) -> Appointment:
    doctor = DoctorProfileFactory()
    service = ServiceFactory(doctor=doctor, duration_minutes=20)
    start = (timezone.now() + start_in).replace(microsecond=0)
    appointment = Appointment.objects.create(
        doctor=doctor,
        patient=patient or UserFactory(),
        service=service,
        start=start,
        end=start + timedelta(minutes=20),
        blocked_start=start,
        blocked_end=start + timedelta(minutes=20),
        status=status,
        price_minor=service.price_minor,
        currency=service.currency,
    )
    consultation_ensure(appointment=appointment)
    return appointment


def access_token_for(user) -> str:
    """Sign in through the API, as a mobile app does."""
    response = Client().post("/api/v1/auth/login/", {"email": user.email, "password": PASSWORD}, content_type="application/json")
    return response.json()["access"]


def cookie_for(user) -> bytes:
    client = Client()
    client.force_login(user)
    return f"sessionid={client.cookies['sessionid'].value}".encode()


def socket(room: str, user=None, *, query: str = "") -> WebsocketCommunicator:
    headers = [(b"origin", b"http://127.0.0.1"), (b"host", b"127.0.0.1")]
    if user is not None:
        headers.append((b"cookie", cookie_for(user)))
    return WebsocketCommunicator(application, f"/ws/consultations/{room}/{query}", headers=headers)


async def until(ws: WebsocketCommunicator, kind: str, timeout: float = 3) -> dict:
    """The next frame of ``kind``, skipping others (presence updates interleave)."""
    while True:
        frame = await ws.receive_json_from(timeout=timeout)
        if frame["type"] == kind:
            return frame


async def closed_with(ws: WebsocketCommunicator) -> int:
    while True:
        message = await ws.receive_output(timeout=3)
        if message["type"] == "websocket.close":
            return message.get("code")


async def open_room(appointment):
    """The doctor and the patient in the room, the patient admitted; returns both sockets."""
    room = appointment.consultation.room
    doctor = socket(room, appointment.doctor.user)
    patient = socket(room, appointment.patient)
    await doctor.connect()
    await until(doctor, "welcome")
    await patient.connect()
    welcome = await until(patient, "welcome")
    waiting = await until(doctor, "presence")
    await doctor.send_json_to({"type": "admit", "participant": waiting["participant"]["id"]})
    await until(patient, "admitted")
    await until(doctor, "peer_ready")
    await until(patient, "peer_ready")
    return doctor, patient, welcome["you"]["id"]


@pytest.mark.asyncio
async def test_the_patient_waits_is_admitted_and_the_two_exchange_signaling_and_chat():
    appointment = await _sync(booked)
    room = appointment.consultation.room
    doctor = socket(room, appointment.doctor.user)
    patient = socket(room, appointment.patient)

    assert (await doctor.connect())[0]
    doctor_welcome = await until(doctor, "welcome")
    await patient.connect()
    patient_welcome = await until(patient, "welcome")
    waiting = await until(doctor, "presence")
    await patient.send_json_to({"type": "offer", "sdp": "v=0 too early"})
    too_early = await until(patient, "error")
    await doctor.send_json_to({"type": "admit", "participant": waiting["participant"]["id"]})
    await until(patient, "admitted")
    await until(doctor, "peer_ready")
    await doctor.send_json_to({"type": "offer", "sdp": "v=0 offer"})
    offer = await until(patient, "offer")
    await patient.send_json_to({"type": "answer", "sdp": "v=0 answer"})
    answer = await until(doctor, "answer")
    await patient.send_json_to({"type": "ice", "candidate": {"candidate": "candidate:1 1 udp 1 127.0.0.1 5000 typ host", "sdpMid": "0", "sdpMLineIndex": 0}})
    ice = await until(doctor, "ice")
    await patient.send_json_to({"type": "media", "audio": False, "video": True})
    media = await until(doctor, "media")
    await patient.send_json_to({"type": "chat", "body": "Can you hear me?"})
    chat_to_doctor = await until(doctor, "chat")
    chat_echo = await until(patient, "chat")

    assert doctor_welcome["state"] == "admitted" and doctor_welcome["you"]["role"] == "doctor"
    assert patient_welcome["state"] == "waiting" and patient_welcome["chat"] == []
    assert waiting["participant"]["state"] == "waiting" and waiting["participant"]["role"] == "patient"
    assert too_early["code"] == "WS_BAD_MESSAGE"
    assert offer == {"type": "offer", "sdp": "v=0 offer", "from": doctor_welcome["you"]["id"]}
    assert answer["sdp"] == "v=0 answer" and answer["from"] == patient_welcome["you"]["id"]
    assert ice["candidate"]["sdpMid"] == "0"
    assert (media["audio"], media["video"]) == (False, True)
    assert chat_to_doctor["body"] == chat_echo["body"] == "Can you hear me?"

    await doctor.send_json_to({"type": "end"})
    ended = await until(patient, "ended")
    assert await closed_with(patient) == 4000
    await doctor.disconnect()
    await patient.disconnect()

    consultation = await _sync(lambda: Consultation.objects.select_related("appointment").get(pk=appointment.consultation.pk))
    participations = await _sync(lambda: list(Participation.objects.filter(consultation=consultation).order_by("role")))
    raw_chat = await _sync(_raw_chat_body)
    assert ended["by"] == doctor_welcome["you"]["id"]
    assert consultation.status == "ended" and consultation.started_at and consultation.ended_at >= consultation.started_at
    assert consultation.appointment.status == "completed"
    assert [(p.role, p.connections, p.sockets) for p in participations] == [("doctor", 1, 0), ("patient", 1, 0)]
    assert all(p.first_joined_at and p.last_left_at for p in participations)
    assert "Can you hear me?" not in raw_chat  # encrypted at rest


@pytest.mark.asyncio
async def test_a_mobile_client_authenticates_with_its_access_token():
    appointment = await _sync(booked)
    access = await _sync(access_token_for, appointment.patient)
    in_query = socket(appointment.consultation.room, query=f"?token={access}")
    first_frame = socket(appointment.consultation.room)

    await in_query.connect()
    by_query = await until(in_query, "welcome")
    await first_frame.connect()
    await first_frame.send_json_to({"type": "auth", "token": access})
    by_frame = await until(first_frame, "welcome")

    assert by_query["you"]["role"] == by_frame["you"]["role"] == "patient"
    await in_query.disconnect()
    await first_frame.disconnect()


@pytest.mark.asyncio
@pytest.mark.parametrize(
    ("case", "code", "error"),
    [
        ("anonymous_bad_token", 4401, "WS_UNAUTHENTICATED"),
        ("someone_else", 4403, "WS_FORBIDDEN"),
        ("unknown_room", 4404, "WS_NOT_FOUND"),
        ("cancelled", 4409, "WS_NOT_ACTIVE"),
        ("too_early", 4410, "WS_OUTSIDE_WINDOW"),
        ("too_late", 4410, "WS_OUTSIDE_WINDOW"),
    ],
)
async def test_sockets_that_may_not_join_are_told_why_and_closed(case, code, error):
    appointment = await _sync(
        booked,
        **{"cancelled": {"status": "cancelled"}, "too_early": {"start_in": timedelta(hours=3)}, "too_late": {"start_in": -timedelta(hours=3)}}.get(case, {}),
    )
    room = "x" * 43 if case == "unknown_room" else appointment.consultation.room
    user = None if case == "anonymous_bad_token" else (await _sync(UserFactory) if case == "someone_else" else appointment.patient)
    ws = socket(room, user, query="?token=not-a-token" if case == "anonymous_bad_token" else "")

    await ws.connect()
    refusal = await until(ws, "error")

    assert refusal["code"] == error
    assert await closed_with(ws) == code
    assert await _sync(lambda: Participation.objects.count()) == 0


@pytest.mark.asyncio
async def test_a_socket_that_never_authenticates_is_closed(settings, monkeypatch):
    from consultations import consumers

    monkeypatch.setattr(consumers, "AUTH_TIMEOUT_SECONDS", 0.2)
    appointment = await _sync(booked)
    ws = socket(appointment.consultation.room)

    await ws.connect()
    refusal = await until(ws, "error")

    assert refusal["code"] == "WS_UNAUTHENTICATED"
    assert await closed_with(ws) == 4401


@pytest.mark.asyncio
async def test_bad_frames_get_errors_and_the_socket_stays_usable():
    appointment = await _sync(booked)
    doctor, patient, _ = await open_room(appointment)

    await patient.send_to(text_data="{not json")
    not_json = await until(patient, "error")
    await patient.send_to(text_data=json.dumps({"type": "chat", "body": "x" * (settings.CONSULTATION_MAX_FRAME_BYTES + 1)}))
    too_big = await until(patient, "error")
    await patient.send_json_to({"type": "launch_missiles"})
    unknown = await until(patient, "error")
    await patient.send_json_to({"type": "offer", "sdp": 42})
    bad_sdp = await until(patient, "error")
    await patient.send_json_to({"type": "end"})
    not_doctor = await until(patient, "error")
    await patient.send_json_to({"type": "admit", "participant": "anyone"})
    not_doctor_admit = await until(patient, "error")
    await patient.send_json_to({"type": "ping", "t": 7})
    pong = await until(patient, "pong")

    assert {not_json["code"], too_big["code"], unknown["code"], bad_sdp["code"]} == {"WS_BAD_MESSAGE"}
    assert not_doctor["code"] == not_doctor_admit["code"] == "WS_FORBIDDEN"
    assert pong["t"] == 7
    consultation = await _sync(lambda: Consultation.objects.get(pk=appointment.consultation.pk))
    assert consultation.status == "live"
    await doctor.disconnect()
    await patient.disconnect()


@pytest.mark.asyncio
async def test_flooding_closes_that_socket_only_and_other_rooms_carry_on(settings):
    settings.CONSULTATION_MAX_MESSAGES_PER_10S = 20
    flooded, quiet = await _sync(booked), await _sync(booked)
    doctor, patient, _ = await open_room(flooded)
    other_doctor, other_patient, _ = await open_room(quiet)

    for _ in range(25):
        await patient.send_json_to({"type": "typing"})
    limited = await until(patient, "error")
    await other_patient.send_json_to({"type": "chat", "body": "Still here"})
    unaffected = await until(other_doctor, "chat")

    assert limited["code"] == "WS_RATE_LIMITED"
    assert await closed_with(patient) == 4429
    assert unaffected["body"] == "Still here"
    for ws in (doctor, other_doctor, other_patient):
        await ws.disconnect()


@pytest.mark.asyncio
async def test_a_reconnecting_patient_is_admitted_again_and_the_doctor_sees_it():
    appointment = await _sync(booked)
    doctor, patient, patient_id = await open_room(appointment)

    await patient.disconnect()
    gone = await until(doctor, "presence")
    again = socket(appointment.consultation.room, appointment.patient)
    await again.connect()
    welcome = await until(again, "welcome")
    back = await until(doctor, "presence")

    assert gone["participant"]["state"] == "reconnecting"
    assert welcome["state"] == "admitted" and welcome["you"]["id"] == patient_id
    assert back["participant"]["state"] == "admitted"
    participation = await _sync(lambda: Participation.objects.get(public_id=patient_id))
    assert (participation.connections, participation.sockets) == (2, 1)
    await doctor.disconnect()
    await again.disconnect()


@pytest.mark.asyncio
async def test_quality_samples_are_stored_at_most_every_five_seconds_and_validated():
    appointment = await _sync(booked)
    doctor, patient, _ = await open_room(appointment)

    sample = {"type": "stats", "rtt_ms": 42.5, "packet_loss": 0.01, "jitter_ms": 3, "bitrate_kbps": 900, "fps": 29.7}
    await patient.send_json_to(sample)
    await patient.send_json_to(sample)
    await patient.send_json_to({**sample, "rtt_ms": -1})
    negative = await until(patient, "error")
    await patient.send_json_to({"type": "ping", "t": 1})
    await until(patient, "pong")

    stored = await _sync(lambda: list(QualitySample.objects.values_list("rtt_ms", "packet_loss", "fps")))
    assert stored == [(42.5, 0.01, 29.7)]
    assert negative["code"] == "WS_BAD_MESSAGE"
    await doctor.disconnect()
    await patient.disconnect()


@pytest.mark.asyncio
async def test_chat_history_is_shown_on_join_to_admitted_participants():
    appointment = await _sync(booked)
    doctor, patient, _ = await open_room(appointment)
    await doctor.send_json_to({"type": "chat", "body": "Please hold the camera closer"})
    await until(patient, "chat")
    await patient.disconnect()

    again = socket(appointment.consultation.room, appointment.patient)
    await again.connect()
    welcome = await until(again, "welcome")

    assert [m["body"] for m in welcome["chat"]] == ["Please hold the camera closer"]
    assert welcome["chat"][0]["name"] == appointment.doctor.display_name
    await doctor.disconnect()
    await again.disconnect()


def _raw_chat_body() -> str:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(f"SELECT body FROM {ChatMessage._meta.db_table}")
        return " ".join(str(row[0]) for row in cursor.fetchall())


async def _sync(function, *args, **kwargs):
    from channels.db import database_sync_to_async

    return await database_sync_to_async(function)(*args, **kwargs)


@pytest.mark.asyncio
async def test_relaying_a_frame_does_not_hop_to_the_database_thread(monkeypatch):
    """The relay is the hot path (docs/performance.md, signaling): no thread hop per frame
    (Channels' dispatch ran close_old_connections in the database thread before every event)."""
    import channels.consumer
    from asgiref.sync import SyncToAsync

    appointment = await _sync(booked)
    doctor, patient, _ = await open_room(appointment)
    hops = []
    original = SyncToAsync.__call__

    async def counted(self, *args, **kwargs):
        hops.append(getattr(self.func, "__name__", repr(self.func)))
        return await original(self, *args, **kwargs)

    monkeypatch.setattr(SyncToAsync, "__call__", counted)
    monkeypatch.setattr(channels.consumer, "aclose_old_connections", lambda: pytest.fail("dispatch closed old connections"))
    for n in range(3):
        await patient.send_json_to({"type": "offer", "sdp": f"v=0 {n}"})
        assert (await until(doctor, "offer"))["sdp"] == f"v=0 {n}"
        await patient.send_json_to({"type": "typing"})
        await until(doctor, "typing")
    assert hops == []
    await doctor.disconnect()
    await patient.disconnect()


@pytest.mark.asyncio
async def test_with_the_channel_layer_down_the_socket_is_told_the_service_is_unavailable_then_joins_when_it_is_back(settings):
    layer = settings.CHANNEL_LAYERS
    settings.CHANNEL_LAYERS = unreachable_channel_layers()
    appointment = await _sync(booked)
    ws = socket(appointment.consultation.room, appointment.patient)

    await ws.connect()
    refusal = await until(ws, "error", timeout=10)

    assert refusal["code"] == "WS_UNAVAILABLE"
    assert await closed_with(ws) == 4503  # not a 44xx refusal: the page keeps retrying
    await ws.wait(timeout=5)  # the consumer ends by itself once its read of the layer fails too

    settings.CHANNEL_LAYERS = layer  # the service is back: the page's next attempt joins
    again = socket(appointment.consultation.room, appointment.patient)
    await again.connect()
    assert (await until(again, "welcome"))["type"] == "welcome"
    await again.disconnect()
