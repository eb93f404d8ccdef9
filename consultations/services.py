"""Consultation rooms: who may join, presence, admission, start and end, chat and quality.

Called by the websocket consumer (through ``database_sync_to_async``), the API and the pages.
Every state change locks the consultation row, so two sockets arriving at once (the doctor and
the patient, or one person reconnecting) see one consistent room.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import time
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any
from zoneinfo import ZoneInfo

from django.conf import settings
from django.db import transaction
from django.urls import reverse
from django.utils import timezone
from django.utils.formats import date_format

from accounts.models import User
from appointments import services as appointment_services
from appointments.models import Appointment
from medimeet.core.audit import audit_record
from medimeet.core.errors import ApplicationError
from medimeet.core.events import group_send_on_commit

from .models import ChatMessage, Consultation, GuestInvite, Participation, PresenceEvent, QualitySample

ACTIVE_APPOINTMENT_STATUSES = (Appointment.Status.CONFIRMED, Appointment.Status.IN_PROGRESS)
GUEST_SESSION_KEY = "consultation_guests"  # room → the invitation this browser opened
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
    consultation = _room(room)
    role = role_of(user, consultation.appointment)
    if role is None or user.is_blocked:
        raise Refusal(4403, "WS_FORBIDDEN", "Only the doctor and the patient of this appointment can join.")
    _check_open(consultation)
    return consultation, role


def guest_access(*, room: str, invite_id: str | None) -> tuple[Consultation, GuestInvite]:
    """The guest whose browser opened an invitation to ``room`` (its id is in their session)."""
    if not invite_id:
        raise Refusal(4401, "WS_UNAUTHENTICATED", "Open your invitation link to join the consultation.")
    consultation = _room(room)
    invite = GuestInvite.objects.filter(consultation=consultation, public_id=invite_id, used_at__isnull=False).first()
    if invite is None or invite.revoked_at is not None:
        raise Refusal(4403, "WS_FORBIDDEN", "Your invitation to this consultation was withdrawn.")
    _check_open(consultation)
    return consultation, invite


def _room(room: str) -> Consultation:
    consultation = Consultation.objects.select_related("appointment__doctor__user", "appointment__patient", "appointment__service").filter(room=room).first()
    if consultation is None:
        raise Refusal(4404, "WS_NOT_FOUND", "There is no such consultation room.")
    return consultation


def _check_open(consultation: Consultation) -> None:
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


def participant_connect(*, consultation: Consultation, role: str, user: User | None = None, guest: GuestInvite | None = None) -> Participation:
    """A socket arrived (a user's, or a guest's): record it. The doctor is admitted at once;
    someone admitted before is admitted again (a reconnection); anyone else waits for the doctor."""
    now = timezone.now()
    with transaction.atomic():
        Consultation.objects.select_for_update().filter(pk=consultation.pk).first()
        who = {"guest": guest} if guest is not None else {"user": user}
        participation, _ = Participation.objects.get_or_create(consultation=consultation, **who, defaults={"role": role})
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


def _token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def guest_invite_create(*, consultation: Consultation, by: User, name: str, relationship: str, email: str = "") -> tuple[GuestInvite, str]:
    """The doctor or the patient invites one guest. Returns the invitation and the link's token,
    which is shown (and emailed) once and only stored as a hash."""
    appointment = consultation.appointment
    if role_of(by, appointment) is None:
        raise ApplicationError("CONS_001")
    name = " ".join((name or "").split())
    if not name or len(name) > 80:
        raise ApplicationError("REQ_001", "The guest's name has 1 to 80 characters.", fields={"name": ["The guest's name has 1 to 80 characters."]})
    if relationship not in GuestInvite.Relationship.values:
        raise ApplicationError("REQ_001", "Say who the guest is.", fields={"relationship": [f"One of: {', '.join(GuestInvite.Relationship.values)}."]})
    token = secrets.token_urlsafe(32)
    with transaction.atomic():
        consultation = Consultation.objects.select_for_update().select_related("appointment").get(pk=consultation.pk)
        closes = consultation.join_window()[1]
        if consultation.status == Consultation.Status.ENDED or consultation.appointment.status not in ACTIVE_APPOINTMENT_STATUSES or closes <= timezone.now():
            raise ApplicationError("CONS_003")
        if consultation.guest_invites.active().exists():
            raise ApplicationError("CONS_004")
        invite = GuestInvite.objects.create(
            consultation=consultation, invited_by=by, name=name, relationship=relationship, email=email, token_hash=_token_hash(token), expires_at=closes
        )
        audit_record(
            action="consultation.guest_invited", actor=by, target=consultation, subject_user=appointment.patient, metadata={"invite": str(invite.public_id)}
        )
        if email:
            from medimeet.core.notifications import email_send_template

            email_send_template(
                to=[email],
                template="consultations/email/guest_invitation",
                context={
                    "invite": invite,
                    "doctor": appointment.doctor.display_name,
                    "inviter": by.display_name,
                    "link": guest_link(token),
                    # The guest has no account (no time zone of their own): the inviter's, named.
                    "local_start": date_format(appointment.start.astimezone(ZoneInfo(by.timezone)), "l j F Y, H:i"),
                    "timezone_name": by.timezone,
                },
            )
    return invite, token


def guest_link(token: str) -> str:
    return settings.SITE_URL + reverse("consultations:guest-invitation", args=[token])


def guest_invite_find(*, token: str) -> GuestInvite:
    invite = (
        GuestInvite.objects.select_related("invited_by", "consultation__appointment__doctor__user", "consultation__appointment__service")
        .filter(token_hash=_token_hash(token))
        .first()
    )
    if invite is None:
        raise ApplicationError("CONS_005")
    return invite


def guest_invite_redeem(*, token: str, already_mine: bool = False) -> GuestInvite:
    """Open the one-time link: the first browser to do so keeps it (``already_mine``: this
    browser opened it before, e.g. a reload). Revoked or expired links are refused."""
    invite = guest_invite_find(token=token)
    if invite.revoked_at is not None:
        raise ApplicationError("CONS_006", "This invitation was withdrawn.")
    if already_mine:
        return invite
    if invite.expires_at <= timezone.now():
        raise ApplicationError("CONS_006", "This invitation has expired: the consultation room has closed.")
    claimed = GuestInvite.objects.filter(pk=invite.pk, used_at__isnull=True, revoked_at__isnull=True).update(used_at=timezone.now())
    if not claimed:
        raise ApplicationError("CONS_006", "This invitation link has already been used. Ask for a new one.")
    invite.refresh_from_db(fields=["used_at"])
    return invite


def guest_invite_revoke(*, invite: GuestInvite, by: User) -> GuestInvite:
    """Withdraw an invitation; a guest in the room is disconnected."""
    if role_of(by, invite.consultation.appointment) is None:
        raise ApplicationError("CONS_001")
    with transaction.atomic():
        updated = GuestInvite.objects.filter(pk=invite.pk, revoked_at__isnull=True).update(revoked_at=timezone.now())
        invite.refresh_from_db(fields=["revoked_at"])
        if updated:
            audit_record(action="consultation.guest_revoked", actor=by, target=invite.consultation, metadata={"invite": str(invite.public_id)})
            participation = Participation.objects.filter(guest=invite).first()
            if participation is not None:
                group_send_on_commit(f"consultation.{invite.consultation.room}", {"type": "room.revoked", "participant": str(participation.public_id)})
    return invite


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


def ice_servers(*, user: User | None, participation: Participation | None = None) -> list[dict[str, Any]]:
    """STUN servers as configured; TURN with time-limited credentials when TURN_SECRET is set
    (coturn's REST API: username "<expiry>:<user id>", password base64(HMAC-SHA1(secret, username))).
    A guest, who has no account, is named by their participation id."""
    servers: list[dict[str, Any]] = []
    if settings.STUN_URLS:
        servers.append({"urls": list(settings.STUN_URLS)})
    if settings.TURN_URLS and settings.TURN_SECRET:
        identity = user.public_id if user is not None else participation.public_id
        username = f"{int(time.time()) + settings.TURN_CREDENTIAL_TTL_SECONDS}:{identity}"
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
