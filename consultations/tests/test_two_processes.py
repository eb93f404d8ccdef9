"""Scale-out: the doctor and the patient connected to two different Daphne processes, relayed
through channels-redis. Needs PostgreSQL and Redis (the CI run that sets DATABASE_URL/REDIS_URL):
both servers read the test database the test writes."""

from __future__ import annotations

import asyncio
import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from django.conf import settings
from django.db import connection
from django.test import Client

from consultations.tests.test_consumer import booked

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(
        not os.environ.get("REDIS_URL") or connection.vendor != "postgresql",
        reason="needs PostgreSQL and Redis shared by two server processes (CI's second run)",
    ),
]


def fresh_layer():
    """A layer of its own: the process-wide one keeps asyncio locks bound to the event loop of
    whichever earlier test used it, and every test here runs its own loop."""
    from channels.layers import DEFAULT_CHANNEL_LAYER, channel_layers

    return channel_layers.make_backend(DEFAULT_CHANNEL_LAYER)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def two_servers():
    database = connection.settings_dict
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "medimeet.settings.test",
        "DATABASE_URL": f"postgres://{database['USER']}@{database['HOST']}:{database['PORT']}/{database['NAME']}",
        "PYTHONUNBUFFERED": "1",
    }
    daphne = str(Path(sys.executable).parent / "daphne")
    ports = [free_port(), free_port()]
    servers = [
        subprocess.Popen(
            [daphne, "-b", "127.0.0.1", "-p", str(port), "medimeet.asgi:application"],
            cwd=settings.BASE_DIR,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        for port in ports
    ]
    deadline = time.monotonic() + 30
    for port in ports:
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
                break
            except OSError:
                if time.monotonic() > deadline:
                    for server in servers:
                        server.kill()
                    pytest.fail("Daphne did not start: " + servers[0].stderr.read().decode()[-2000:])
                time.sleep(0.2)
    yield ports
    for server in servers:
        server.terminate()
        server.wait(timeout=10)


def session_cookie(user) -> str:
    client = Client()
    client.force_login(user)
    return f"sessionid={client.cookies['sessionid'].value}"


async def frames_until(ws, kind: str) -> dict:
    while True:
        frame = json.loads(await asyncio.wait_for(ws.recv(), timeout=5))
        if frame["type"] == kind:
            return frame


def test_doctor_and_patient_on_two_daphne_processes_exchange_signaling_and_chat(two_servers):
    import websockets

    appointment = booked()
    room = appointment.consultation.room
    doctor_cookie, patient_cookie = session_cookie(appointment.doctor.user), session_cookie(appointment.patient)

    async def scenario():
        headers = {"Origin": "http://127.0.0.1"}
        doctor_url = f"ws://127.0.0.1:{two_servers[0]}/ws/consultations/{room}/"
        patient_url = f"ws://127.0.0.1:{two_servers[1]}/ws/consultations/{room}/"
        async with websockets.connect(doctor_url, additional_headers={**headers, "Cookie": doctor_cookie}) as doctor:
            await frames_until(doctor, "welcome")
            async with websockets.connect(patient_url, additional_headers={**headers, "Cookie": patient_cookie}) as patient:
                await frames_until(patient, "welcome")
                waiting = await frames_until(doctor, "presence")
                await doctor.send(json.dumps({"type": "admit", "participant": waiting["participant"]["id"]}))
                await frames_until(patient, "admitted")
                await frames_until(doctor, "peer_ready")
                await doctor.send(json.dumps({"type": "offer", "sdp": "v=0 across processes"}))
                offer = await frames_until(patient, "offer")
                await patient.send(json.dumps({"type": "chat", "body": "Hello from the other server"}))
                chat = await frames_until(doctor, "chat")
                return offer, chat

    offer, chat = asyncio.run(scenario())

    assert offer["sdp"] == "v=0 across processes"
    assert chat["body"] == "Hello from the other server"


def test_a_quiet_process_keeps_receiving_past_the_layer_read_timeout():
    """A Daphne process whose sockets hear nothing for longer than the layer's socket timeout
    must not lose its subscriptions (the list-based layer used to raise TimeoutError inside the
    receiving consumer after 5 s of quiet, closing its socket). Shown with a 1 s timeout."""
    from channels_redis.pubsub import RedisPubSubChannelLayer

    config = settings.CHANNEL_LAYERS["default"]["CONFIG"]
    layer = RedisPubSubChannelLayer(hosts=[{**config["hosts"][0], "socket_timeout": 1}], prefix=config["prefix"])

    async def idle_then_message():
        channel = await layer.new_channel()
        await layer.group_add("consultation.quiet", channel)
        receiving = asyncio.ensure_future(layer.receive(channel))
        await asyncio.sleep(2.5)
        assert not receiving.done(), receiving.exception() if receiving.done() else None
        await layer.group_send("consultation.quiet", {"type": "room.relay", "frame": {"type": "typing"}})
        return await asyncio.wait_for(receiving, timeout=5)

    assert asyncio.run(idle_then_message())["frame"] == {"type": "typing"}


def test_an_event_published_from_synchronous_code_reaches_the_subscribed_sockets():
    """``group_send_now`` (WSGI requests, Celery tasks) publishes with a synchronous Redis client
    instead of the layer's coroutine: the channel name and encoding must be the layer's own."""
    from medimeet.core.events import group_send_now

    layer = fresh_layer()

    async def publish_and_receive():
        channel = await layer.new_channel()
        await layer.group_add("availability.42", channel)
        receiving = asyncio.ensure_future(layer.receive(channel))
        sent = await asyncio.to_thread(group_send_now, "availability.42", {"type": "slots.changed", "doctor": "dr-x", "changes": []})
        return sent, await asyncio.wait_for(receiving, timeout=5)

    sent, message = asyncio.run(publish_and_receive())

    assert sent is True
    assert message == {"type": "slots.changed", "doctor": "dr-x", "changes": []}


def test_a_burst_to_the_sockets_of_one_process_is_delivered_not_dropped():
    """A burst to one process arrives whole and in order (the list-based layer's per-process
    inbox dropped frames silently past its capacity, 100 by default)."""
    layer = fresh_layer()

    async def burst(n=300):
        doctor, patient = await layer.new_channel(), await layer.new_channel()
        await layer.group_add("consultation.burst", doctor)
        await layer.group_add("consultation.burst", patient)
        for i in range(n):
            await layer.group_send("consultation.burst", {"type": "room.relay", "frame": {"type": "ice", "n": i}})
        received = [(await asyncio.wait_for(layer.receive(doctor), timeout=5))["frame"]["n"] for _ in range(n)]
        await layer.group_discard("consultation.burst", doctor)
        await layer.group_discard("consultation.burst", patient)
        return received

    assert asyncio.run(burst()) == list(range(300))
