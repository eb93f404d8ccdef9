"""Live availability across Daphne processes: a hold made through one process's HTTP API reaches
a socket connected to another, through channels-redis. Needs PostgreSQL and Redis (the CI run
that sets DATABASE_URL/REDIS_URL): both servers read the test database the test writes."""

from __future__ import annotations

import asyncio
import json
import time
from datetime import timedelta

import requests

from accounts.tests.factories import UserFactory
from appointments.tests.test_availability_socket import clinic, day_after_tomorrow_at, iso
from consultations.tests.test_consumer import access_token_for
from consultations.tests.test_two_processes import pytestmark as two_process_marks
from consultations.tests.test_two_processes import two_servers  # noqa: F401 (a fixture)

pytestmark = two_process_marks


def test_a_hold_made_through_one_process_reaches_a_socket_on_another_within_a_second(two_servers):  # noqa: F811
    import websockets

    doctor, service = clinic()
    token = access_token_for(UserFactory())
    start = day_after_tomorrow_at(9, 5)
    api_process, socket_process = two_servers

    async def scenario():
        url = f"ws://127.0.0.1:{socket_process}/ws/doctors/{doctor.slug}/availability/"
        async with websockets.connect(url, additional_headers={"Origin": "http://127.0.0.1"}) as ws:
            assert json.loads(await asyncio.wait_for(ws.recv(), timeout=5)) == {"type": "subscribed", "doctor": doctor.slug}
            response = await asyncio.to_thread(
                requests.post,
                f"http://127.0.0.1:{api_process}/api/v1/appointments/",
                json={"service": str(service.public_id), "start": start.isoformat()},
                headers={"Authorization": f"Bearer {token}"},
                timeout=10,
            )
            answered = time.monotonic()
            frame = json.loads(await asyncio.wait_for(ws.recv(), timeout=5))
            return response, frame, time.monotonic() - answered

    response, frame, delay = asyncio.run(scenario())

    assert response.status_code == 201, response.text
    assert (frame["type"], frame["doctor"], frame["state"]) == ("slots.changed", doctor.slug, "held")
    assert (frame["start"], frame["end"]) == (iso(start), iso(start + timedelta(minutes=30)))
    assert delay < 1
