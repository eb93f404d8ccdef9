"""Consultations API: the rooms of your appointments (creating one if confirmation did not),
what a client needs to join (websocket URL, ICE servers, join window), and the chat export."""

from __future__ import annotations

from django.conf import settings
from django.urls import reverse
from django.utils.translation import gettext
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.response import Response
from rest_framework.views import APIView

from appointments.models import Appointment
from medimeet.core.api import StandardPagination, error_responses, valid_input
from medimeet.core.errors import ApplicationError

from . import selectors, services
from .models import Consultation, GuestInvite, Recording
from .views import recording_file_response


class ConsultationInput(serializers.Serializer):
    appointment = serializers.UUIDField(help_text="A confirmed appointment of yours (doctor or patient).")


class IceServerOutput(serializers.Serializer):
    urls = serializers.ListField(child=serializers.CharField())
    username = serializers.CharField(required=False)
    credential = serializers.CharField(required=False)


class ConsultationOutput(serializers.Serializer):
    room = serializers.CharField()
    appointment = serializers.UUIDField()
    status = serializers.ChoiceField(choices=Consultation.Status.choices)
    role = serializers.CharField(help_text="Your role in the room: doctor or patient (staff: empty).")
    websocket_url = serializers.CharField(help_text="Connect here; mobile clients add ?token=<access token> (docs/signaling.md).")
    opens_at = serializers.DateTimeField()
    closes_at = serializers.DateTimeField()
    can_join = serializers.BooleanField()
    refusal = serializers.CharField(allow_null=True, help_text="Why you cannot join now (WS_* code), or null.")
    ice_servers = IceServerOutput(many=True)
    started_at = serializers.DateTimeField(allow_null=True)
    ended_at = serializers.DateTimeField(allow_null=True)


class ChatOutput(serializers.Serializer):
    id = serializers.IntegerField()
    sender = serializers.CharField(source="from")
    name = serializers.CharField()
    body = serializers.CharField()
    sent_at = serializers.DateTimeField()


class GuestInviteInput(serializers.Serializer):
    name = serializers.CharField(max_length=80, help_text="How the room names the guest.")
    relationship = serializers.ChoiceField(choices=GuestInvite.Relationship.choices)
    email = serializers.EmailField(required=False, allow_blank=True, help_text="Send the link there too (optional).")


class GuestInviteOutput(serializers.Serializer):
    id = serializers.UUIDField(source="public_id")
    name = serializers.CharField()
    relationship = serializers.ChoiceField(choices=GuestInvite.Relationship.choices)
    email = serializers.CharField()
    state = serializers.ChoiceField(choices=["open", "used", "expired", "revoked"])
    invited_by = serializers.CharField(source="invited_by.display_name")
    created_at = serializers.DateTimeField()
    expires_at = serializers.DateTimeField()
    used_at = serializers.DateTimeField(allow_null=True)
    revoked_at = serializers.DateTimeField(allow_null=True)
    link = serializers.CharField(allow_null=True, help_text="The one-time link: only in the answer that creates the invitation.")


def guest_invite_output(invite: GuestInvite, *, link: str | None = None) -> dict:
    invite.link = link
    return GuestInviteOutput(invite).data


def consultation_output(consultation: Consultation, user) -> dict:
    opens, closes = consultation.join_window()
    try:
        services.consultation_access(room=consultation.room, user=user)
        refusal = None
    except services.Refusal as exc:
        refusal = exc.code
    ws_base = settings.SITE_URL.replace("https://", "wss://").replace("http://", "ws://")
    return {
        "room": consultation.room,
        "appointment": consultation.appointment.public_id,
        "status": consultation.status,
        "role": services.role_of(user, consultation.appointment) or "",
        "websocket_url": f"{ws_base}/ws/consultations/{consultation.room}/",
        "opens_at": opens,
        "closes_at": closes,
        "can_join": refusal is None,
        "refusal": refusal,
        "ice_servers": services.ice_servers(user=user) if refusal is None else [],
        "started_at": consultation.started_at,
        "ended_at": consultation.ended_at,
    }


