"""Reads about consultations: the room as a participant sees it."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime

from django.db.models import Q, QuerySet
from django.utils import timezone

from accounts.models import User
from appointments.models import Appointment
from medimeet.core.crypto import decrypt_bytes
from medimeet.core.roles import staff_can

from .models import ChatMessage, Consultation, GuestInvite, Participation, Recording, RecordingChunk, RecordingConsent
from .services import ACTIVE_APPOINTMENT_STATUSES, role_of


def consultations_for(*, user: User) -> QuerySet[Consultation]:
    """Rooms the user takes part in (staff with consultations.view_consultation: all)."""
    queryset = Consultation.objects.select_related("appointment__doctor__user", "appointment__patient", "appointment__service")
    if staff_can(user, "consultations.view_consultation"):
        return queryset
    return queryset.filter(Q(appointment__patient=user) | Q(appointment__doctor__user=user))


def guest_invite_opened(*, room: str, invite_id: str) -> GuestInvite | None:
    """The invitation to ``room`` that was opened in this browser (its id is in the session)."""
    return (
        GuestInvite.objects.select_related(
            "invited_by", "consultation__appointment__doctor__user", "consultation__appointment__patient", "consultation__appointment__service"
        )
        .filter(consultation__room=room, public_id=invite_id, used_at__isnull=False)
        .first()
    )


def display_name(participation: Participation) -> str:
    """How the room names someone: the doctor with their title, others by their name."""
    if participation.role == Participation.Role.DOCTOR:
        return participation.consultation.appointment.doctor.display_name
    if participation.role == Participation.Role.GUEST:
        return participation.guest.name
    return participation.user.display_name


def participant_view(participation: Participation) -> dict:
    view = {
        "id": str(participation.public_id),
        "role": participation.role,
        "name": display_name(participation),
        "state": participation.state,
        "media": {"audio": participation.audio, "video": participation.video},
    }
    if participation.role == Participation.Role.GUEST:
        view["relationship"] = participation.guest.get_relationship_display()
    return view


def participants(consultation: Consultation) -> list[dict]:
    return [participant_view(p) for p in consultation.participations.select_related("user", "guest", "consultation__appointment__doctor__user")]


def chat_history(consultation: Consultation, *, limit: int = 200, since: datetime | None = None) -> list[dict]:
    """The room's latest messages, oldest first; ``since``: only those sent from then on (a
    guest sees what was said after they were let in, not before)."""
    messages = ChatMessage.objects.filter(consultation=consultation)
    if since is not None:
        messages = messages.filter(sent_at__gte=since)
    messages = messages.select_related("participation__user", "participation__guest", "participation__consultation__appointment__doctor__user").order_by(
        "-sent_at", "-pk"
    )[:limit]
    return [chat_view(m) for m in reversed(list(messages))]


def chat_view(message: ChatMessage) -> dict:
    participation = message.participation
    return {
        "id": message.pk,
        "from": str(participation.public_id),
        "name": display_name(participation),
        "body": message.body,
        "sent_at": message.sent_at.isoformat(),
    }


@dataclass(frozen=True)
class JoinCard:
    """What the appointment page says about the video room to one of its two participants."""

    room: str
    role: str
    opens_at: datetime
    closes_at: datetime
    is_open: bool
    has_closed: bool


def join_card(*, appointment: Appointment, user: User, now: datetime | None = None) -> JoinCard | None:
    """The video room of a confirmed or in-progress appointment, for its doctor or patient only
    (staff and everyone else: None). One query: the consultation row."""
    role = role_of(user, appointment)
    if role is None or appointment.status not in ACTIVE_APPOINTMENT_STATUSES:
        return None
    consultation = Consultation.objects.filter(appointment=appointment).exclude(status=Consultation.Status.ENDED).only("room", "appointment_id").first()
    if consultation is None:
        return None
    consultation.appointment = appointment  # join_window() reads its start and end
    opens, closes = consultation.join_window()
    now = now or timezone.now()
    return JoinCard(room=consultation.room, role=role, opens_at=opens, closes_at=closes, is_open=opens <= now <= closes, has_closed=now > closes)


# --- Recording (optional, with consent) -------------------------------------------------------


def current_consents(consultation: Consultation) -> dict[str, bool]:
    """Each role's latest answer (no answer: no consent). One query."""
    consents = {"doctor": False, "patient": False}
    for role, consent in RecordingConsent.objects.filter(consultation=consultation).order_by("at", "pk").values_list("role", "consent"):
        consents[role] = consent
    return consents


def recording_state(consultation: Consultation) -> dict:
    """The room's recording state, as the "recording" frame carries it (docs/signaling.md)."""
    active = Recording.objects.filter(consultation=consultation, status=Recording.Status.RECORDING).select_related("started_by").first()
    return {
        "consents": current_consents(consultation),
        "active": str(active.public_id) if active else None,
        "started_by": str(active.started_by.public_id) if active else None,
        "started_at": active.started_at.isoformat() if active else None,
    }


def recording_access_role(*, user: User, recording: Recording) -> str | None:
    """Why ``user`` may see ``recording``: "doctor"/"patient" of its appointment, "staff" with
    the consultations.view_recording permission; None for everyone else."""
    if not user.is_authenticated:
        return None
    role = role_of(user, recording.consultation.appointment)
    if role in ("doctor", "patient"):
        return role
    if user.is_staff and user.has_perm("consultations.view_recording"):
        return "staff"
    return None


def recording_for(*, user: User, recording_id) -> Recording | None:
    """The recording if ``user`` may see it (None otherwise: its existence is not revealed)."""
    recording = (
        Recording.objects.select_related("consultation__appointment__doctor__user", "consultation__appointment__patient", "started_by__user")
        .filter(public_id=recording_id)
        .first()
    )
    if recording is None or recording_access_role(user=user, recording=recording) is None:
        return None
    return recording


def recordings_of(consultation: Consultation) -> QuerySet[Recording]:
    return Recording.objects.filter(consultation=consultation).select_related("started_by").order_by("started_at", "pk")


def recording_chunk_names(recording: Recording) -> list[tuple[str, int]]:
    """The stored (encrypted) chunk files in order, with their plaintext sizes."""
    return list(RecordingChunk.objects.filter(recording=recording).order_by("seq").values_list("file", "size"))


def recordings_for_appointment(*, appointment: Appointment, user: User) -> list[Recording] | None:
    """The appointment page's recordings, for its doctor and patient (None for anyone else)."""
    if role_of(user, appointment) not in ("doctor", "patient"):
        return None
    return list(Recording.objects.filter(consultation__appointment=appointment).select_related("started_by").order_by("started_at", "pk"))


def recording_media(chunks: list[tuple[str, int]]) -> Iterator[bytes]:
    """The recording's plaintext, chunk by chunk in order (decrypted one chunk at a time)."""
    storage = RecordingChunk._meta.get_field("file").storage
    for name, _size in chunks:
        with storage.open(name, "rb") as stored:
            yield decrypt_bytes(stored.read())
