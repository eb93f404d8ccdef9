"""Availability (weekly hours, date overrides, platform holidays) and appointments.

Slots are computed, not stored: the slot engine (selectors.free_slots) derives them from the
rules minus overrides minus what is booked or held. An appointment occupies
[blocked_start, blocked_end) — its time plus the doctor's buffers — and on PostgreSQL an
exclusion constraint guarantees that two active appointments of one doctor (or of one patient)
never overlap; SQLite serialises booking transactions instead (BEGIN IMMEDIATE).
"""

from __future__ import annotations

import uuid
from datetime import timedelta

from django.conf import settings
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from accounts.models import validate_timezone
from doctors.models import DoctorProfile, DoctorService
from medimeet.core.fields import EncryptedDateField, EncryptedTextField
from medimeet.core.models import TimeStampedModel


class DoctorSchedule(TimeStampedModel):
    """A doctor's booking rules, in the doctor's time zone."""

    doctor = models.OneToOneField(DoctorProfile, on_delete=models.CASCADE, related_name="schedule")
    timezone = models.CharField(max_length=64, default="UTC", validators=[validate_timezone])
    default_slot_minutes = models.PositiveSmallIntegerField(default=20, validators=[MinValueValidator(5), MaxValueValidator(240)])
    buffer_before_minutes = models.PositiveSmallIntegerField(default=0, validators=[MaxValueValidator(120)])
    buffer_after_minutes = models.PositiveSmallIntegerField(default=5, validators=[MaxValueValidator(120)])
    min_notice_minutes = models.PositiveIntegerField(default=120, validators=[MaxValueValidator(60 * 24 * 14)])
    max_days_ahead = models.PositiveSmallIntegerField(default=60, validators=[MinValueValidator(1), MaxValueValidator(365)])
    daily_cap = models.PositiveSmallIntegerField(null=True, blank=True, help_text=_("At most this many appointments a day (blank: no cap)."))
    max_reschedules = models.PositiveSmallIntegerField(default=2)
    reschedule_min_notice_minutes = models.PositiveIntegerField(default=12 * 60)
    # Cancellation policy: refund percentages by notice, e.g. [{"min_hours": 24, "refund_percent": 100}, ...].
    cancellation_policy = models.JSONField(default=list, blank=True)

    class Meta:
        constraints = [
            models.CheckConstraint(condition=Q(default_slot_minutes__gte=5, default_slot_minutes__lte=240), name="schedule_slot_5_to_240"),
        ]

    def __str__(self) -> str:
        return f"Schedule of {self.doctor}"


class WeeklyHours(models.Model):
    """One working range on a weekday (0 = Monday), in the schedule's time zone."""

    schedule = models.ForeignKey(DoctorSchedule, on_delete=models.CASCADE, related_name="weekly_hours")
    weekday = models.PositiveSmallIntegerField(validators=[MaxValueValidator(6)])
    start_time = models.TimeField()
    end_time = models.TimeField()

    class Meta:
        ordering = ["weekday", "start_time"]
        constraints = [
            models.CheckConstraint(condition=Q(start_time__lt=models.F("end_time")), name="weekly_hours_start_before_end"),
            models.CheckConstraint(condition=Q(weekday__lte=6), name="weekly_hours_weekday_0_6"),
        ]

    def __str__(self) -> str:
        return f"{self.get_weekday_display()} {self.start_time:%H:%M}–{self.end_time:%H:%M}"

    def get_weekday_display(self) -> str:
        return ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"][self.weekday]


