"""The network-check socket of the pre-meeting page: it answers pings of signed-in people and
nothing else."""

from __future__ import annotations

import asyncio
import json

import pytest
from channels.testing import WebsocketCommunicator
from django.contrib.auth.models import AnonymousUser

from medimeet.core.consumers import MAX_PINGS, NetworkCheckConsumer

# Channels closes stale database connections around every frame, so the database must be allowed.
pytestmark = pytest.mark.django_db


class SignedIn:
    is_authenticated = True


def talk(user, frames: list[dict]) -> tuple[bool, list, int | None]:
    """Connect as ``user``, send ``frames`` one by one; return (accepted, answers, close code)."""

    async def run():
        communicator = WebsocketCommunicator(NetworkCheckConsumer.as_asgi(), "/ws/network-check/")
        communicator.scope["user"] = user
        connected, code = await communicator.connect()
        answers, closed = [], None if connected else code
        for frame in frames if connected else []:
            await communicator.send_json_to(frame)
            output = await communicator.receive_output(timeout=1)
            if output["type"] == "websocket.close":
                closed = output["code"]
                break
            answers.append(json.loads(output["text"]))
        await communicator.disconnect()
        return connected, answers, closed

    return asyncio.run(run())


def test_a_ping_is_answered_with_the_same_time():
    accepted, answers, closed = talk(SignedIn(), [{"type": "ping", "t": 1234.5}, {"type": "ping", "t": 7}])

    assert accepted
    assert answers == [{"type": "pong", "t": 1234.5}, {"type": "pong", "t": 7}]
    assert closed is None


def test_anything_but_a_ping_is_a_bad_message():
    _, answers, _ = talk(SignedIn(), [{"type": "chat", "body": "hi"}, {"type": "ping", "t": "soon"}, {"type": "ping", "t": True}])

    assert [a["code"] for a in answers] == ["WS_BAD_MESSAGE"] * 3


def test_anonymous_people_are_refused():
    accepted, answers, closed = talk(AnonymousUser(), [{"type": "ping", "t": 1}])

    assert (accepted, answers, closed) == (False, [], 4401)


def test_the_echo_closes_after_a_check_worth_of_pings():
    _, answers, closed = talk(SignedIn(), [{"type": "ping", "t": n} for n in range(MAX_PINGS + 1)])

    assert len(answers) == MAX_PINGS
    assert closed == 4429
