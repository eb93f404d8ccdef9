"""Users, patient profiles and API sessions (devices).

PHI on the patient profile is encrypted at rest (medimeet.core.fields); names and email stay
searchable in plain text because staff and doctors look people up by them.
"""

from __future__ import annotations

import functools
import uuid
import zoneinfo

import phonenumbers
from django.conf import settings
from django.contrib.auth.base_user import BaseUserManager
from django.contrib.auth.models import AbstractUser
from django.core.exceptions import ValidationError
from django.db import models
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from medimeet.core.fields import EncryptedDateField, EncryptedTextField


@functools.cache
def known_timezones() -> frozenset[str]:
    # zoneinfo.available_timezones() walks the tz database on disk on every call (~7 ms).
    return frozenset(zoneinfo.available_timezones())


def validate_timezone(value: str) -> None:
    if value not in known_timezones():
        raise ValidationError(_("“%(value)s” is not a known time zone (e.g. Europe/London)."), params={"value": value})


def validate_phone_number(value: str) -> None:
    """A real number with its country code (libphonenumber: length and ranges per country)."""
    if not value:
        return
    try:
        valid = phonenumbers.is_valid_number(phonenumbers.parse(value, None))
    except phonenumbers.NumberParseException:
        valid = False
    if not valid:
        raise ValidationError(_("Enter a phone number with its country code, e.g. +44 20 7946 0958."))


class UserManager(BaseUserManager):
    use_in_migrations = True

    def _create_user(self, email: str, password: str | None, **extra):
        if not email:
            raise ValueError("An email address is required.")
        user = self.model(email=self.normalize_email(email).lower(), **extra)
        user.set_password(password)
        user.save(using=self._db)
        return user

    def create_user(self, email: str, password: str | None = None, **extra):
        extra.setdefault("is_staff", False)
        extra.setdefault("is_superuser", False)
        return self._create_user(email, password, **extra)

    def create_superuser(self, email: str, password: str | None = None, **extra):
        extra.update(is_staff=True, is_superuser=True, role=User.Role.STAFF)
        return self._create_user(email, password, **extra)


class User(AbstractUser):
    """A person who signs in. Email is the login; ``role`` says which portal they use."""

    class Role(models.TextChoices):
        PATIENT = "patient", _("Patient")
        DOCTOR = "doctor", _("Doctor")
        STAFF = "staff", _("Staff")

    class Status(models.TextChoices):
        ACTIVE = "active", _("Active")
        BLOCKED = "blocked", _("Blocked")

    username = None
    # Public, unguessable identifier used in tokens and URLs instead of the sequential pk.
    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    email = models.EmailField(_("email address"), unique=True)
    role = models.CharField(max_length=10, choices=Role.choices, default=Role.PATIENT, db_index=True)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.ACTIVE, db_index=True)
    blocked_reason = models.CharField(max_length=500, blank=True)
    blocked_at = models.DateTimeField(null=True, blank=True)
    timezone = models.CharField(max_length=64, default="UTC", validators=[validate_timezone])
    language = models.CharField(max_length=10, choices=settings.LANGUAGES, default="en")
    picture = models.ImageField(upload_to="profile-pictures/%Y/%m/", blank=True)
    picture_thumbnail = models.ImageField(upload_to="profile-pictures/%Y/%m/thumbs/", blank=True)

    USERNAME_FIELD = "email"
    REQUIRED_FIELDS: list[str] = []

    objects = UserManager()

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=Q(status="active", blocked_at__isnull=True) | Q(status="blocked", blocked_at__isnull=False),
                name="user_blocked_at_matches_status",
            ),
            models.CheckConstraint(condition=Q(email=models.functions.Lower("email")), name="user_email_lowercase"),
        ]
        indexes = [  # the staff user list filters by role and status, newest first
            models.Index(fields=["role", "status", "-date_joined"], name="user_role_status_joined_idx"),
            models.Index(fields=["-date_joined"], name="user_joined_idx"),
        ]

    def __str__(self) -> str:
        return self.get_full_name() or self.email

    def save(self, *args, **kwargs) -> None:
        self.email = (self.email or "").strip().lower()
        super().save(*args, **kwargs)

    @property
    def is_blocked(self) -> bool:
        return self.status == self.Status.BLOCKED

    @property
    def display_name(self) -> str:
        return self.get_full_name() or self.email.split("@")[0]

    def requires_mfa(self) -> bool:
        if self.is_staff or self.role == self.Role.STAFF:
            return settings.MFA_REQUIRED_FOR_STAFF
        if self.role == self.Role.DOCTOR:
            return settings.MFA_REQUIRED_FOR_DOCTORS
        return False


class PatientProfile(models.Model):
    """What a patient tells us about themselves. Every field but the language is PHI and is
    encrypted at rest; the database cannot filter on them by design."""

    class Sex(models.TextChoices):
        FEMALE = "female", _("Female")
        MALE = "male", _("Male")
        INTERSEX = "intersex", _("Intersex")
        UNDISCLOSED = "undisclosed", _("Prefer not to say")

    user = models.OneToOneField(User, on_delete=models.CASCADE, related_name="patient_profile", primary_key=True)
    date_of_birth = EncryptedDateField(null=True, blank=True)
    sex = EncryptedTextField(blank=True, choices=Sex.choices)
    phone = EncryptedTextField(blank=True, validators=[validate_phone_number])
    address = EncryptedTextField(blank=True)
    medical_history_summary = EncryptedTextField(blank=True)
    allergies = EncryptedTextField(blank=True)
    chronic_conditions = EncryptedTextField(blank=True)
    emergency_contact_name = EncryptedTextField(blank=True)
    emergency_contact_phone = EncryptedTextField(blank=True, validators=[validate_phone_number])
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"Patient profile of {self.user_id}"


class ApiSessionQuerySet(models.QuerySet):
    def active(self) -> ApiSessionQuerySet:
        return self.filter(revoked_at__isnull=True, expires_at__gt=timezone.now())


class ApiSession(models.Model):
    """One signed-in API client (a phone, a script): the family of refresh tokens issued by one
    login. Tokens carry its id as ``sid``; revoking it rejects every token of the family at once."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="api_sessions")
    device_name = models.CharField(max_length=120, blank=True)
    user_agent = models.CharField(max_length=300, blank=True)
    ip_address = models.GenericIPAddressField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    last_used_at = models.DateTimeField(default=timezone.now)
    expires_at = models.DateTimeField()
    revoked_at = models.DateTimeField(null=True, blank=True)
    revoked_reason = models.CharField(max_length=40, blank=True)

    objects = ApiSessionQuerySet.as_manager()

    class Meta:
        indexes = [models.Index(fields=["user", "revoked_at"])]
        ordering = ["-last_used_at"]

    def __str__(self) -> str:
        return f"{self.device_name or 'API client'} ({self.user_id})"

    @property
    def is_active(self) -> bool:
        return self.revoked_at is None and self.expires_at > timezone.now()
