"""Reads about consultations: the room as a participant sees it."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from django.db.models import Q, QuerySet
from django.utils import timezone

from accounts.models import User
from appointments.models import Appointment

from .models import ChatMessage, Consultation, GuestInvite, Participation
from .services import ACTIVE_APPOINTMENT_STATUSES, role_of


def consultations_for(*, user: User) -> QuerySet[Consultation]:
    """Rooms the user takes part in (staff: all)."""
    queryset = Consultation.objects.select_related("appointment__doctor__user", "appointment__patient", "appointment__service")
    if user.is_staff:
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