class DateOverride(models.Model):
    """A date that does not follow the weekly hours: closed (a holiday), or special hours.
    Several rows on one date give several ranges; a closed row wins over ranges."""

    schedule = models.ForeignKey(DoctorSchedule, on_delete=models.CASCADE, related_name="overrides")
    date = models.DateField()
    is_closed = models.BooleanField(default=False)
    start_time = models.TimeField(null=True, blank=True)
    end_time = models.TimeField(null=True, blank=True)
    note = models.CharField(max_length=200, blank=True)

    class Meta:
        ordering = ["date", "start_time"]
        indexes = [models.Index(fields=["schedule", "date"])]
        constraints = [
            models.CheckConstraint(
                condition=Q(is_closed=True, start_time__isnull=True, end_time__isnull=True)
                | Q(is_closed=False, start_time__isnull=False, end_time__isnull=False, start_time__lt=models.F("end_time")),
                name="override_closed_or_valid_range",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.date}: closed" if self.is_closed else f"{self.date}: {self.start_time:%H:%M}–{self.end_time:%H:%M}"


class PlatformHoliday(models.Model):
    """A date staff close for every doctor (optionally only doctors in one country)."""

    date = models.DateField()
    name = models.CharField(max_length=120)
    country = models.CharField(max_length=2, blank=True, help_text=_("Blank: everywhere."))

    class Meta:
        ordering = ["date"]
        constraints = [models.UniqueConstraint(fields=["date", "country"], name="holiday_unique_per_date_country")]

    def __str__(self) -> str:
        return f"{self.date} {self.name}"


class AppointmentQuerySet(models.QuerySet):
    def occupying(self) -> AppointmentQuerySet:
        """Appointments that take their time: bookings, and holds or unpaid bookings whose hold
        has not expired yet."""
        return self.filter(Appointment.occupying_q())

    def overlapping(self, start, end) -> AppointmentQuerySet:
        return self.filter(blocked_start__lt=end, blocked_end__gt=start)


class Appointment(TimeStampedModel):
    class Status(models.TextChoices):
        HELD = "held", _("Held")
        PENDING_PAYMENT = "pending_payment", _("Pending payment")
        CONFIRMED = "confirmed", _("Confirmed")
        IN_PROGRESS = "in_progress", _("In progress")
        COMPLETED = "completed", _("Completed")
        CANCELLED = "cancelled", _("Cancelled")
        NO_SHOW = "no_show", _("No-show")
        EXPIRED = "expired", _("Hold expired")

    # Booked appointments occupy their time; holds and unpaid bookings only until their hold
    # expires. The database constraints cover all four: a lapsed hold is switched to "expired"
    # (services.holds_release_expired) before its time is given to someone else.
    BOOKED_STATUSES = ("confirmed", "in_progress")
    AWAITING_STATUSES = ("held", "pending_payment")
    CONSTRAINED_STATUSES = AWAITING_STATUSES + BOOKED_STATUSES

    @classmethod
    def occupying_q(cls) -> Q:
        """The condition of ``Appointment.objects.occupying()``, to combine in one filter."""
        return Q(status__in=cls.BOOKED_STATUSES) | Q(status__in=cls.AWAITING_STATUSES, hold_expires_at__gt=timezone.now())

    @classmethod
    def time_taken(cls, status: str, hold_expires_at, now) -> str:
        """What a row read as values makes of its time at ``now``: "occupied" (as ``occupying()``),
        "lapsed" (a hold or unpaid booking whose hold ran out and that holds_release_expired has
        not switched to expired yet: it still stands in the exclusion constraints' way) or ""."""
        if status in cls.BOOKED_STATUSES:
            return "occupied"
        if status in cls.AWAITING_STATUSES and hold_expires_at is not None:
            return "occupied" if hold_expires_at > now else "lapsed"
        return ""

    TRANSITIONS = {
        Status.HELD: {Status.PENDING_PAYMENT, Status.CONFIRMED, Status.EXPIRED, Status.CANCELLED},
        Status.PENDING_PAYMENT: {Status.CONFIRMED, Status.CANCELLED, Status.EXPIRED},
        Status.CONFIRMED: {Status.IN_PROGRESS, Status.CANCELLED, Status.NO_SHOW, Status.COMPLETED},
        Status.IN_PROGRESS: {Status.COMPLETED},
        Status.COMPLETED: set(),
        Status.CANCELLED: set(),
        Status.NO_SHOW: set(),
        Status.EXPIRED: set(),
    }

    class CancelledBy(models.TextChoices):
        PATIENT = "patient", _("Patient")
        DOCTOR = "doctor", _("Doctor")
        STAFF = "staff", _("Staff")
        SYSTEM = "system", _("System")

    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    doctor = models.ForeignKey(DoctorProfile, on_delete=models.PROTECT, related_name="appointments")
    patient = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="appointments")
    service = models.ForeignKey(DoctorService, on_delete=models.PROTECT, related_name="appointments")
    start = models.DateTimeField()
    end = models.DateTimeField()
    blocked_start = models.DateTimeField(help_text=_("start minus the doctor's buffer before"))
    blocked_end = models.DateTimeField(help_text=_("end plus the doctor's buffer after"))
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.HELD, db_index=True)
    hold_expires_at = models.DateTimeField(null=True, blank=True)
    reason = EncryptedTextField(blank=True, help_text=_("Reason for the visit, as the patient wrote it (clinical: encrypted at rest)."))
    price_minor = models.PositiveIntegerField()
    currency = models.CharField(max_length=3)
    idempotency_key = models.CharField(max_length=100, blank=True)
    series_id = models.UUIDField(null=True, blank=True, db_index=True, help_text=_("Occurrences of one recurring booking share this id."))
    reschedule_count = models.PositiveSmallIntegerField(default=0)
    sequence = models.PositiveIntegerField(default=0, help_text=_("iCalendar SEQUENCE: bumped on every change of time or status."))
    cancelled_by = models.CharField(max_length=10, choices=CancelledBy.choices, blank=True)
    cancelled_at = models.DateTimeField(null=True, blank=True)
    cancellation_reason = models.TextField(blank=True)
    refund_percent = models.PositiveSmallIntegerField(null=True, blank=True)
    no_show_party = models.CharField(
        max_length=10, blank=True, choices=[("doctor", _("Doctor")), ("patient", _("Patient"))], help_text=_("Who did not come, for a no-show (from the consultation's presence).")
    )

    objects = AppointmentQuerySet.as_manager()

    class Meta:
        ordering = ["start"]
        indexes = [
            models.Index(fields=["doctor", "start"], name="appt_doctor_start_idx"),
            models.Index(fields=["patient", "start"], name="appt_patient_start_idx"),
            models.Index(fields=["doctor", "blocked_start", "blocked_end"], name="appt_doctor_blocked_idx"),
            models.Index(fields=["status", "hold_expires_at"], name="appt_status_hold_idx"),
            # The staff dashboard's periods: bookings by creation, no-shows by start, cancellations.
            models.Index(fields=["created_at"], name="appt_created_idx"),
            models.Index(fields=["start", "status"], name="appt_start_status_idx"),
            models.Index(fields=["cancelled_at"], name="appt_cancelled_idx", condition=Q(cancelled_at__isnull=False)),
        ]
        constraints = [
            models.CheckConstraint(condition=Q(start__lt=models.F("end")), name="appt_start_before_end"),
            models.CheckConstraint(condition=Q(blocked_start__lte=models.F("start"), blocked_end__gte=models.F("end")), name="appt_blocked_covers_time"),
            models.CheckConstraint(condition=~Q(status__in=["held", "pending_payment"]) | Q(hold_expires_at__isnull=False), name="appt_hold_has_expiry"),
            # One live hold per patient and doctor.
            models.UniqueConstraint(fields=["patient", "doctor"], condition=Q(status="held"), name="appt_one_hold_per_patient_doctor"),
            # A retried booking request with the same Idempotency-Key never creates a second row.
            models.UniqueConstraint(fields=["patient", "idempotency_key"], condition=~Q(idempotency_key=""), name="appt_unique_idempotency_key"),
            # The no-overlap exclusion constraints (PostgreSQL) are created in migration 0002.
        ]

    def __str__(self) -> str:
        return f"{self.doctor} · {self.start:%Y-%m-%d %H:%M} UTC · {self.get_status_display()}"

    @property
    def duration(self) -> timedelta:
        return self.end - self.start

    @property
    def is_hold_live(self) -> bool:
        return self.status in self.AWAITING_STATUSES and self.hold_expires_at is not None and self.hold_expires_at > timezone.now()

    def can_transition_to(self, status: str) -> bool:
        return status in self.TRANSITIONS.get(self.status, set())

    def party(self, user) -> str | None:
        """How ``user`` takes part: "patient", "doctor", or None for anyone else."""
        if self.patient_id == user.pk:
            return "patient"
        if self.doctor.user_id == user.pk:
            return "doctor"
        return None

    def cancelling_role(self, user) -> str:
        """Whose rules a cancellation by ``user`` follows: staff and the doctor always refund in
        full; anyone else is treated as the patient (and refused if they are not)."""
        return "staff" if user.is_staff else ("doctor" if self.party(user) == "doctor" else "patient")


