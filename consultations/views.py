"""The consultation pages: the video room and the pre-meeting check. Both are for the
appointment's doctor and patient only; everyone else gets a 404 (the room id is not revealed
to exist). The websocket (consumers.py) decides again on every connection."""

from __future__ import annotations

from django.conf import settings
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse, StreamingHttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_http_methods

from medimeet.core.errors import ApplicationError

from . import selectors, services
from .models import Consultation, Recording

CHECKS = [
    ("camera", "Camera"),
    ("microphone", "Microphone"),
    ("speaker", "Speakers"),
    ("server", "Connection to MediMeet"),
    ("network", "Route for the video"),
]


def _participant_room(request: HttpRequest, room: str) -> tuple[Consultation, str]:
    consultation = selectors.consultations_for(user=request.user).filter(room=room).first()
    role = services.role_of(request.user, consultation.appointment) if consultation else None
    if role is None:  # staff see every consultation in the admin, not in the room
        raise Http404
    return consultation, role


def _refusal(request: HttpRequest, room: str) -> services.Refusal | None:
    """Why the room cannot be joined now (the socket's own reasons), or None when it can."""
    try:
        services.consultation_access(room=room, user=request.user)
    except services.Refusal as refusal:
        return refusal
    return None


def _page_context(consultation: Consultation, role: str, refusal: services.Refusal | None) -> dict:
    appointment = consultation.appointment
    opens_at, closes_at = consultation.join_window()
    return {
        "consultation": consultation,
        "appointment": appointment,
        "role": role,
        "other_name": appointment.patient.display_name if role == "doctor" else appointment.doctor.display_name,
        "can_invite": role in ("doctor", "patient"),
        "refusal": refusal,
        "opens_at": opens_at,
        "closes_at": closes_at,
        "not_open_yet": refusal is not None and refusal.code == "WS_OUTSIDE_WINDOW" and timezone.now() < opens_at,
    }


@never_cache
@login_required
def room(request: HttpRequest, room: str) -> HttpResponse:
    """The video room; when it cannot be joined now, the reason instead of the call."""
    consultation, role = _participant_room(request, room)
    context = _page_context(consultation, role, _refusal(request, room))
    context["socket_path"] = f"/ws/consultations/{consultation.room}/"
    return render(request, "consultations/room.html", context)


@never_cache
@login_required
def check(request: HttpRequest, room: str) -> HttpResponse:
    """Camera, microphone, speakers and network, tested before the consultation (any time)."""
    consultation, role = _participant_room(request, room)
    context = _page_context(consultation, role, _refusal(request, room))
    context["ice_servers"] = services.ice_servers(user=request.user)
    context["check_socket_path"] = "/ws/network-check/"
    context["checks"] = CHECKS
    return render(request, "consultations/check.html", context)


def _guest_invites(request: HttpRequest) -> dict[str, str]:
    return request.session.get(services.GUEST_SESSION_KEY, {})


@never_cache
@require_http_methods(["GET", "POST"])
def guest_invitation(request: HttpRequest, token: str) -> HttpResponse:
    """The link a guest receives. Opening it (GET) only shows the invitation, so mail scanners
    and link previews do not use it up; "Join" (POST) claims it for this browser."""
    try:
        invite = services.guest_invite_find(token=token)
        room = invite.consultation.room
        mine = _guest_invites(request).get(room) == str(invite.public_id)
        if request.method == "POST":
            invite = services.guest_invite_redeem(token=token, already_mine=mine)
            request.session[services.GUEST_SESSION_KEY] = {**_guest_invites(request), room: str(invite.public_id)}
            return redirect("consultations:guest-room", room=room)
        problem = None if mine else services.guest_invite_problem(invite)
    except ApplicationError as error:
        return render(request, "consultations/guest_invitation.html", {"problem": error.message}, status=error.status_code)
    appointment = invite.consultation.appointment
    opens_at, closes_at = invite.consultation.join_window()
    return render(
        request,
        "consultations/guest_invitation.html",
        {
            "invite": invite,
            "appointment": appointment,
            "opens_at": opens_at,
            "closes_at": closes_at,
            "problem": problem,
            "reopening": mine,
            "page_timezone": invite.invited_by.timezone,  # the guest has no account: the inviter's zone, named
        },
        status=410 if problem else 200,
    )


@never_cache
def guest_room(request: HttpRequest, room: str) -> HttpResponse:
    """The video room for a guest whose browser opened their invitation."""
    invite_id = _guest_invites(request).get(room)
    invite = selectors.guest_invite_opened(room=room, invite_id=invite_id) if invite_id else None
    if invite is None:
        raise Http404
    consultation = invite.consultation
    try:
        services.guest_access(room=room, invite_id=invite_id)
        refusal = None
    except services.Refusal as exc:
        refusal = exc
    context = _page_context(consultation, "guest", refusal)
    context["socket_path"] = f"/ws/consultations/{consultation.room}/"
    context["page_timezone"] = invite.invited_by.timezone
    context["guest"] = invite
    return render(request, "consultations/room.html", context)
# --- Recording (optional, with consent) -------------------------------------------------------

RECORDING_EXTENSIONS = {"webm": "webm", "mp4": "mp4", "ogg": "ogg"}


def recording_file_response(recording: Recording, *, action: str, user, request: HttpRequest, metadata: dict | None = None) -> StreamingHttpResponse:
    """Stream a recording's media, decrypted chunk by chunk in order, as an attachment; the
    access is audited first. Raises ApplicationError when there is nothing to download."""
    services.recording_check_downloadable(recording=recording)
    chunks = selectors.recording_chunk_names(recording)  # read now: the stream itself needs no database
    services.recording_audit_access(recording=recording, action=action, user=user, request=request, metadata=metadata)
    subtype = recording.mime_type.split(";")[0].split("/")[-1]
    response = StreamingHttpResponse(selectors.recording_media(chunks), content_type=recording.mime_type)
    response["Content-Length"] = str(sum(size for _name, size in chunks))
    # No names in the file name: it ends up in download folders and browser histories.
    response["Content-Disposition"] = (
        f'attachment; filename="consultation-recording-{recording.started_at:%Y%m%d-%H%M}.{RECORDING_EXTENSIONS.get(subtype, "bin")}"'
    )
    response["Cache-Control"] = "private, no-store"
    return response


@never_cache
def recording_shared(request: HttpRequest, token: str) -> HttpResponse:
    """A signed, time-limited link to a recording: downloads it without signing in while the
    link is valid (every use audited); otherwise a page that says why."""
    try:
        recording_id, link_id = services.recording_link_open(token=token)
        recording = Recording.objects.select_related("consultation__appointment__patient").filter(public_id=recording_id).first()
        if recording is None:
            raise ApplicationError("CONS_010")
        return recording_file_response(recording, action="recording.link_used", user=request.user, request=request, metadata={"link": link_id})
    except ApplicationError as exc:
        return render(
            request,
            "consultations/recording_link.html",
            {"code": exc.code, "retention_days": settings.CONSULTATION_RECORDING_RETENTION_DAYS},
            status=exc.status_code,
        )
