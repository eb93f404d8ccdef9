"""Video consultations: one room per confirmed appointment, who joined when (the evidence),
chat, and connection quality.

The room id is the only thing a client needs to find the socket; it is long and random, and
knowing it is not enough: the consumer checks that the user is the appointment's doctor or
patient and that the join window is open (docs/signaling.md).
"""

from __future__ import annotations

import secrets
import uuid
from datetime import datetime, timedelta

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from appointments.models import Appointment
from medimeet.core.fields import EncryptedTextField
from medimeet.core.models import TimeStampedModel


def _room_id() -> str:
    return secrets.token_urlsafe(32)


class Consultation(TimeStampedModel):
    class Status(models.TextChoices):
        SCHEDULED = "scheduled", _("Scheduled")
        LIVE = "live", _("In progress")
        ENDED = "ended", _("Ended")

    appointment = models.OneToOneField(Appointment, on_delete=models.PROTECT, related_name="consultation")
    room = models.CharField(max_length=64, unique=True, default=_room_id, editable=False)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.SCHEDULED, db_index=True)
    started_at = models.DateTimeField(null=True, blank=True, db_index=True, help_text=_("When the doctor and the patient were first both in the room."))
    ended_at = models.DateTimeField(null=True, blank=True)
    ended_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=Q(ended_at__isnull=True) | Q(started_at__isnull=True) | Q(ended_at__gte=models.F("started_at")), name="consultation_ends_after_start"
            ),
        ]

    def __str__(self) -> str:
        return f"Consultation for {self.appointment}"

    def join_window(self) -> tuple[datetime, datetime]:
        appointment = self.appointment
        opens = appointment.start - timedelta(minutes=settings.CONSULTATION_JOIN_BEFORE_MINUTES)
        closes = appointment.end + timedelta(minutes=settings.CONSULTATION_GRACE_MINUTES)
        return opens, closes

    @property
    def duration(self) -> timedelta | None:
        return self.ended_at - self.started_at if self.started_at and self.ended_at else None


class GuestInviteQuerySet(models.QuerySet):
    def active(self) -> GuestInviteQuerySet:
        return self.filter(revoked_at__isnull=True)


class GuestInvite(models.Model):
    """A one-time link for one guest (an interpreter, a relative, a carer) chosen by the doctor
    or the patient. Only a hash of the link's token is stored; the link opens once, in one
    browser, until the room closes. The guest has no account and sees no records."""

    class Relationship(models.TextChoices):
        INTERPRETER = "interpreter", _("Interpreter")
        FAMILY = "family", _("Family member")
        CAREGIVER = "caregiver", _("Caregiver")
        OTHER = "other", _("Other")

    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    consultation = models.ForeignKey(Consultation, on_delete=models.CASCADE, related_name="guest_invites")
    invited_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    name = models.CharField(max_length=80)
    relationship = models.CharField(max_length=12, choices=Relationship.choices)
    email = models.EmailField(blank=True, help_text=_("Where the link was sent, if anywhere."))
    token_hash = models.CharField(max_length=64, unique=True, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)
    expires_at = models.DateTimeField()
    used_at = models.DateTimeField(null=True, blank=True, help_text=_("When the link was opened (it opens once)."))
    revoked_at = models.DateTimeField(null=True, blank=True)

    objects = GuestInviteQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(fields=["consultation"], condition=Q(revoked_at__isnull=True), name="guest_invite_one_active_per_consultation"),
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.get_relationship_display()})"

    @property
    def state(self) -> str:
        if self.revoked_at:
            return "revoked"
        if self.used_at:
            return "used"
        return "expired" if self.expires_at <= timezone.now() else "open"