def _consultation_for(request, room: str) -> Consultation:
    consultation = selectors.consultations_for(user=request.user).filter(room=room).first()
    if consultation is None:
        raise ApplicationError("CONS_001")
    return consultation


class ConsultationListView(APIView):
    pagination_class = StandardPagination  # what drf-spectacular documents the 200 as: one page
    @extend_schema(tags=["consultations"], responses={200: ConsultationOutput(many=True), **error_responses(401)})
    def get(self, request):
        """Rooms of your appointments, soonest first."""
        queryset = selectors.consultations_for(user=request.user).order_by("appointment__start")
        paginator = self.pagination_class()
        page = paginator.paginate_queryset(queryset, request, view=self)
        return paginator.get_paginated_response([consultation_output(c, request.user) for c in page])

    @extend_schema(tags=["consultations"], request=ConsultationInput, responses={201: ConsultationOutput, **error_responses(400, 401, 404, 409)})
    def post(self, request):
        """The room of a confirmed appointment (created if it does not exist yet)."""
        data = valid_input(ConsultationInput, request.data)
        appointment = Appointment.objects.select_related("doctor__user", "patient").filter(public_id=data["appointment"]).first()
        if appointment is None or services.role_of(request.user, appointment) is None:
            raise ApplicationError("APPT_006")
        if appointment.status not in services.ACTIVE_APPOINTMENT_STATUSES:
            raise ApplicationError("CONS_002", gettext("A %(status)s appointment has no consultation room.") % {"status": appointment.get_status_display().lower()})
        consultation = services.consultation_ensure(appointment=appointment)
        return Response(consultation_output(consultation, request.user), status=status.HTTP_201_CREATED)


class ConsultationDetailView(APIView):
    @extend_schema(tags=["consultations"], responses={200: ConsultationOutput, **error_responses(401, 404)})
    def get(self, request, room: str):
        return Response(consultation_output(_consultation_for(request, room), request.user))


class ConsultationChatView(APIView):
    @extend_schema(tags=["consultations"], responses={200: ChatOutput(many=True), **error_responses(401, 403, 404)})
    def get(self, request, room: str):
        """The room's chat, oldest first (the export kept with the appointment)."""
        consultation = _consultation_for(request, room)
        if request.user.is_staff and services.role_of(request.user, consultation.appointment) is None:
            raise ApplicationError("AUTH_010", gettext("Chat content is for the consultation's doctor and patient."))
        return Response(ChatOutput(selectors.chat_history(consultation, limit=10_000), many=True).data)


def _party_consultation(request, room: str) -> Consultation:
    """A room of the requester's own appointment (staff read consultations in the admin)."""
    consultation = _consultation_for(request, room)
    if services.role_of(request.user, consultation.appointment) is None:
        raise ApplicationError("CONS_001")
    return consultation


class ConsultationGuestsView(APIView):
    @extend_schema(tags=["consultations"], responses={200: GuestInviteOutput(many=True), **error_responses(401, 404)})
    def get(self, request, room: str):
        """Guest invitations of the room, newest first (the link itself is never shown again)."""
        consultation = _party_consultation(request, room)
        invites = consultation.guest_invites.select_related("invited_by")
        return Response([guest_invite_output(invite) for invite in invites])

    @extend_schema(tags=["consultations"], request=GuestInviteInput, responses={201: GuestInviteOutput, **error_responses(400, 401, 404, 409)})
    def post(self, request, room: str):
        """Invite one guest (an interpreter, a relative, a carer): a one-time link that works until
        the room closes; the doctor admits the guest from the waiting room."""
        consultation = _party_consultation(request, room)
        data = valid_input(GuestInviteInput, request.data)
        invite, token = services.guest_invite_create(consultation=consultation, by=request.user, **data)
        return Response(guest_invite_output(invite, link=services.guest_link(token)), status=status.HTTP_201_CREATED)