class AppointmentEvent(models.Model):
    """Every status change of an appointment, in order (the appointment's own history)."""

    appointment = models.ForeignKey(Appointment, on_delete=models.CASCADE, related_name="events")
    from_status = models.CharField(max_length=20, blank=True)
    to_status = models.CharField(max_length=20)
    by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    note = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["created_at", "pk"]

    def __str__(self) -> str:
        return f"{self.from_status or '—'} → {self.to_status}"


def _feed_token() -> str:
    import secrets

    return secrets.token_urlsafe(32)


class CalendarFeed(models.Model):
    """A private iCalendar feed of one person's appointments, for Google Calendar or Outlook to
    subscribe to. The token in the URL is the only credential: rotating it revokes old links."""

    user = models.OneToOneField(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="calendar_feed")
    token = models.CharField(max_length=64, unique=True, default=_feed_token)
    created_at = models.DateTimeField(auto_now_add=True)
    rotated_at = models.DateTimeField(null=True, blank=True)
    last_fetched_at = models.DateTimeField(null=True, blank=True)
    fetch_count = models.PositiveIntegerField(default=0)

    def __str__(self) -> str:
        return f"Calendar feed of {self.user_id}"


class WaitlistEntry(TimeStampedModel):
    """A patient waiting for a slot with a doctor between two dates. When a slot frees up the
    first waiting patient is offered it as a hold; if they let it lapse, the next one is."""

    class Status(models.TextChoices):
        WAITING = "waiting", _("Waiting")
        OFFERED = "offered", _("Offered a slot")
        BOOKED = "booked", _("Booked")
        CANCELLED = "cancelled", _("Cancelled")

    patient = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="waitlist_entries")
    doctor = models.ForeignKey(DoctorProfile, on_delete=models.CASCADE, related_name="waitlist_entries")
    service = models.ForeignKey(DoctorService, on_delete=models.CASCADE, related_name="waitlist_entries")
    first_day = models.DateField()
    last_day = models.DateField()
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.WAITING, db_index=True)
    offer = models.ForeignKey(Appointment, null=True, blank=True, on_delete=models.SET_NULL, related_name="waitlist_offers")
    declined_offers = models.PositiveSmallIntegerField(default=0)

    class Meta:
        ordering = ["created_at", "pk"]
        indexes = [models.Index(fields=["doctor", "status", "first_day", "last_day"])]
        constraints = [
            models.CheckConstraint(condition=Q(first_day__lte=models.F("last_day")), name="waitlist_range_ordered"),
            models.UniqueConstraint(fields=["patient", "doctor"], condition=Q(status__in=["waiting", "offered"]), name="waitlist_one_active_entry_per_doctor"),
        ]

    def __str__(self) -> str:
        return f"{self.patient_id} waits for {self.doctor} {self.first_day}–{self.last_day}"


