"""Shared pieces of the websocket consumers, and a websocket that only answers pings: the
network check of the pre-meeting page.

The consultation socket cannot serve the check: before the room opens it refuses everyone, and
connecting to it would record the person as present in the room (the no-show evidence).
"""

from __future__ import annotations

import logging
from typing import Any

from channels.consumer import get_handler_name
from channels.generic.websocket import AsyncJsonWebsocketConsumer
from redis.exceptions import RedisError

logger = logging.getLogger(__name__)

UNAVAILABLE_CLOSE_CODE = 4503
UNAVAILABLE_MESSAGE = "The live connection service is unavailable right now; the page retries by itself."


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

class ChannelLayerOutageMixin:
    """A socket whose channel layer (Redis) is down is told so and closed with 4503
    ``WS_UNAVAILABLE`` (not a 44xx refusal: the page retries with backoff and joins once Redis
    is back; docs/signaling.md), instead of the application crashing with a traceback and the
    socket dropping without a reason. ``socket_kind`` names the socket in the log line (never
    its group: a consultation room id is a secret); ``layer_lost`` is the consumer's own clean-up.

    Where the outage shows: with channels-redis's pub/sub layer, the socket's first Redis call is
    its own subscription, before the handshake (Channels' ``new_channel``), so the socket is
    accepted here only to be told; then joining the group (``group_join``); mid-connection, the
    next send (a relayed frame, a presence event). The layer's subscriptions reconnect by
    themselves, so a socket that only listens stays open through a short outage."""

    socket_kind = "websocket"

    async def __call__(self, scope, receive, send) -> None:
        try:
            await super().__call__(scope, receive, send)
        except RedisError as exc:
            logger.warning("%s socket closed: channel layer unreachable", self.socket_kind, extra={"code": type(exc).__name__})
            try:
                if not hasattr(self, "base_send"):  # failed in new_channel(): no handshake yet
                    self.base_send = send
                    await receive()  # websocket.connect
                    await self.accept()
                await self.say_unavailable()
            except Exception:  # noqa: BLE001 - the socket may already be closed: nothing left to tell
                pass
            await self.layer_lost()

    async def group_join(self, group: str) -> bool:
        """Join ``group``; False (the socket told and closed) when the layer is down. A
        connection pooled before a Redis restart fails once, then reconnects: tried twice."""
        for attempt in (1, 2):
            try:
                await self.channel_layer.group_add(group, self.channel_name)
                return True
            except RedisError as exc:
                if attempt == 2:
                    logger.warning("%s socket refused: channel layer unreachable", self.socket_kind, extra={"code": type(exc).__name__})
                    await self.say_unavailable()
        return False

    async def say_unavailable(self) -> None:
        await self.send_json({"type": "error", "code": "WS_UNAVAILABLE", "message": UNAVAILABLE_MESSAGE})
        await self.close(code=UNAVAILABLE_CLOSE_CODE)

    async def layer_lost(self) -> None:
        """After the socket was closed for an outage mid-connection (nothing by default)."""


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