class ConsultationGuestView(APIView):
    @extend_schema(tags=["consultations"], responses={204: None, **error_responses(401, 404)})
    def delete(self, request, room: str, invite_id):
        """Withdraw an invitation; a guest already in the room is disconnected."""
        consultation = _party_consultation(request, room)
        invite = consultation.guest_invites.filter(public_id=invite_id).first()
        if invite is None:
            raise ApplicationError("CONS_005", gettext("No such invitation in this consultation."))
        services.guest_invite_revoke(invite=invite, by=request.user)
        return Response(status=status.HTTP_204_NO_CONTENT)
# --- Recording (optional, with consent) -------------------------------------------------------


class RecordingStartInput(serializers.Serializer):
    mime_type = serializers.CharField(max_length=100, help_text='What MediaRecorder produces, e.g. "video/webm;codecs=vp8,opus".')


class RecordingOutput(serializers.Serializer):
    id = serializers.UUIDField(source="public_id")
    status = serializers.ChoiceField(choices=Recording.Status.choices)
    started_by = serializers.CharField(source="started_by.role", help_text="doctor or patient")
    started_at = serializers.DateTimeField()
    ended_at = serializers.DateTimeField(allow_null=True)
    duration_seconds = serializers.SerializerMethodField()
    mime_type = serializers.CharField()
    bytes = serializers.IntegerField()
    chunks = serializers.IntegerField(source="chunk_count")
    deleted_at = serializers.DateTimeField(allow_null=True)
    download_url = serializers.SerializerMethodField(help_text="Null until the recording can be downloaded.")

    def get_duration_seconds(self, recording: Recording) -> int | None:
        return int(recording.duration.total_seconds()) if recording.duration is not None else None

    def get_download_url(self, recording: Recording) -> str | None:
        return reverse("api-v1:consultations:recording-download", args=[recording.public_id]) if recording.is_downloadable else None


class RecordingChunkOutput(serializers.Serializer):
    seq = serializers.IntegerField()
    size = serializers.IntegerField()
    stored = serializers.BooleanField(help_text="False when this seq had already been stored (a retry): nothing was written.")


class RecordingLinkInput(serializers.Serializer):
    minutes = serializers.IntegerField(min_value=1, default=60, help_text="How long the link works (at most CONSULTATION_RECORDING_LINK_MAX_MINUTES).")

    def validate_minutes(self, value: int) -> int:
        if value > settings.CONSULTATION_RECORDING_LINK_MAX_MINUTES:
            raise serializers.ValidationError(gettext("A link works for at most %(minutes)d minutes.") % {"minutes": settings.CONSULTATION_RECORDING_LINK_MAX_MINUTES})
        return value


class RecordingLinkOutput(serializers.Serializer):
    url = serializers.URLField()
    expires_at = serializers.DateTimeField()
    minutes = serializers.IntegerField()


def _room_recording(request, room: str, recording_id) -> Recording:
    recording = selectors.recordings_of(_consultation_for(request, room)).filter(public_id=recording_id).select_related("started_by__user").first()
    if recording is None:
        raise ApplicationError("CONS_010")
    return recording


def _visible_recording(request, recording_id) -> Recording:
    recording = selectors.recording_for(user=request.user, recording_id=recording_id)
    if recording is None:  # not yours, or no such recording: the same answer
        raise ApplicationError("CONS_010")
    return recording


