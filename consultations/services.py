"""Consultation rooms: who may join, presence, admission, start and end, chat and quality.

Called by the websocket consumer (through ``database_sync_to_async``), the API and the pages.
Every state change locks the consultation row, so two sockets arriving at once (the doctor and
the patient, or one person reconnecting) see one consistent room.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets
import time
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.core.files.base import ContentFile
from django.db import transaction
from django.db.models import F, Q
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext, gettext_lazy

from accounts.models import User
from appointments import services as appointment_services
from appointments.models import Appointment
from medimeet.core.audit import audit_record
from medimeet.core.crypto import encrypt_bytes
from medimeet.core.errors import ApplicationError
from medimeet.core.events import group_send_on_commit
from medimeet.core.flags import VIDEO_RECORDING, flag_active_for
from medimeet.core.links import LinkExpired, LinkInvalid, signed_link_open, signed_link_token

from .models import ChatMessage, Consultation, GuestInvite, Participation, PresenceEvent, QualitySample, Recording, RecordingChunk, RecordingConsent

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
        raise ApplicationError("AUTH_010", gettext("Only the doctor admits people to the consultation."))
    with transaction.atomic():
        participation = Participation.objects.select_for_update().filter(consultation=consultation, public_id=participant_id).first()
        if participation is None:
            raise ApplicationError("REQ_001", gettext("Nobody with that id is waiting."))
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
        raise ApplicationError("AUTH_010", gettext("Only the doctor ends the consultation for everyone."))
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
        raise ApplicationError("REQ_001", gettext("The guest's name has 1 to 80 characters."), fields={"name": [gettext("The guest's name has 1 to 80 characters.")]})
    if relationship not in GuestInvite.Relationship.values:
        raise ApplicationError("REQ_001", gettext("Say who the guest is."), fields={"relationship": [gettext("One of: %(values)s.") % {"values": ", ".join(GuestInvite.Relationship.values)}]})
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
            from medimeet.core.notifications.services import notify_address

            notify_address(
                to=email,
                event="consultation.guest_invitation",
                language=by.language,
                context={
                    "invite": invite,
                    "appointment": appointment,
                    "doctor": appointment.doctor.display_name,
                    "inviter": by.display_name,
                    "link": guest_link(token),
                    "zone": by.timezone,  # the guest has no account (no zone of their own): the inviter's, named
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


INVITE_USED = gettext_lazy("This invitation link has already been used. Ask for a new one.")


def guest_invite_problem(invite: GuestInvite) -> str | None:
    """Why the link can no longer be opened by a new browser, or None."""
    if invite.revoked_at is not None:
        return gettext("This invitation was withdrawn.")
    if invite.used_at is not None:
        return str(INVITE_USED)
    if invite.expires_at <= timezone.now():
        return gettext("This invitation has expired: the consultation room has closed.")
    return None


def guest_invite_redeem(*, token: str, already_mine: bool = False) -> GuestInvite:
    """Open the one-time link: the first browser to do so keeps it (``already_mine``: this
    browser opened it before, e.g. a reload). Revoked, used or expired links are refused."""
    invite = guest_invite_find(token=token)
    if already_mine and invite.revoked_at is None:
        return invite
    problem = guest_invite_problem(invite)
    if problem:
        raise ApplicationError("CONS_006", problem)
    claimed = GuestInvite.objects.filter(pk=invite.pk, used_at__isnull=True, revoked_at__isnull=True).update(used_at=timezone.now())
    if not claimed:  # another browser claimed it a moment ago
        raise ApplicationError("CONS_006", INVITE_USED)
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
        raise ApplicationError("REQ_001", gettext("A message has 1 to %(count)s characters.") % {"count": f"{MAX_CHAT_LENGTH:,}"})
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


OPENING_LATENESS = timedelta(minutes=10)  # a scan that ran late still tells people; later is pointless


def consultations_announce_opening(*, now: datetime | None = None) -> int:
    """Every minute (beat): when a video room opens (``CONSULTATION_JOIN_BEFORE_MINUTES``
    before the start), tell the doctor and the patient, with the link to join. Idempotent: one
    message per person, appointment and start time (a rescheduled appointment is told again),
    however often the scan runs and on however many workers. Returns the messages queued."""
    from medimeet.core.notifications import notify

    now = now or timezone.now()
    before = timedelta(minutes=settings.CONSULTATION_JOIN_BEFORE_MINUTES)
    due = Consultation.objects.filter(
        status=Consultation.Status.SCHEDULED,
        appointment__status=Appointment.Status.CONFIRMED,
        appointment__service__mode="video",
        appointment__start__lte=now + before,
        appointment__start__gt=now + before - OPENING_LATENESS,
    ).select_related("appointment__patient", "appointment__doctor__user", "appointment__service")
    queued = 0
    for consultation in due:
        appointment = consultation.appointment
        url = settings.SITE_URL + reverse("consultations:room", args=[consultation.room])
        for recipient, other, to_doctor in ((appointment.patient, appointment.doctor.user, False), (appointment.doctor.user, appointment.patient, True)):
            context = {"appointment": appointment, "to_doctor": to_doctor, "other_zone": other.timezone, "room_url": url}
            queued += len(notify(user=recipient, event="consultation.starting", context=context, dedupe_key=f"consultation-opening:{appointment.pk}:{appointment.start:%Y%m%dT%H%M}:{recipient.pk}"))
    return queued


def consultations_settle_no_shows() -> int:
    """Every minute (beat): consultations whose grace period has passed without a meeting."""
    cutoff = timezone.now() - timedelta(minutes=settings.CONSULTATION_NO_SHOW_MINUTES)
    due = Consultation.objects.filter(started_at__isnull=True, appointment__status=Appointment.Status.CONFIRMED, appointment__start__lte=cutoff)
    return sum(1 for consultation in due.select_related("appointment__doctor")[:200] if consultation_settle_no_show(consultation=consultation))


# --- Recording (optional, with consent) -------------------------------------------------------
# The doctor and the patient consent in the room (socket frame "recording_consent"); with both
# consents current and the consultation live, the recording participant's browser starts a
# Recording over the API and uploads MediaRecorder chunks, each encrypted before it is stored.
# Withdrawing consent (or leaving the call) stops the recording at once: later chunks are refused.

RECORDING_ROLES = (Participation.Role.DOCTOR, Participation.Role.PATIENT)
RECORDING_MIME_TYPE = re.compile(r"^(video|audio)/(webm|mp4|ogg)(;\s*codecs=\"?[A-Za-z0-9.,\s]+\"?)?$")
RECORDING_MAX_SEQ = 100_000
STALE_RECORDING_AFTER = timedelta(days=1)


def recording_group_notify(*, consultation: Consultation) -> None:
    """After commit, tell everyone admitted to the room its recording state (the "recording" frame)."""
    from .selectors import recording_state

    group_send_on_commit(f"consultation.{consultation.room}", lambda: {"type": "room.recording", "state": recording_state(consultation)})


def _recording_stop_active(*, consultation: Consultation, now, reason: str, actor: User | None) -> Recording | None:
    recording = Recording.objects.select_for_update().filter(consultation=consultation, status=Recording.Status.RECORDING).first()
    if recording is None:
        return None
    recording.status = Recording.Status.STOPPED
    recording.ended_at = max(now, recording.started_at)
    recording.save(update_fields=["status", "ended_at"])
    audit_record(action="recording.stopped", actor=actor, target=recording, subject_user=consultation.appointment.patient, metadata={"reason": reason})
    return recording


def _recording_stop_turned_off(recording: Recording) -> None:
    """Staff turned recording off while this one ran: it stops at its next chunk (what was
    stored stays, as after a withdrawal) and the room is told."""
    with transaction.atomic():
        consultation = Consultation.objects.select_for_update().select_related("appointment__patient").get(pk=recording.consultation_id)
        if _recording_stop_active(consultation=consultation, now=timezone.now(), reason="turned_off", actor=None):
            recording_group_notify(consultation=consultation)


def recording_feature_require(user: User) -> None:
    """Recording is offered only while the ``video-recording`` flag is on for this person."""
    if not flag_active_for(user, VIDEO_RECORDING):
        raise ApplicationError("FEAT_001", "Recording consultations is turned off.")


def recording_consent_set(*, participation: Participation, consent: bool, source: str = RecordingConsent.Source.ROOM) -> RecordingConsent | None:
    """The doctor or the patient (admitted) gives or withdraws consent to record. Every change is
    stored with its time; withdrawing stops a running recording. Repeating the current answer
    stores nothing (None). Everyone admitted is told the new state after commit."""
    if participation.role not in RECORDING_ROLES or participation.admitted_at is None:
        raise ApplicationError("CONS_011")
    if consent:  # withdrawing is always possible, also after recording was turned off
        recording_feature_require(participation.user)
    with transaction.atomic():
        consultation = Consultation.objects.select_for_update().select_related("appointment__patient").get(pk=participation.consultation_id)
        if consultation.status == Consultation.Status.ENDED and consent:
            raise ApplicationError("CONS_013")
        latest = RecordingConsent.objects.filter(consultation=consultation, role=participation.role).order_by("-at", "-pk").first()
        if (latest.consent if latest else False) == consent:
            return None
        now = timezone.now()
        change = RecordingConsent.objects.create(
            consultation=consultation, participation=participation, role=participation.role, consent=consent, source=source, at=now
        )
        audit_record(
            action="recording.consent_given" if consent else "recording.consent_withdrawn",
            actor=participation.user,
            target=consultation,
            subject_user=consultation.appointment.patient,
            metadata={"role": participation.role, "source": source},
        )
        if not consent:
            _recording_stop_active(consultation=consultation, now=now, reason=f"{participation.role}_withdrew", actor=participation.user)
        recording_group_notify(consultation=consultation)
    return change


def _recording_participation(*, consultation: Consultation, user: User) -> Participation:
    participation = Participation.objects.filter(consultation=consultation, user=user, role__in=RECORDING_ROLES, admitted_at__isnull=False).first()
    if participation is None:
        raise ApplicationError("CONS_011")
    return participation


def recording_start(*, consultation: Consultation, user: User, mime_type: str, request=None) -> Recording:
    """Start recording: only for the admitted doctor or patient, while the consultation is live
    and both currently consent (checked under the consultation's row lock, so a withdrawal
    cannot slip in between)."""
    mime_type = (mime_type or "").strip()
    if len(mime_type) > 100 or not RECORDING_MIME_TYPE.match(mime_type):
        raise ApplicationError("CONS_017", gettext("The recording's type must be a WebM, MP4 or Ogg media type."), fields={"mime_type": [gettext("Not a supported media type.")]})
    recording_feature_require(user)
    participation = _recording_participation(consultation=consultation, user=user)
    from .selectors import current_consents

    with transaction.atomic():
        consultation = Consultation.objects.select_for_update().select_related("appointment__patient").get(pk=consultation.pk)
        if consultation.status != Consultation.Status.LIVE:
            raise ApplicationError("CONS_013", gettext("Recording is possible only while the consultation is in progress."))
        if not all(current_consents(consultation).values()):
            raise ApplicationError("CONS_012")
        active = Recording.objects.filter(consultation=consultation, status=Recording.Status.RECORDING).first()
        if active is not None:
            raise ApplicationError("CONS_014", extra={"recording": str(active.public_id)})
        recording = Recording.objects.create(consultation=consultation, started_by=participation, mime_type=mime_type)
        audit_record(action="recording.started", actor=user, target=recording, subject_user=consultation.appointment.patient, request=request)
        recording_group_notify(consultation=consultation)
    return recording


def _chunk_name(recording: Recording, seq: int) -> str:
    return f"consultation-recordings/{recording.public_id}/{seq:06d}-{secrets.token_hex(4)}.bin"


def recording_chunk_store(*, recording: Recording, user: User, seq: int, data: bytes) -> tuple[RecordingChunk, bool]:
    """Store one chunk, encrypted. Idempotent per ``seq``: the same bytes again store nothing
    (False); different bytes under a stored ``seq`` are refused. Only the participant who
    started the recording, only while it runs, within the size limits."""
    if recording.started_by.user_id != user.pk:
        raise ApplicationError("CONS_021")
    if not 0 <= seq <= RECORDING_MAX_SEQ:
        raise ApplicationError("CONS_017", gettext("The chunk number must be between 0 and %(count)s.") % {"count": f"{RECORDING_MAX_SEQ:,}"})
    if not data:
        raise ApplicationError("CONS_017", gettext("The chunk is empty."))
    if len(data) > settings.CONSULTATION_RECORDING_MAX_CHUNK_BYTES:
        raise ApplicationError("CONS_016", gettext("A chunk may have at most %(count)s bytes.") % {"count": f"{settings.CONSULTATION_RECORDING_MAX_CHUNK_BYTES:,}"})
    digest = hashlib.sha256(data).hexdigest()
    existing = RecordingChunk.objects.filter(recording=recording, seq=seq).first()
    if existing is not None:  # a retried upload: answer without locking or writing anything
        if existing.sha256 != digest:
            raise ApplicationError("CONS_018")
        return existing, False
    if not flag_active_for(user, VIDEO_RECORDING):
        _recording_stop_turned_off(recording)
        recording_feature_require(user)
    storage = RecordingChunk._meta.get_field("file").storage
    # The file is written before the row (storage is not transactional) and removed again if
    # the row is not: a refused or failed chunk leaves nothing behind.
    name = storage.save(_chunk_name(recording, seq), ContentFile(encrypt_bytes(data)))
    try:
        with transaction.atomic():
            locked = Recording.objects.select_for_update().get(pk=recording.pk)
            if locked.status != Recording.Status.RECORDING:
                raise ApplicationError("CONS_015")
            if locked.bytes + len(data) > settings.CONSULTATION_RECORDING_MAX_BYTES:
                raise ApplicationError("CONS_016", gettext("A recording may have at most %(count)s bytes.") % {"count": f"{settings.CONSULTATION_RECORDING_MAX_BYTES:,}"})
            chunk, created = RecordingChunk.objects.get_or_create(recording=locked, seq=seq, defaults={"size": len(data), "sha256": digest, "file": name})
            if created:
                Recording.objects.filter(pk=locked.pk).update(bytes=F("bytes") + len(data), chunk_count=F("chunk_count") + 1)
    except BaseException:
        storage.delete(name)
        raise
    if not created:  # the same seq arrived twice at once: the other request stored it
        storage.delete(name)
        if chunk.sha256 != digest:
            raise ApplicationError("CONS_018")
    return chunk, created


def recording_finish(*, recording: Recording, user: User, request=None) -> Recording:
    """The recording participant is done: the recording is complete. Idempotent; a recording
    already stopped by a withdrawal stays stopped."""
    if recording.started_by.user_id != user.pk:
        raise ApplicationError("CONS_021")
    with transaction.atomic():
        consultation = Consultation.objects.select_for_update().select_related("appointment__patient").get(pk=recording.consultation_id)
        recording = Recording.objects.select_for_update().get(pk=recording.pk)
        if recording.status != Recording.Status.RECORDING:
            return recording
        recording.status = Recording.Status.COMPLETE
        recording.ended_at = max(timezone.now(), recording.started_at)
        recording.save(update_fields=["status", "ended_at"])
        audit_record(action="recording.finished", actor=user, target=recording, subject_user=consultation.appointment.patient, request=request)
        recording_group_notify(consultation=consultation)
    return recording


def recording_participant_left(*, participation: Participation) -> None:
    """Someone hung up: their consent ends with their presence (recorded as a withdrawal)."""
    if participation.role in RECORDING_ROLES and participation.admitted_at is not None:
        recording_consent_set(participation=participation, consent=False, source=RecordingConsent.Source.LEFT)


def recording_delete(*, recording: Recording, reason: str) -> bool:
    """Delete a recording's media (chunk files and rows); the row stays, marked deleted, as the
    record that it existed. Idempotent: False when it was already deleted."""
    with transaction.atomic():
        recording = Recording.objects.select_for_update().select_related("consultation__appointment__patient").get(pk=recording.pk)
        if recording.status == Recording.Status.DELETED:
            return False
        storage = RecordingChunk._meta.get_field("file").storage
        # Files first, inside the lock: if a deletion fails the row is not marked and the next run
        # tries again (deleting a file that is already gone is not an error).
        for name in recording.chunks.values_list("file", flat=True):
            storage.delete(name)
        recording.chunks.all().delete()
        now = timezone.now()
        recording.status = Recording.Status.DELETED
        recording.ended_at = recording.ended_at or max(now, recording.started_at)
        recording.deleted_at = now
        recording.save(update_fields=["status", "ended_at", "deleted_at"])
        audit_record(action="recording.deleted", target=recording, subject_user=recording.consultation.appointment.patient, metadata={"reason": reason})
    return True


def recordings_purge() -> int:
    """Hourly (beat): the retention policy. Finished recordings older than
    CONSULTATION_RECORDING_RETENTION_DAYS, and recordings never finished a day after their
    consultation ended (or its appointment's end, if it never ended), lose their media.
    Idempotent: a second run finds nothing. Returns how many were deleted."""
    now = timezone.now()
    expired = Recording.objects.filter(
        status__in=[Recording.Status.COMPLETE, Recording.Status.STOPPED], ended_at__lt=now - timedelta(days=settings.CONSULTATION_RECORDING_RETENTION_DAYS)
    )
    stale = Recording.objects.filter(status=Recording.Status.RECORDING).filter(
        Q(consultation__ended_at__lt=now - STALE_RECORDING_AFTER)
        | Q(consultation__ended_at__isnull=True, consultation__appointment__end__lt=now - STALE_RECORDING_AFTER)
    )
    deleted = sum(recording_delete(recording=r, reason="retention") for r in expired.only("pk")[:500])
    deleted += sum(recording_delete(recording=r, reason="never_finished") for r in stale.only("pk")[:500])
    return deleted


def recording_check_downloadable(*, recording: Recording) -> None:
    if recording.status == Recording.Status.DELETED:
        raise ApplicationError("CONS_020")
    if recording.status == Recording.Status.RECORDING:
        raise ApplicationError("CONS_019")
    if not recording.chunk_count:
        raise ApplicationError("CONS_010", gettext("This recording holds no media."))


def recording_audit_access(*, recording: Recording, action: str, user: User | None, request=None, metadata: dict | None = None) -> None:
    """Every access to a recording's media or to a link for it is audited (no PHI in metadata)."""
    audit_record(action=action, actor=user, target=recording, subject_user=recording.consultation.appointment.patient, request=request, metadata=metadata)


RECORDING_LINK_SALT = "consultations.recording-link"


def recording_link_create(*, recording: Recording, user: User, minutes: int, request=None) -> tuple[str, datetime]:
    """A signed, time-limited token that downloads the recording without signing in. It holds
    only the recording's opaque id, its lifetime and a link id (for the audit trail)."""
    recording_check_downloadable(recording=recording)
    link_id = secrets.token_hex(6)
    token = signed_link_token(salt=RECORDING_LINK_SALT, payload={"r": recording.public_id.hex, "l": link_id}, minutes=minutes)
    expires_at = timezone.now() + timedelta(minutes=minutes)
    recording_audit_access(recording=recording, action="recording.link_created", user=user, request=request, metadata={"link": link_id, "minutes": minutes})
    return token, expires_at


def recording_link_open(*, token: str) -> tuple[uuid.UUID, str]:
    """The recording id and link id of a valid token; ApplicationError CONS_022 when it has
    expired and CONS_010 when it was never valid."""
    try:
        payload = signed_link_open(salt=RECORDING_LINK_SALT, token=token)
        return uuid.UUID(hex=payload["r"]), str(payload["l"])
    except LinkExpired as exc:
        raise ApplicationError("CONS_022") from exc
    except (LinkInvalid, KeyError, TypeError, ValueError) as exc:
        raise ApplicationError("CONS_010") from exc
