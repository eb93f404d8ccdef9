"""Shared pieces of the websocket consumers, and a websocket that only answers pings: the
network check of the pre-meeting page.

The consultation socket cannot serve the check: before the room opens it refuses everyone, and
connecting to it would record the person as present in the room (the no-show evidence).
"""

from __future__ import annotations

from typing import Any

from channels.consumer import get_handler_name
from channels.generic.websocket import AsyncJsonWebsocketConsumer


class NoConnectionHopMixin:
    """Channels' dispatch, without its ``aclose_old_connections()`` before every event: that is
    a hop to the database thread per frame received and per group event (three per relayed
    frame, a third of the server's CPU when relaying; one per subscriber for each availability
    event). Consumers using this reach the database only through ``database_sync_to_async``,
    which closes old connections before and after each call in that thread, so the extra hop
    did nothing for them."""

    async def dispatch(self, message: dict[str, Any]) -> None:
        handler = getattr(self, get_handler_name(message), None)
        if handler is None:
            raise ValueError(f"No handler for message type {message['type']}")
        await handler(message)

MAX_PINGS = 20  # a check sends a handful; more is someone using the echo for something else


class NetworkCheckConsumer(AsyncJsonWebsocketConsumer):
    async def connect(self) -> None:
        user = self.scope.get("user")
        if user is None or not user.is_authenticated:
            await self.close(code=4401)
            return
        self.pings = 0
        await self.accept()

    async def receive_json(self, content, **kwargs) -> None:
        t = content.get("t") if isinstance(content, dict) else None
        if not isinstance(content, dict) or content.get("type") != "ping" or not isinstance(t, int | float) or isinstance(t, bool):
            await self.send_json({"type": "error", "code": "WS_BAD_MESSAGE", "message": 'Send {"type": "ping", "t": <number>}.'})
            return
        self.pings += 1
        if self.pings > MAX_PINGS:
            await self.close(code=4429)
            return
        await self.send_json({"type": "pong", "t": t})