class Participation(models.Model):
    """One person in one consultation: when they came and went, and what they have on. The
    doctor and the patient are users; a guest is their invite."""

    class Role(models.TextChoices):
        DOCTOR = "doctor", _("Doctor")
        PATIENT = "patient", _("Patient")
        GUEST = "guest", _("Guest")

    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    consultation = models.ForeignKey(Consultation, on_delete=models.CASCADE, related_name="participations")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="participations")
    guest = models.OneToOneField(GuestInvite, null=True, blank=True, on_delete=models.PROTECT, related_name="participation")
    role = models.CharField(max_length=10, choices=Role.choices)
    admitted_at = models.DateTimeField(null=True, blank=True)
    first_joined_at = models.DateTimeField(null=True, blank=True)
    last_joined_at = models.DateTimeField(null=True, blank=True)
    last_left_at = models.DateTimeField(null=True, blank=True)
    seconds_connected = models.PositiveIntegerField(default=0)
    connections = models.PositiveIntegerField(default=0, help_text=_("Sockets opened, reconnections included."))
    sockets = models.PositiveSmallIntegerField(default=0, help_text=_("Sockets open now."))
    audio = models.BooleanField(default=True)
    video = models.BooleanField(default=True)

    class Meta:
        ordering = ["consultation", "role"]
        constraints = [
            models.UniqueConstraint(fields=["consultation", "user"], name="participation_once_per_user"),
            models.CheckConstraint(
                condition=Q(role="guest", user__isnull=True, guest__isnull=False) | (~Q(role="guest") & Q(user__isnull=False, guest__isnull=True)),
                name="participation_is_a_user_or_a_guest",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.get_role_display()} in {self.consultation_id}"

    @property
    def state(self) -> str:
        if self.sockets:
            return "admitted" if self.admitted_at else "waiting"
        return "left" if self.first_joined_at else "absent"


class PresenceEvent(models.Model):
    """Every arrival, admission and departure, in order: the evidence for no-shows and disputes."""

    class Kind(models.TextChoices):
        JOINED = "joined", _("Joined")
        WAITING = "waiting", _("Waiting to be admitted")
        ADMITTED = "admitted", _("Admitted")
        LEFT = "left", _("Left")
        ENDED = "ended", _("Ended the consultation")

    consultation = models.ForeignKey(Consultation, on_delete=models.CASCADE, related_name="presence_events")
    participation = models.ForeignKey(Participation, on_delete=models.CASCADE, related_name="presence_events")
    kind = models.CharField(max_length=10, choices=Kind.choices)
    at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        ordering = ["at", "pk"]


class ChatMessage(models.Model):
    consultation = models.ForeignKey(Consultation, on_delete=models.CASCADE, related_name="chat_messages")
    participation = models.ForeignKey(Participation, on_delete=models.CASCADE, related_name="chat_messages")
    body = EncryptedTextField()
    sent_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["sent_at", "pk"]
        indexes = [models.Index(fields=["consultation", "sent_at"])]


class QualitySample(models.Model):
    """A summary of RTCPeerConnection.getStats() sent by a client every few seconds."""

    consultation = models.ForeignKey(Consultation, on_delete=models.CASCADE, related_name="quality_samples")
    participation = models.ForeignKey(Participation, on_delete=models.CASCADE, related_name="quality_samples")
    recorded_at = models.DateTimeField(auto_now_add=True)
    rtt_ms = models.FloatField(null=True, blank=True)
    packet_loss = models.FloatField(null=True, blank=True, help_text=_("Fraction of packets lost, 0–1."))
    jitter_ms = models.FloatField(null=True, blank=True)
    bitrate_kbps = models.FloatField(null=True, blank=True)
    fps = models.FloatField(null=True, blank=True)

    class Meta:
        ordering = ["recorded_at"]
        indexes = [models.Index(fields=["consultation", "recorded_at"])]


# --- Recording (optional, with consent) -------------------------------------------------------
# docs/architecture.md "Consultations: recording". Nothing is recorded unless the doctor and the
# patient have both consented in the room; every give and withdraw is kept (RecordingConsent),
# the media is stored in chunks encrypted with Fernet in the default storage, and a beat task
# deletes it after CONSULTATION_RECORDING_RETENTION_DAYS.


class RecordingConsent(models.Model):
    """One change of one participant's consent to record, in order: the evidence of consent.
    The latest row of each role is that role's current consent."""

    class Source(models.TextChoices):
        ROOM = "room", _("Changed in the room")
        LEFT = "left", _("Left the call")

    consultation = models.ForeignKey(Consultation, on_delete=models.CASCADE, related_name="recording_consents")
    participation = models.ForeignKey(Participation, on_delete=models.CASCADE, related_name="recording_consents")
    role = models.CharField(max_length=10, choices=Participation.Role.choices)
    consent = models.BooleanField()
    source = models.CharField(max_length=10, choices=Source.choices, default=Source.ROOM)
    at = models.DateTimeField(default=timezone.now, db_index=True)

    class Meta:
        ordering = ["at", "pk"]
        indexes = [models.Index(fields=["consultation", "at"])]
        constraints = [models.CheckConstraint(condition=Q(role__in=["doctor", "patient"]), name="recording_consent_by_doctor_or_patient")]

    def __str__(self) -> str:
        return f"{self.role} {'consented' if self.consent else 'withdrew'} at {self.at:%Y-%m-%d %H:%M:%S}"


class Recording(models.Model):
    class Status(models.TextChoices):
        RECORDING = "recording", _("Recording")
        COMPLETE = "complete", _("Complete")
        STOPPED = "stopped", _("Stopped (consent withdrawn)")
        DELETED = "deleted", _("Deleted")

    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    consultation = models.ForeignKey(Consultation, on_delete=models.PROTECT, related_name="recordings")
    started_by = models.ForeignKey(Participation, on_delete=models.PROTECT, related_name="recordings_started")
    started_at = models.DateTimeField(default=timezone.now)
    ended_at = models.DateTimeField(null=True, blank=True)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.RECORDING, db_index=True)
    mime_type = models.CharField(max_length=100)
    bytes = models.PositiveBigIntegerField(default=0, help_text=_("Recorded bytes (before encryption)."))
    chunk_count = models.PositiveIntegerField(default=0)
    deleted_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-started_at", "-pk"]
        constraints = [
            models.UniqueConstraint(fields=["consultation"], condition=Q(status="recording"), name="recording_one_active_per_consultation"),
            models.CheckConstraint(condition=Q(status__in=["recording", "complete", "stopped", "deleted"]), name="recording_status_valid"),
            models.CheckConstraint(
                condition=Q(status="recording", ended_at__isnull=True) | (~Q(status="recording") & Q(ended_at__isnull=False)),
                name="recording_ended_unless_recording",
            ),
            models.CheckConstraint(condition=Q(ended_at__isnull=True) | Q(ended_at__gte=models.F("started_at")), name="recording_ends_after_start"),
            models.CheckConstraint(
                condition=Q(status="deleted", deleted_at__isnull=False) | (~Q(status="deleted") & Q(deleted_at__isnull=True)),
                name="recording_deleted_at_iff_deleted",
            ),
        ]

    def __str__(self) -> str:
        return f"Recording {self.public_id} ({self.get_status_display()})"

    @property
    def is_downloadable(self) -> bool:
        return self.status in (self.Status.COMPLETE, self.Status.STOPPED) and self.chunk_count > 0

    @property
    def duration(self) -> timedelta | None:
        return self.ended_at - self.started_at if self.ended_at else None


class RecordingChunk(models.Model):
    """One piece of a recording as the browser's MediaRecorder produced it; ``file`` holds the
    Fernet-encrypted bytes (never the plaintext), ``size`` and ``sha256`` describe the plaintext."""

    recording = models.ForeignKey(Recording, on_delete=models.CASCADE, related_name="chunks")
    seq = models.PositiveIntegerField()
    size = models.PositiveIntegerField()
    sha256 = models.CharField(max_length=64)
    file = models.FileField(max_length=255)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["recording", "seq"]
        constraints = [
            models.UniqueConstraint(fields=["recording", "seq"], name="recording_chunk_once_per_seq"),
            models.CheckConstraint(condition=Q(size__gt=0), name="recording_chunk_not_empty"),
        ]