class RebookingOffer(TimeStampedModel):
    """What a patient is offered when their doctor goes on vacation over their appointment:
    the doctor's first free slot after the vacation and, where one exists, the closest slot of
    another doctor of the same specialization, each held for the patient until ``expires_at``.
    The patient takes one (the other is released) or cancels with a full refund."""

    class Status(models.TextChoices):
        OPEN = "open", _("Open")
        ACCEPTED = "accepted", _("Accepted")
        DECLINED = "declined", _("Declined (cancelled)")
        CLOSED = "closed", _("Closed (the appointment changed otherwise)")

    class Choice(models.TextChoices):
        SAME_DOCTOR = "same_doctor", _("Same doctor, after the vacation")
        OTHER_DOCTOR = "other_doctor", _("Another doctor, same specialization")
        CANCEL = "cancel", _("Cancel with a full refund")

    appointment = models.ForeignKey(Appointment, on_delete=models.CASCADE, related_name="rebooking_offers")
    original_start = models.DateTimeField(help_text=_("The appointment's time when offered; a change of time closes the offer."))
    same_doctor_hold = models.ForeignKey(Appointment, null=True, blank=True, on_delete=models.SET_NULL, related_name="proposed_as_same_doctor")
    other_doctor_hold = models.ForeignKey(Appointment, null=True, blank=True, on_delete=models.SET_NULL, related_name="proposed_as_other_doctor")
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.OPEN)
    choice = models.CharField(max_length=12, choices=Choice.choices, blank=True)
    expires_at = models.DateTimeField()
    decided_at = models.DateTimeField(null=True, blank=True)
    result = models.ForeignKey(Appointment, null=True, blank=True, on_delete=models.SET_NULL, related_name="+", help_text=_("The booking the patient ended up with."))

    class Meta:
        ordering = ["-created_at", "-pk"]
        constraints = [
            models.UniqueConstraint(fields=["appointment"], condition=Q(status="open"), name="rebooking_one_open_offer_per_appointment"),
            models.CheckConstraint(condition=Q(status="open", choice="") | ~Q(status="open"), name="rebooking_open_has_no_choice"),
        ]

    def __str__(self) -> str:
        return f"Rebooking offer for {self.appointment_id} ({self.status})"

    @property
    def is_open(self) -> bool:
        return self.status == self.Status.OPEN and self.expires_at > timezone.now()


class ClinicalNote(TimeStampedModel):
    """The doctor's notes on one consultation and their follow-up recommendation. Clinical
    content is encrypted at rest and readable only by the appointment's doctor and patient
    (every read and write is audited); staff never see it."""

    appointment = models.OneToOneField(Appointment, on_delete=models.CASCADE, related_name="clinical_note")
    author = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    text = EncryptedTextField(blank=True)
    follow_up_on = EncryptedDateField(null=True, blank=True, help_text=_("The date the doctor recommends a follow-up from."))
    follow_up_note = EncryptedTextField(blank=True)
    follow_up_service = models.ForeignKey(DoctorService, null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    follow_up_appointment = models.ForeignKey(Appointment, null=True, blank=True, on_delete=models.SET_NULL, related_name="+", help_text=_("The follow-up the patient booked from this recommendation."))

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=Q(follow_up_on__isnull=True, follow_up_service__isnull=True) | Q(follow_up_on__isnull=False, follow_up_service__isnull=False),
                name="clinical_note_follow_up_has_service",
            ),
        ]

    def __str__(self) -> str:
        return f"Clinical note on appointment {self.appointment_id}"
