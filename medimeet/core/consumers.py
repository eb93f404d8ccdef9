"""A websocket that only answers pings: the network check of the pre-meeting page.

The consultation socket cannot serve it: before the room opens it refuses everyone, and
connecting to it would record the person as present in the room (the no-show evidence).
"""

from __future__ import annotations

from channels.generic.websocket import AsyncJsonWebsocketConsumer

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
