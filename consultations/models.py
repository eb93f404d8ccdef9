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
    started_at = models.DateTimeField(null=True, blank=True, help_text=_("When the doctor and the patient were first both in the room."))
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
