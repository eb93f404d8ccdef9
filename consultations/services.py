"""Consultation rooms: who may join, presence, admission, start and end, chat and quality.

Called by the websocket consumer (through ``database_sync_to_async``), the API and the pages.
Every state change locks the consultation row, so two sockets arriving at once (the doctor and
the patient, or one person reconnecting) see one consistent room.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from accounts.models import User
from appointments import services as appointment_services
from appointments.models import Appointment
from medimeet.core.audit import audit_record
from medimeet.core.errors import ApplicationError

from .models import ChatMessage, Consultation, Participation, PresenceEvent, QualitySample

ACTIVE_APPOINTMENT_STATUSES = (Appointment.Status.CONFIRMED, Appointment.Status.IN_PROGRESS)
MAX_CHAT_LENGTH = 2000


@dataclass
class Refusal(Exception):
    """Why a socket may not join: the close code and the error sent before closing."""

    close_code: int
    code: str
    message: str
    extra: dict[str, Any] = field(default_factory=dict)


def consultation_ensure(*, appointment: Appointment) -> Consultation:
    """The appointment's room, created once (on confirmation, or on first use)."""
    consultation, _ = Consultation.objects.get_or_create(appointment=appointment)
    return consultation


def role_of(user: User, appointment: Appointment) -> str | None:
    """The user's role in the room: the appointment's party (Participation roles use the same words)."""
    return appointment.party(user)


def consultation_access(*, room: str, user: User | None) -> tuple[Consultation, str]:
    """Check that ``user`` may be in ``room`` now; raise ``Refusal`` with the reason otherwise."""
    if user is None or not user.is_authenticated:
        raise Refusal(4401, "WS_UNAUTHENTICATED", "Sign in to join the consultation.")
    consultation = Consultation.objects.select_related("appointment__doctor__user", "appointment__patient", "appointment__service").filter(room=room).first()
    if consultation is None:
        raise Refusal(4404, "WS_NOT_FOUND", "There is no such consultation room.")
    role = role_of(user, consultation.appointment)
    if role is None or user.is_blocked:
        raise Refusal(4403, "WS_FORBIDDEN", "Only the doctor and the patient of this appointment can join.")
    appointment = consultation.appointment
    if consultation.status == Consultation.Status.ENDED or appointment.status not in ACTIVE_APPOINTMENT_STATUSES:
        raise Refusal(4409, "WS_NOT_ACTIVE", f"This appointment is {appointment.get_status_display().lower()}.")
    opens, closes = consultation.join_window()
    now = timezone.now()
    if not opens <= now <= closes:
        raise Refusal(
            4410,
            "WS_OUTSIDE_WINDOW",
            "The consultation room opens 15 minutes before the appointment." if now < opens else "The consultation room has closed.",
            {"opens_at": opens.isoformat(), "closes_at": closes.isoformat()},
        )
    return consultation, role


def participant_connect(*, consultation: Consultation, user: User, role: str) -> Participation:
    """A socket arrived: record it. The doctor is admitted at once; a patient admitted before is
    admitted again (a reconnection); anyone else waits for the doctor."""
    now = timezone.now()
    with transaction.atomic():
        Consultation.objects.select_for_update().filter(pk=consultation.pk).first()
        participation, _ = Participation.objects.get_or_create(consultation=consultation, user=user, defaults={"role": role})
        participation.connections += 1
        participation.sockets += 1
        participation.first_joined_at = participation.first_joined_at or now
        participation.last_joined_at = now
        if role == Participation.Role.DOCTOR and participation.admitted_at is None:
            participation.admitted_at = now
        participation.save()
        PresenceEvent.objects.create(
            consultation=consultation, participation=participation, kind=PresenceEvent.Kind.JOINED if participation.admitted_at else PresenceEvent.Kind.WAITING
        )
    return participation


def participant_disconnect(*, participation: Participation) -> Participation:
    now = timezone.now()
    with transaction.atomic():
        participation = Participation.objects.select_for_update().get(pk=participation.pk)
        if participation.sockets:
            participation.sockets -= 1
            if participation.last_joined_at:
                participation.seconds_connected += int((now - participation.last_joined_at).total_seconds())
            participation.last_left_at = now
            participation.save(update_fields=["sockets", "seconds_connected", "last_left_at"])
            PresenceEvent.objects.create(consultation_id=participation.consultation_id, participation=participation, kind=PresenceEvent.Kind.LEFT)
    return participation


def participant_admit(*, consultation: Consultation, by: Participation, participant_id: str) -> Participation:
    if by.role != Participation.Role.DOCTOR:
        raise ApplicationError("AUTH_010", "Only the doctor admits people to the consultation.")
    with transaction.atomic():
        participation = Participation.objects.select_for_update().filter(consultation=consultation, public_id=participant_id).first()
        if participation is None:
            raise ApplicationError("REQ_001", "Nobody with that id is waiting.")
        if participation.admitted_at is None:
            participation.admitted_at = timezone.now()
            participation.save(update_fields=["admitted_at"])
            PresenceEvent.objects.create(consultation=consultation, participation=participation, kind=PresenceEvent.Kind.ADMITTED)
    return participation


