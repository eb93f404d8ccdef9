"""Base model and the audit log."""

from __future__ import annotations

import uuid

from django.conf import settings
from django.core.exceptions import PermissionDenied
from django.db import models

from .fields import EncryptedTextField


class TimeStampedModel(models.Model):
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        abstract = True


class AppendOnlyQuerySet(models.QuerySet):
    """Rows that are written once and never changed or removed through the ORM (audit entries,
    record versions). Cascades from a purged parent bypass this on purpose (retention purges)."""

    def update(self, **kwargs):  # type: ignore[override]
        raise PermissionDenied(f"{self.model._meta.verbose_name_plural} are immutable.")

    def delete(self):  # type: ignore[override]
        raise PermissionDenied(f"{self.model._meta.verbose_name_plural} cannot be deleted.")


class AppendOnlyModel(models.Model):
    objects = AppendOnlyQuerySet.as_manager()

    class Meta:
        abstract = True

    def save(self, *args, **kwargs) -> None:
        if not self._state.adding:
            raise PermissionDenied(f"{self._meta.verbose_name_plural} are immutable.")
        super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):
        raise PermissionDenied(f"{self._meta.verbose_name_plural} cannot be deleted.")


class AuditEvent(AppendOnlyModel):
    """Who did what to which object, when and from where. Append-only.

    ``target_type``/``target_id`` name the object without a foreign key so that an entry
    outlives the object it describes. ``metadata`` never holds PHI: ids, codes and reasons only.
    """

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    actor_role = models.CharField(max_length=20, blank=True)
    action = models.CharField(max_length=64, db_index=True)
    target_type = models.CharField(max_length=64, blank=True)
    target_id = models.CharField(max_length=64, blank=True)
    subject_user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        help_text="The person the event is about (e.g. the patient whose record was read).",
    )
    ip_address = models.GenericIPAddressField(null=True, blank=True)
    user_agent = models.CharField(max_length=300, blank=True)
    request_id = models.CharField(max_length=64, blank=True)
    metadata = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["-created_at"]
        indexes = [
            models.Index(fields=["target_type", "target_id"]),
            models.Index(fields=["actor", "-created_at"]),
            models.Index(fields=["subject_user", "-created_at"]),
        ]

    def __str__(self) -> str:
        return f"{self.created_at:%Y-%m-%d %H:%M:%S} {self.action} {self.target_type}:{self.target_id}"


# --- Notifications (medimeet/core/notifications/) ---------------------------------------------


def default_reminder_offsets() -> list[int]:
    """Minutes before the appointment: the platform setting REMINDER_OFFSETS (staff edit it)."""
    from .platform import reminder_offsets_default

    return reminder_offsets_default()


class NotificationPreference(models.Model):
    """Which channels a person wants for each kind of non-essential message, and when to be
    reminded. A missing category means the catalogue's default (email). Essential messages
    (security, receipts, bookings) are always emailed whatever is stored here."""

    user = models.OneToOneField(settings.AUTH_USER_MODEL, primary_key=True, on_delete=models.CASCADE, related_name="notification_preference")
    channels = models.JSONField(default=dict, blank=True, help_text='{"reminders": ["email"], "updates": []}')
    reminder_offsets = models.JSONField(default=default_reminder_offsets, blank=True, help_text="Minutes before an appointment.")
    # Text messages go only to a number the person proved is theirs with a code sent to it.
    sms_number = EncryptedTextField(blank=True, help_text="E.164, encrypted at rest.")
    sms_verified_at = models.DateTimeField(null=True, blank=True)
    sms_code_hash = models.CharField(max_length=64, blank=True)
    sms_code_sent_at = models.DateTimeField(null=True, blank=True)
    sms_code_attempts = models.PositiveSmallIntegerField(default=0)
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"Notification preferences of user {self.user_id}"

    @property
    def verified_sms_number(self) -> str:
        return self.sms_number if self.sms_number and self.sms_verified_at else ""


class Notification(models.Model):
    """One message to one person on one channel, and what became of it.

    Bodies, the address and attachments are encrypted at rest (they may name a doctor or an
    appointment time) and are never logged; they are kept so staff can resend the message.
    ``dedupe_key`` is unique: a reminder scan that runs twice, or on two workers, inserts the
    row once and sends it once."""

    class Channel(models.TextChoices):
        EMAIL = "email", "Email"
        SMS = "sms", "Text message"

    class Status(models.TextChoices):
        QUEUED = "queued", "Queued"
        SENDING = "sending", "Sending"
        SENT = "sent", "Sent"  # accepted by the mail server or SMS provider (SMTP gives no delivery report)
        DELIVERED = "delivered", "Delivered"  # the SMS provider's delivery report
        BOUNCED = "bounced", "Bounced"  # the provider could not deliver it
        FAILED = "failed", "Failed"

    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    user = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="notifications")
    to = EncryptedTextField(help_text="Email address or phone number, encrypted at rest.")
    channel = models.CharField(max_length=10, choices=Channel.choices)
    event = models.CharField(max_length=64, db_index=True)
    template = models.CharField(max_length=200, blank=True)
    language = models.CharField(max_length=10)
    subject = models.CharField(max_length=300, blank=True)
    text_body = EncryptedTextField()
    html_body = EncryptedTextField(blank=True)
    attachments = EncryptedTextField(blank=True, help_text="JSON list of {name, mimetype, content (base64)}.")
    headers = models.JSONField(default=dict, blank=True)
    status = models.CharField(max_length=12, choices=Status.choices, default=Status.QUEUED)
    provider_message_id = models.CharField(max_length=255, blank=True, db_index=True)
    attempts = models.PositiveSmallIntegerField(default=0)
    last_error = models.CharField(max_length=500, blank=True)
    dedupe_key = models.CharField(max_length=200, null=True, blank=True, unique=True)
    resent_from = models.ForeignKey("self", null=True, blank=True, on_delete=models.SET_NULL, related_name="resends")
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    claimed_at = models.DateTimeField(null=True, blank=True)
    sent_at = models.DateTimeField(null=True, blank=True)
    status_changed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [
            models.Index(fields=["user", "-created_at"]),
            models.Index(fields=["status", "created_at"]),
        ]

    def __str__(self) -> str:
        return f"{self.channel} {self.event} #{self.pk}"


