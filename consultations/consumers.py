"""The consultation socket: authentication, the waiting room, WebRTC signaling relay, presence,
chat and quality samples. The protocol is docs/signaling.md; the rules live in services.py.

Frames between participants travel through the room's channel-layer group, so the doctor and
the patient may be connected to different Daphne processes (channels-redis in production).
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections import deque
from typing import Any
from urllib.parse import parse_qs

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncJsonWebsocketConsumer
from django.conf import settings
from redis.exceptions import RedisError

from medimeet.core.consumers import ChannelLayerOutageMixin, NoConnectionHopMixin
from medimeet.core.errors import ApplicationError

from . import selectors, services
from .models import Participation

logger = logging.getLogger("medimeet.consultations")

AUTH_TIMEOUT_SECONDS = 10
STATS_INTERVAL_SECONDS = 5
MAX_SDP = 32 * 1024
RELAYED = {"offer", "answer", "ice", "renegotiate", "typing"}
ADDRESSED = {"offer", "answer", "ice", "renegotiate"}
WAITING_ALLOWED = {"ping", "hangup", "auth"}


class BadMessage(Exception):
    pass


def _number(value: Any, name: str) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or value < 0 or value != value:
        raise BadMessage(f'"{name}" must be a number ≥ 0 or null.')
    return float(value)


def clean_frame(frame: Any) -> dict[str, Any]:
    """Validate a client frame against the protocol; return only the fields that are relayed.
    WebRTC frames may be addressed (``to``: a participant id) — with a guest, the room is a
    mesh of one connection per pair."""
    cleaned = _clean_fields(frame)
    if cleaned["type"] in ADDRESSED and frame.get("to") is not None:
        if not isinstance(frame["to"], str) or not 0 < len(frame["to"]) <= 64:
            raise BadMessage('"to" must be a participant id.')
        cleaned["to"] = frame["to"]
    return cleaned


def _clean_fields(frame: Any) -> dict[str, Any]:
    if not isinstance(frame, dict) or not isinstance(frame.get("type"), str):
        raise BadMessage('Every frame is a JSON object with a "type".')
    kind = frame["type"]
    if kind in ("offer", "answer"):
        sdp = frame.get("sdp")
        if not isinstance(sdp, str) or not sdp or len(sdp) > MAX_SDP:
            raise BadMessage('"sdp" must be a session description of at most 32 KiB.')
        return {"type": kind, "sdp": sdp}
    if kind == "ice":
        candidate = frame.get("candidate")
        if not isinstance(candidate, dict) or not isinstance(candidate.get("candidate", ""), str) or len(json.dumps(candidate)) > 2048:
            raise BadMessage('"candidate" must be an RTCIceCandidateInit object.')
        allowed = {k: candidate[k] for k in ("candidate", "sdpMid", "sdpMLineIndex", "usernameFragment") if k in candidate}
        return {"type": "ice", "candidate": allowed}
    if kind == "media":
        if not isinstance(frame.get("audio"), bool) or not isinstance(frame.get("video"), bool):
            raise BadMessage('"audio" and "video" must be true or false.')
        return {"type": "media", "audio": frame["audio"], "video": frame["video"]}
    if kind == "chat":
        body = frame.get("body")
        if not isinstance(body, str) or not body.strip() or len(body) > services.MAX_CHAT_LENGTH:
            raise BadMessage(f'"body" must be 1 to {services.MAX_CHAT_LENGTH:,} characters.')
        return {"type": "chat", "body": body.strip()}
    if kind == "stats":
        return {"type": "stats", **{name: _number(frame.get(name), name) for name in services.QUALITY_FIELDS}}
    if kind == "admit":
        if not isinstance(frame.get("participant"), str):
            raise BadMessage('"participant" must be a participant id.')
        return {"type": "admit", "participant": frame["participant"]}
    if kind == "ping":
        return {"type": "ping", "t": frame.get("t") if isinstance(frame.get("t"), int | float) else None}
    if kind == "auth":
        if not isinstance(frame.get("token"), str):
            raise BadMessage('"token" must be an access token.')
        return {"type": "auth", "token": frame["token"]}
    if kind in ("renegotiate", "typing", "hangup", "end"):
        return {"type": kind}
    if kind == "recording_consent":  # recording
        if not isinstance(frame.get("consent"), bool):
            raise BadMessage('"consent" must be true or false.')
        return {"type": kind, "consent": frame["consent"]}
    raise BadMessage(f'Unknown frame type "{kind[:40]}".')


@database_sync_to_async
def _user_from_token(token: str):
    from accounts.tokens import SessionBoundJWTAuthentication

    authenticator = SessionBoundJWTAuthentication()
    try:
        return authenticator.get_user(authenticator.get_validated_token(token.encode()))
    except Exception:  # any invalid, expired or revoked token is simply "not authenticated"
        return None


class ConsultationConsumer(ChannelLayerOutageMixin, NoConnectionHopMixin, AsyncJsonWebsocketConsumer):
    socket_kind = "consultation"

    async def layer_lost(self) -> None:
        """Closed with 4503 because Redis went away mid-call: the leaving is recorded."""
        if getattr(self, "participation", None) is not None:
            await self.disconnect(4503)

    async def connect(self) -> None:
        self.room: str = self.scope["url_route"]["kwargs"]["room"]
        self.group = f"consultation.{self.room}"
        self.participation: Participation | None = None
        self.consultation = None
        self.admitted = False
        self.hung_up = False
        self.recent: deque[float] = deque()
        self.last_stats = 0.0
        self.auth_timer: asyncio.TimerHandle | None = None
        await self.accept()
        token = parse_qs(self.scope.get("query_string", b"").decode()).get("token", [""])[0]
        user = await _user_from_token(token) if token else self.scope.get("user")
        self.by_token = bool(token)
        self.guest_invite_id: str | None = None
        if user is not None and user.is_authenticated:
            await self.join(user)
        elif not token and await self.opened_guest_invite():
            await self.join_as_guest()
        elif token:
            await self.refuse(services.Refusal(4401, "WS_UNAUTHENTICATED", "The access token is invalid or has expired."))
        else:  # mobile clients may authenticate with their first frame
            self.auth_timer = asyncio.get_running_loop().call_later(AUTH_TIMEOUT_SECONDS, lambda: asyncio.ensure_future(self.auth_timeout()))

    async def opened_guest_invite(self) -> str | None:
        """The invitation this browser opened for this room (views.guest_invitation), if any. Read
        only for a socket that is not the doctor's or the patient's: loading the session is a hop
        to the database thread that their sockets need not pay."""
        if self.by_token:
            return None
        session = self.scope.get("session")
        if session is not None:
            self.guest_invite_id = await database_sync_to_async(lambda: session.get(services.GUEST_SESSION_KEY, {}).get(self.room))()
        return self.guest_invite_id

    async def auth_timeout(self) -> None:
        if self.participation is None:
            await self.refuse(services.Refusal(4401, "WS_UNAUTHENTICATED", "Sign in to join the consultation."))

    async def refuse(self, refusal: services.Refusal) -> None:
        await self.send_json({"type": "error", "code": refusal.code, "message": refusal.message, **refusal.extra})
        await self.close(code=refusal.close_code)

    async def join(self, user) -> None:
        if self.auth_timer is not None:
            self.auth_timer.cancel()
        try:
            self.consultation, role = await database_sync_to_async(services.consultation_access)(room=self.room, user=user)
        except services.Refusal as refusal:
            if refusal.close_code == 4403 and await self.opened_guest_invite():  # a signed-in user invited as a guest
                await self.join_as_guest()
            else:
                await self.refuse(refusal)
            return
        self.participation = await database_sync_to_async(services.participant_connect)(consultation=self.consultation, user=user, role=role)
        await self.enter(ice_user=user)

    async def join_as_guest(self) -> None:
        try:
            self.consultation, invite = await database_sync_to_async(services.guest_access)(room=self.room, invite_id=self.guest_invite_id)
        except services.Refusal as refusal:
            await self.refuse(refusal)
            return
        self.participation = await database_sync_to_async(services.participant_connect)(
            consultation=self.consultation, guest=invite, role=Participation.Role.GUEST
        )
        await self.enter(ice_user=None)

    async def enter(self, *, ice_user) -> None:
        """The socket is someone's in the room now: join the group, greet, tell the others."""
        self.admitted = self.participation.admitted_at is not None
        if not await self.group_join(self.group):  # the channel layer is down: the page says so and retries (4503)
            return
        await self.send_json(await self.welcome(ice_user))
        await self.broadcast_presence()
        if self.admitted:
            await self.check_peers()

    def chat_history(self) -> list[dict[str, Any]]:
        """A guest reads the chat from when they were let in; the doctor and patient, all of it."""
        since = self.participation.admitted_at if self.participation.role == Participation.Role.GUEST else None
        return selectors.chat_history(self.consultation, since=since)

    @database_sync_to_async
    def welcome(self, user) -> dict[str, Any]:
        appointment = self.consultation.appointment
        appointment.refresh_from_db(fields=["status"])
        return {
            "type": "welcome",
            "you": selectors.participant_view(self.participation),
            "state": "admitted" if self.admitted else "waiting",
            "ice_servers": services.ice_servers(user=user, participation=self.participation),
            "appointment": {
                "id": str(appointment.public_id),
                "start": appointment.start.isoformat(),
                "end": appointment.end.isoformat(),
                "status": appointment.status,
            },
            "participants": selectors.participants(self.consultation),
            "chat": self.chat_history() if self.admitted else [],
            "recording": selectors.recording_state(self.consultation) if self.admitted else None,
        }

    async def disconnect(self, code: int) -> None:
        if self.auth_timer is not None:
            self.auth_timer.cancel()
        if self.participation is None:
            return
        self.participation = await database_sync_to_async(services.participant_disconnect)(participation=self.participation)
        view = await database_sync_to_async(selectors.participant_view)(self.participation)
        if view["state"] == "left" and not self.hung_up:  # dropped, not hung up: it may come back
            view["state"] = "reconnecting"
        try:
            await self.channel_layer.group_discard(self.group, self.channel_name)
            await self.channel_layer.group_send(self.group, {"type": "room.presence", "participant": view})
        except RedisError:  # Redis is down: nobody can be told; the others read the state when they reconnect
            pass

    # --- Incoming frames ---------------------------------------------------------------------

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        if not self.allow_frame():
            await self.refuse(services.Refusal(4429, "WS_RATE_LIMITED", "Too many messages: the connection is closed."))
            return
        if text_data is None or len(text_data.encode()) > settings.CONSULTATION_MAX_FRAME_BYTES:
            await self.error("Frames are JSON text of at most 64 KiB.")
            return
        try:
            frame = clean_frame(json.loads(text_data))
        except (BadMessage, ValueError) as exc:
            await self.error(str(exc) if isinstance(exc, BadMessage) else "The frame is not valid JSON.")
            return
        await self.handle(frame)

    def allow_frame(self) -> bool:
        now = time.monotonic()
        while self.recent and now - self.recent[0] > 10:
            self.recent.popleft()
        self.recent.append(now)
        return len(self.recent) <= settings.CONSULTATION_MAX_MESSAGES_PER_10S

    async def error(self, message: str, code: str = "WS_BAD_MESSAGE") -> None:
        await self.send_json({"type": "error", "code": code, "message": message})

    async def handle(self, frame: dict[str, Any]) -> None:
        kind = frame["type"]
        if self.participation is None:
            if kind != "auth":
                await self.error("Authenticate first.", "WS_UNAUTHENTICATED")
                return
            user = await _user_from_token(frame["token"])
            if user is None:
                await self.refuse(services.Refusal(4401, "WS_UNAUTHENTICATED", "The access token is invalid or has expired."))
                return
            await self.join(user)
            return
        if not self.admitted and kind not in WAITING_ALLOWED:
            await self.error("Wait until the doctor lets you in.")
            return
        me = str(self.participation.public_id)
        if kind == "ping":
            await self.send_json({"type": "pong", "t": frame["t"]})
        elif kind in RELAYED:
            await self.relay({**frame, "from": me})
        elif kind == "media":
            await database_sync_to_async(services.media_set)(participation=self.participation, audio=frame["audio"], video=frame["video"])
            await self.relay({**frame, "from": me})
        elif kind == "chat":
            await self.chat(frame["body"])
        elif kind == "stats":
            if time.monotonic() - self.last_stats >= STATS_INTERVAL_SECONDS:
                self.last_stats = time.monotonic()
                await database_sync_to_async(services.quality_record)(participation=self.participation, sample=frame)
        elif kind == "admit":
            await self.admit(frame["participant"])
        elif kind == "recording_consent":
            await self.recording_consent(frame["consent"])
        elif kind == "hangup":
            self.hung_up = True
            await self.recording_left()
            await self.relay({"type": "hangup", "from": me})
            await self.close(code=1000)
        elif kind == "end":
            await self.end()
        elif kind == "auth":
            await self.error("Already authenticated.")

    async def relay(self, frame: dict[str, Any]) -> None:
        await self.channel_layer.group_send(self.group, {"type": "room.relay", "frame": frame, "sender": self.channel_name})

    async def chat(self, body: str) -> None:
        try:
            message = await database_sync_to_async(services.chat_post)(participation=self.participation, body=body)
        except ApplicationError as exc:
            await self.error(exc.message)
            return
        view = await database_sync_to_async(selectors.chat_view)(message)
        await self.channel_layer.group_send(self.group, {"type": "room.chat", "message": view})

    async def admit(self, participant_id: str) -> None:
        try:
            admitted = await database_sync_to_async(services.participant_admit)(
                consultation=self.consultation, by=self.participation, participant_id=participant_id
            )
        except ApplicationError as exc:
            await self.error(exc.message, "WS_FORBIDDEN" if exc.code == "AUTH_010" else "WS_BAD_MESSAGE")
            return
        await self.channel_layer.group_send(self.group, {"type": "room.admitted", "participant": str(admitted.public_id)})

    async def end(self) -> None:
        try:
            consultation = await database_sync_to_async(services.consultation_end)(consultation=self.consultation, by=self.participation)
        except ApplicationError as exc:
            await self.error(exc.message, "WS_FORBIDDEN")
            return
        await self.channel_layer.group_send(
            self.group, {"type": "room.ended", "by": str(self.participation.public_id), "ended_at": consultation.ended_at.isoformat()}
        )

    async def broadcast_presence(self) -> None:
        view = await database_sync_to_async(selectors.participant_view)(self.participation)
        await self.channel_layer.group_send(self.group, {"type": "room.presence", "participant": view})

    async def check_peers(self) -> None:
        """When two admitted participants are connected, the call can start: the consultation
        begins (first time) and the doctor's side is told to make the offer."""
        await database_sync_to_async(services.consultation_start_if_ready)(consultation=self.consultation)
        connected = await database_sync_to_async(lambda: self.consultation.participations.filter(sockets__gt=0, admitted_at__isnull=False).count())()
        if connected >= 2:
            await self.channel_layer.group_send(self.group, {"type": "room.peer_ready", "participant": str(self.participation.public_id)})

    # --- Group events (one per frame type the room sends) --------------------------------------

    async def room_relay(self, event: dict[str, Any]) -> None:
        to = event["frame"].get("to")
        if event["sender"] != self.channel_name and self.admitted and (to is None or to == str(self.participation.public_id)):
            await self.send_json(event["frame"])

    async def room_chat(self, event: dict[str, Any]) -> None:
        if self.admitted:
            await self.send_json({"type": "chat", **event["message"]})

    async def room_presence(self, event: dict[str, Any]) -> None:
        if self.participation is not None and event["participant"]["id"] != str(self.participation.public_id):
            await self.send_json({"type": "presence", "participant": event["participant"]})

    async def room_admitted(self, event: dict[str, Any]) -> None:
        if self.participation is None or event["participant"] != str(self.participation.public_id):
            return
        self.admitted = True
        self.participation = await database_sync_to_async(Participation.objects.get)(pk=self.participation.pk)
        history = await database_sync_to_async(self.chat_history)()
        recording = await database_sync_to_async(selectors.recording_state)(self.consultation)
        await self.send_json({"type": "admitted", "chat": history, "recording": recording})
        await self.broadcast_presence()
        await self.check_peers()

    async def room_peer_ready(self, event: dict[str, Any]) -> None:
        if self.admitted:
            await self.send_json({"type": "peer_ready", "participant": event["participant"]})

    async def room_revoked(self, event: dict[str, Any]) -> None:
        if self.participation is not None and event["participant"] == str(self.participation.public_id):
            self.hung_up = True
            await self.refuse(services.Refusal(4403, "WS_FORBIDDEN", "Your invitation to this consultation was withdrawn."))

    async def room_ended(self, event: dict[str, Any]) -> None:
        await self.send_json({"type": "ended", "by": event["by"], "ended_at": event["ended_at"]})
        self.hung_up = True
        await self.close(code=4000)

    # --- Recording consent (services.recording_*; docs/signaling.md "Recording") ---------------

    async def recording_consent(self, consent: bool) -> None:
        """Give or withdraw consent; the service stores it and tells the room ("recording")."""
        try:
            await database_sync_to_async(services.recording_consent_set)(participation=self.participation, consent=consent)
        except ApplicationError as exc:
            codes = {"CONS_011": "WS_FORBIDDEN", "FEAT_001": "WS_FEATURE_OFF"}
            await self.error(exc.message, codes.get(exc.code, "WS_BAD_MESSAGE"))

    async def recording_left(self) -> None:
        """Hanging up ends this participant's consent (a running recording stops)."""
        if self.admitted:
            await database_sync_to_async(services.recording_participant_left)(participation=self.participation)

    async def room_recording(self, event: dict[str, Any]) -> None:
        if self.admitted:
            await self.send_json({"type": "recording", **event["state"]})