class RecordingListView(APIView):
    @extend_schema(tags=["recordings"], responses={200: RecordingOutput(many=True), **error_responses(401, 403, 404)})
    def get(self, request, room: str):
        """The consultation's recordings, oldest first: for its doctor and patient (and staff
        with the consultations.view_recording permission)."""
        consultation = _consultation_for(request, room)
        role = services.role_of(request.user, consultation.appointment)
        if role is None and not request.user.has_perm("consultations.view_recording"):
            raise ApplicationError("AUTH_010", gettext("Recordings are for the consultation's doctor and patient."))
        return Response(RecordingOutput(selectors.recordings_of(consultation), many=True).data)

    @extend_schema(tags=["recordings"], request=RecordingStartInput, responses={201: RecordingOutput, **error_responses(400, 401, 403, 404, 409)})
    def post(self, request, room: str):
        """Start recording. Needs the doctor's and the patient's current consent (given in the
        room) and a consultation in progress; only the admitted doctor or patient may start."""
        data = valid_input(RecordingStartInput, request.data)
        recording = services.recording_start(consultation=_consultation_for(request, room), user=request.user, mime_type=data["mime_type"], request=request)
        return Response(RecordingOutput(recording).data, status=status.HTTP_201_CREATED)


class RecordingChunkView(APIView):
    @extend_schema(
        tags=["recordings"],
        request={"application/octet-stream": OpenApiTypes.BINARY},
        responses={200: RecordingChunkOutput, 201: RecordingChunkOutput, **error_responses(400, 401, 403, 404, 409, 413)},
    )
    def put(self, request, room: str, recording_id, seq: int):
        """Upload chunk ``seq`` (0, 1, 2, …) of a running recording as the raw request body
        (any content type). Idempotent: the same seq again answers 200 and stores nothing."""
        recording = _room_recording(request, room, recording_id)
        limit = settings.CONSULTATION_RECORDING_MAX_CHUNK_BYTES
        try:
            declared = int(request.META.get("CONTENT_LENGTH") or 0)
        except ValueError:
            declared = 0
        if declared > limit:  # refused before reading it
            raise ApplicationError("CONS_016", gettext("A chunk may have at most %(count)s bytes.") % {"count": f"{limit:,}"})
        data = request.stream.read(limit + 1) if request.stream is not None else b""
        chunk, created = services.recording_chunk_store(recording=recording, user=request.user, seq=seq, data=data)
        body = RecordingChunkOutput({"seq": chunk.seq, "size": chunk.size, "stored": created}).data
        return Response(body, status=status.HTTP_201_CREATED if created else status.HTTP_200_OK)


class RecordingFinishView(APIView):
    @extend_schema(tags=["recordings"], request=None, responses={200: RecordingOutput, **error_responses(401, 403, 404)})
    def post(self, request, room: str, recording_id):
        """The recording is complete (idempotent; a recording stopped by a withdrawal stays stopped)."""
        recording = services.recording_finish(recording=_room_recording(request, room, recording_id), user=request.user, request=request)
        return Response(RecordingOutput(recording).data)


class RecordingDownloadView(APIView):
    @extend_schema(
        tags=["recordings"],
        responses={(200, "video/webm"): OpenApiTypes.BINARY, **error_responses(401, 404, 409, 410)},
    )
    def get(self, request, recording_id):
        """The recording's media, decrypted as it streams, in its recorded type. For the
        appointment's doctor and patient and staff with consultations.view_recording; every
        download is audited."""
        recording = _visible_recording(request, recording_id)
        return recording_file_response(recording, action="recording.downloaded", user=request.user, request=request)


class RecordingLinkView(APIView):
    @extend_schema(tags=["recordings"], request=RecordingLinkInput, responses={201: RecordingLinkOutput, **error_responses(400, 401, 404, 409, 410)})
    def post(self, request, recording_id):
        """A time-limited signed link that downloads the recording without signing in (audited
        when created and each time it is used)."""
        recording = _visible_recording(request, recording_id)
        data = valid_input(RecordingLinkInput, request.data)
        token, expires_at = services.recording_link_create(recording=recording, user=request.user, minutes=data["minutes"], request=request)
        url = request.build_absolute_uri(reverse("consultations:recording-shared", args=[token]))
        return Response(RecordingLinkOutput({"url": url, "expires_at": expires_at, "minutes": data["minutes"]}).data, status=status.HTTP_201_CREATED)
