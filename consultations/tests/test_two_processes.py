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


def test_the_redis_layer_waits_past_its_blocking_pop_without_a_read_timeout():
    """channels-redis blocks 5 s in BZPOPMIN; redis-py 8 reads with a 5 s socket timeout by
    default, so an inbox idle for 5 s raised TimeoutError inside the receiving consumer (its
    socket was closed). The layer's socket timeout must exceed the blocking pop."""
    layer = fresh_layer()

    async def idle_then_message():
        channel = await layer.new_channel()
        receiving = asyncio.ensure_future(layer.receive(channel))
        await asyncio.sleep(layer.brpop_timeout + 1.5)
        assert not receiving.done(), receiving.exception() if receiving.done() else None
        await layer.send(channel, {"type": "room.relay", "frame": {"type": "typing"}})
        return await asyncio.wait_for(receiving, timeout=5)

    assert asyncio.run(idle_then_message())["frame"] == {"type": "typing"}
    assert layer.hosts[0]["socket_timeout"] > layer.brpop_timeout


def test_a_burst_to_the_sockets_of_one_process_is_delivered_not_dropped():
    """All consumers of a Daphne process share one inbox key in Redis; past the layer's
    capacity (100 by default) group_send dropped frames silently."""
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
