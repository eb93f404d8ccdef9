"""The live availability socket: ``/ws/doctors/<slug>/availability/`` tells whoever looks at a
doctor's free times (the booking page, a mobile app) that some of them changed, so they can
re-fetch them. The protocol is docs/signaling.md ("Live availability"); the events are
published by appointments/availability_events.py after each change commits.

Anyone may subscribe, as anyone may read the slots API: an event carries times and a state,
never who booked. Unknown or unlisted doctors are refused.
"""

from __future__ import annotations

import time
from typing import Any

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncJsonWebsocketConsumer
from redis.exceptions import RedisError

from doctors.models import DoctorProfile
from medimeet.core.consumers import ChannelLayerOutageMixin, NoConnectionHopMixin

from .availability_events import availability_group

MAX_FRAMES_PER_MINUTE = 30  # a client sends only pings; more is someone using the socket for something else
MAX_FRAME_BYTES = 1024


@database_sync_to_async
def _listed_doctor_id(slug: str) -> int | None:
    return DoctorProfile.objects.listed().filter(slug=slug).values_list("pk", flat=True).first()


class AvailabilityConsumer(ChannelLayerOutageMixin, NoConnectionHopMixin, AsyncJsonWebsocketConsumer):
    socket_kind = "availability"

    async def connect(self) -> None:
        self.slug: str = self.scope["url_route"]["kwargs"]["slug"]
        self.group: str | None = None
        self.received: list[float] = []
        await self.accept()
        doctor_id = await _listed_doctor_id(self.slug)
        if doctor_id is None:
            await self.refuse(4404, "WS_NOT_FOUND", "No such doctor, or they do not take bookings.")
            return
        if not await self.group_join(availability_group(doctor_id)):  # Redis is down: 4503, the page retries
            return
        self.group = availability_group(doctor_id)
        await self.send_json({"type": "subscribed", "doctor": self.slug})

    async def disconnect(self, code: int) -> None:
        if self.group is not None:
            try:
                await self.channel_layer.group_discard(self.group, self.channel_name)
            except RedisError:  # the layer is down: the socket has left the group in this process already; only Redis's unsubscribe failed, harmless
                pass

    async def refuse(self, close_code: int, code: str, message: str) -> None:
        await self.send_json({"type": "error", "code": code, "message": message})
        await self.close(code=close_code)

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        now = time.monotonic()
        self.received = [t for t in self.received if now - t < 60] + [now]
        if len(self.received) > MAX_FRAMES_PER_MINUTE:
            await self.refuse(4429, "WS_RATE_LIMITED", "Too many messages: the connection is closed.")
            return
        if text_data is None or len(text_data) > MAX_FRAME_BYTES:
            await self.send_json({"type": "error", "code": "WS_BAD_MESSAGE", "message": 'Send {"type": "ping"} only.'})
            return
        await super().receive(text_data=text_data)

    async def receive_json(self, content: Any, **kwargs) -> None:
        if not isinstance(content, dict) or content.get("type") != "ping":
            await self.send_json({"type": "error", "code": "WS_BAD_MESSAGE", "message": 'Send {"type": "ping"} only.'})
            return
        t = content.get("t")
        await self.send_json({"type": "pong", "t": t if isinstance(t, int | float) and not isinstance(t, bool) else None})

    async def slots_changed(self, event: dict[str, Any]) -> None:
        """One frame per change (several when one transaction changed several times)."""
        for change in event["changes"]:
            await self.send_json({"type": "slots.changed", "doctor": event["doctor"], **change})