def consultation_start_if_ready(*, consultation: Consultation) -> bool:
    """The first time the doctor and the patient are both admitted and connected, the
    consultation starts and the appointment moves to in progress. True when it just started."""
    with transaction.atomic():
        consultation = Consultation.objects.select_for_update().select_related("appointment__doctor__user").get(pk=consultation.pk)
        if consultation.started_at is not None:
            return False
        present = {p.role for p in consultation.participations.filter(sockets__gt=0, admitted_at__isnull=False)}
        if not {Participation.Role.DOCTOR, Participation.Role.PATIENT} <= present:
            return False
        consultation.started_at = timezone.now()
        consultation.status = Consultation.Status.LIVE
        consultation.save(update_fields=["started_at", "status", "updated_at"])
        appointment = consultation.appointment
        if appointment.status == Appointment.Status.CONFIRMED:
            appointment_services.appointment_set_status(appointment=appointment, by=appointment.doctor.user, status=Appointment.Status.IN_PROGRESS)
    return True


def consultation_end(*, consultation: Consultation, by: Participation) -> Consultation:
    """The doctor ends the consultation for everyone: the appointment is completed."""
    if by.role != Participation.Role.DOCTOR:
        raise ApplicationError("AUTH_010", "Only the doctor ends the consultation for everyone.")
    with transaction.atomic():
        consultation = Consultation.objects.select_for_update().select_related("appointment__doctor__user").get(pk=consultation.pk)
        if consultation.status == Consultation.Status.ENDED:
            return consultation
        now = timezone.now()
        consultation.status = Consultation.Status.ENDED
        consultation.started_at = consultation.started_at or now
        consultation.ended_at = now
        consultation.ended_by_id = by.user_id
        consultation.save(update_fields=["status", "started_at", "ended_at", "ended_by", "updated_at"])
        PresenceEvent.objects.create(consultation=consultation, participation=by, kind=PresenceEvent.Kind.ENDED)
        appointment = consultation.appointment
        doctor = appointment.doctor.user
        if appointment.status == Appointment.Status.CONFIRMED:
            appointment_services.appointment_set_status(appointment=appointment, by=doctor, status=Appointment.Status.IN_PROGRESS)
            appointment.refresh_from_db()
        if appointment.status == Appointment.Status.IN_PROGRESS:
            appointment_services.appointment_set_status(appointment=appointment, by=doctor, status=Appointment.Status.COMPLETED)
        audit_record(action="consultation.ended", actor=doctor, target=consultation, subject_user=appointment.patient)
    return consultation


def media_set(*, participation: Participation, audio: bool, video: bool) -> None:
    Participation.objects.filter(pk=participation.pk).update(audio=audio, video=video)


def chat_post(*, participation: Participation, body: str) -> ChatMessage:
    body = (body or "").strip()
    if not body or len(body) > MAX_CHAT_LENGTH:
        raise ApplicationError("REQ_001", f"A message has 1 to {MAX_CHAT_LENGTH:,} characters.")
    return ChatMessage.objects.create(consultation_id=participation.consultation_id, participation=participation, body=body)


QUALITY_FIELDS = ("rtt_ms", "packet_loss", "jitter_ms", "bitrate_kbps", "fps")


def quality_record(*, participation: Participation, sample: dict[str, float | None]) -> QualitySample:
    return QualitySample.objects.create(
        consultation_id=participation.consultation_id, participation=participation, **{k: sample.get(k) for k in QUALITY_FIELDS}
    )


def ice_servers(*, user: User) -> list[dict[str, Any]]:
    """STUN servers as configured; TURN with time-limited credentials when TURN_SECRET is set
    (coturn's REST API: username "<expiry>:<user id>", password base64(HMAC-SHA1(secret, username)))."""
    servers: list[dict[str, Any]] = []
    if settings.STUN_URLS:
        servers.append({"urls": list(settings.STUN_URLS)})
    if settings.TURN_URLS and settings.TURN_SECRET:
        username = f"{int(time.time()) + settings.TURN_CREDENTIAL_TTL_SECONDS}:{user.public_id}"
        credential = base64.b64encode(hmac.new(settings.TURN_SECRET.encode(), username.encode(), hashlib.sha1).digest()).decode()
        servers.append({"urls": list(settings.TURN_URLS), "username": username, "credential": credential})
    return servers


def consultation_settle_no_show(*, consultation: Consultation) -> str:
    """After the grace period, presence decides: the patient waited and the doctor never came →
    doctor no-show (full refund); the doctor waited and the patient never came → patient
    no-show (the cancellation policy applies). Returns what was decided ("" for nothing)."""
    appointment = consultation.appointment
    if consultation.started_at is not None or appointment.status != Appointment.Status.CONFIRMED:
        return ""
    came = {p.role for p in consultation.participations.filter(first_joined_at__isnull=False)}
    if Participation.Role.PATIENT in came and Participation.Role.DOCTOR not in came:
        party = "doctor"
    elif Participation.Role.DOCTOR in came and Participation.Role.PATIENT not in came:
        party = "patient"
    else:
        return ""  # nobody came (or both did without meeting): left for staff
    appointment_services.appointment_no_show(appointment=appointment, party=party, note=f"Presence: the {party} never joined the consultation room.")
    audit_record(action=f"consultation.{party}_no_show", target=consultation, subject_user=appointment.patient)
    return party


def consultations_settle_no_shows() -> int:
    """Every minute (beat): consultations whose grace period has passed without a meeting."""
    cutoff = timezone.now() - timedelta(minutes=settings.CONSULTATION_NO_SHOW_MINUTES)
    due = Consultation.objects.filter(started_at__isnull=True, appointment__status=Appointment.Status.CONFIRMED, appointment__start__lte=cutoff)
    return sum(1 for consultation in due.select_related("appointment__doctor")[:200] if consultation_settle_no_show(consultation=consultation))