class AnnouncementQuerySet(models.QuerySet):
    def active(self, now=None) -> AnnouncementQuerySet:
        from django.utils import timezone

        now = now or timezone.now()
        return self.filter(models.Q(ends_at__isnull=True) | models.Q(ends_at__gt=now), starts_at__lte=now)

    def for_user(self, user) -> AnnouncementQuerySet:
        """Those addressed to ``user``: everyone, their side of the platform, or them alone."""
        audiences = [Announcement.Audience.ALL, Announcement.Audience.DOCTORS if user.role == "doctor" else Announcement.Audience.PATIENTS]
        return self.filter(models.Q(audience__in=audiences) | models.Q(audience=Announcement.Audience.USER, user=user))


class Announcement(models.Model):
    """A message from staff to many people at once: a service notice, a maintenance window, a new
    feature, a security alert. Shown as a banner in the portals until each person dismisses it,
    and emailed when staff ask for it (once per person, through the notification layer)."""

    class Kind(models.TextChoices):
        SERVICE = "service", "Service announcement"
        MAINTENANCE = "maintenance", "Maintenance window"
        FEATURE = "feature", "New feature"
        SECURITY = "security", "Security alert"

    class Audience(models.TextChoices):
        ALL = "all", "Everyone"
        PATIENTS = "patients", "Patients"
        DOCTORS = "doctors", "Doctors"
        USER = "user", "One person"

    kind = models.CharField(max_length=12, choices=Kind.choices)
    title = models.CharField(max_length=150)
    body = models.TextField(max_length=2000, help_text="Plain text; shown in the banner and the email.")
    audience = models.CharField(max_length=10, choices=Audience.choices, default=Audience.ALL)
    user = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.CASCADE, related_name="+", help_text="Only for “One person”.")
    starts_at = models.DateTimeField(help_text="Shown from then on.")
    ends_at = models.DateTimeField(null=True, blank=True, help_text="Hidden from then on (empty: until dismissed).")
    send_email = models.BooleanField(default=False, help_text="Also email everyone it is for (once).")
    emailed_at = models.DateTimeField(null=True, blank=True, editable=False)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+", editable=False)
    created_at = models.DateTimeField(auto_now_add=True)

    objects = AnnouncementQuerySet.as_manager()

    class Meta:
        ordering = ["-starts_at", "-id"]
        indexes = [models.Index(fields=["starts_at", "ends_at"])]
        constraints = [
            models.CheckConstraint(
                condition=(models.Q(audience="user") & models.Q(user__isnull=False)) | (~models.Q(audience="user") & models.Q(user__isnull=True)),
                name="announcement_user_only_for_one_person",
            ),
            models.CheckConstraint(condition=models.Q(ends_at__isnull=True) | models.Q(ends_at__gt=models.F("starts_at")), name="announcement_ends_after_start"),
        ]

    def __str__(self) -> str:
        return self.title


class AnnouncementDismissal(models.Model):
    announcement = models.ForeignKey(Announcement, on_delete=models.CASCADE, related_name="dismissals")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    dismissed_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["announcement", "user"], name="announcement_dismissed_once")]


class BackOffice(models.Model):
    """No table: it only carries the back-office permissions that belong to no one model, so
    Django groups (the staff roles, `medimeet.core.roles`) can be given them."""

    class Meta:
        managed = False
        default_permissions = ()
        permissions = [
            ("view_dashboard", "Can see the staff dashboard and export reports"),
            ("view_system_health", "Can see the system health page (service connections, redacted)"),
            ("view_clinical_content", "Can see clinical content (record entries, notes, prescriptions) in the back office"),
        ]


class FailedTask(models.Model):
    """A Celery task that failed for good (retries exhausted or none), written by the
    ``task_failure`` signal (``medimeet.core.dashboard.failures``). Name, id, exception type and
    time only: never the arguments or the message, which may carry personal health data."""

    task_name = models.CharField(max_length=200)
    task_id = models.CharField(max_length=64, blank=True)
    exception_type = models.CharField(max_length=200)
    failed_at = models.DateTimeField(db_index=True)

    class Meta:
        ordering = ["-failed_at", "-id"]

    def __str__(self) -> str:
        return f"{self.task_name} · {self.exception_type}"
