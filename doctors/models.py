"""Doctors: specializations, profiles with their verification state, services and documents.

Listing rules live on the queryset (``DoctorProfile.objects.listed()``): only approved doctors
whose account is active and not blocked and whose licence has not expired are public.
"""

from __future__ import annotations

import uuid

from django.conf import settings
from django.contrib.postgres.indexes import GinIndex
from django.contrib.postgres.search import SearchVectorField
from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models, transaction
from django.db.models import Q
from django.utils import timezone
from django.utils.text import slugify
from django.utils.translation import gettext_lazy as _

from medimeet.core.models import TimeStampedModel

# ISO 4217 currencies we take payments in, with their minor-unit exponent (JPY has none).
CURRENCY_EXPONENTS = {"USD": 2, "EUR": 2, "GBP": 2, "INR": 2, "AUD": 2, "CAD": 2, "SGD": 2, "AED": 2, "JPY": 0}
CURRENCY_CHOICES = [(code, code) for code in CURRENCY_EXPONENTS]


class ConsultationMode(models.TextChoices):
    VIDEO = "video", _("Video")
    IN_PERSON = "in_person", _("In person")


class Specialization(models.Model):
    """A node of the specialization taxonomy (Medicine → Cardiology → Interventional Cardiology).

    ``path`` is a materialised path of ancestor ids ("/1/4/9/") maintained on save, so "this
    specialization and everything under it" is one indexed ``path__startswith`` query.
    """

    name = models.CharField(max_length=120)
    slug = models.SlugField(max_length=140, unique=True)
    parent = models.ForeignKey("self", null=True, blank=True, on_delete=models.PROTECT, related_name="children")
    path = models.CharField(max_length=255, editable=False, db_index=True, default="")
    depth = models.PositiveSmallIntegerField(editable=False, default=0)
    description = models.TextField(blank=True)
    required_qualifications = models.JSONField(
        default=list,
        blank=True,
        help_text=_('Degrees a doctor must hold to be approved with this as primary specialization, e.g. ["MD", "DM Cardiology"].'),
    )

    class Meta:
        ordering = ["path"]
        constraints = [
            models.UniqueConstraint(fields=["parent", "name"], name="specialization_unique_name_per_parent"),
            models.CheckConstraint(condition=~Q(parent=models.F("id")), name="specialization_not_own_parent"),
        ]

    def __str__(self) -> str:
        return self.name

    def save(self, *args, **kwargs) -> None:
        if not self.slug:
            self.slug = slugify(self.name)[:140]
        with transaction.atomic():
            old_path = self.path
            super().save(*args, **kwargs)
            parent_path = self.parent.path if self.parent_id else "/"
            new_path = f"{parent_path}{self.pk}/"
            if new_path != old_path:
                depth = new_path.count("/") - 2
                Specialization.objects.filter(pk=self.pk).update(path=new_path, depth=depth)
                self.path, self.depth = new_path, depth
                if old_path:  # moved: re-root every descendant
                    for child in Specialization.objects.filter(path__startswith=old_path).exclude(pk=self.pk):
                        child_path = new_path + child.path[len(old_path):]
                        Specialization.objects.filter(pk=child.pk).update(path=child_path, depth=child_path.count("/") - 2)

    def clean(self) -> None:
        if self.pk and self.parent_id:
            ancestor = self.parent
            while ancestor is not None:
                if ancestor.pk == self.pk:
                    raise ValidationError({"parent": _("A specialization cannot be placed under itself or its descendants.")})
                ancestor = ancestor.parent

    def descendants_and_self(self):
        return Specialization.objects.filter(path__startswith=self.path)


class Language(models.Model):
    code = models.CharField(max_length=12, primary_key=True, help_text=_("BCP 47 / ISO 639-1 code, e.g. en, hi, es."))
    name = models.CharField(max_length=60)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class DoctorProfileQuerySet(models.QuerySet):
    def listed(self) -> DoctorProfileQuerySet:
        """Publicly visible doctors."""
        return self.filter(
            verification_status=DoctorProfile.Status.APPROVED,
            user__is_active=True,
            user__status="active",
            licence_expiry__gte=timezone.localdate(),
        )


class DoctorProfile(TimeStampedModel):
    class Status(models.TextChoices):
        SUBMITTED = "submitted", _("Submitted")
        UNDER_REVIEW = "under_review", _("Under review")
        CHANGES_REQUESTED = "changes_requested", _("Changes requested")
        APPROVED = "approved", _("Approved")
        REJECTED = "rejected", _("Rejected")

    # Allowed verification transitions: state → states it may move to.
    TRANSITIONS = {
        Status.SUBMITTED: {Status.UNDER_REVIEW},
        Status.UNDER_REVIEW: {Status.APPROVED, Status.REJECTED, Status.CHANGES_REQUESTED},
        Status.CHANGES_REQUESTED: {Status.SUBMITTED},
        Status.REJECTED: {Status.SUBMITTED},
        Status.APPROVED: {Status.UNDER_REVIEW},  # re-verification (e.g. renewed licence)
    }

    user = models.OneToOneField(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="doctor_profile")
    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    slug = models.SlugField(max_length=160, unique=True)
    verification_status = models.CharField(max_length=20, choices=Status.choices, default=Status.SUBMITTED, db_index=True)
    status_reason = models.TextField(blank=True, help_text=_("Why the application was rejected or what must change."))
    status_changed_at = models.DateTimeField(default=timezone.now)
    submitted_at = models.DateTimeField(default=timezone.now)

    licence_number = models.CharField(max_length=40)
    licence_authority = models.CharField(max_length=200)
    licence_country = models.CharField(max_length=2, help_text=_("ISO 3166-1 alpha-2, e.g. IN, GB, US."))
    licence_expiry = models.DateField()
    licence_expired_flagged_at = models.DateTimeField(null=True, blank=True)

    title = models.CharField(max_length=20, default="Dr.", blank=True)
    bio = models.TextField(blank=True)
    years_experience = models.PositiveSmallIntegerField(default=0, validators=[MaxValueValidator(70)])
    special_skills = models.TextField(blank=True, help_text=_("Comma-separated skills, e.g. echocardiography, angioplasty."))
    languages = models.ManyToManyField(Language, blank=True, related_name="doctors")
    primary_specialization = models.ForeignKey(Specialization, on_delete=models.PROTECT, related_name="primary_doctors")
    secondary_specializations = models.ManyToManyField(Specialization, blank=True, related_name="secondary_doctors")
    clinic_name = models.CharField(max_length=200, blank=True)
    clinic_address = models.CharField(max_length=300, blank=True)
    city = models.CharField(max_length=100, blank=True, db_index=True)
    country = models.CharField(max_length=2, blank=True, db_index=True)
    offers_video = models.BooleanField(default=True)
    offers_in_person = models.BooleanField(default=False)

    # Denormalised for fast search filters and sorts; maintained by services (and Step 8 for ratings).
    min_fee_minor = models.PositiveIntegerField(null=True, blank=True, help_text=_("Lowest active service price, minor units."))
    fee_currency = models.CharField(max_length=3, blank=True)
    rating_average = models.DecimalField(max_digits=4, decimal_places=3, default=0)
    rating_count = models.PositiveIntegerField(default=0)
    next_available_at = models.DateTimeField(null=True, blank=True, editable=False, help_text=_("First free slot, kept by appointments.services.next_available_refresh."))
    search_document = models.TextField(blank=True, editable=False, help_text=_("Name, specializations, skills and bio, for search."))
    search_vector = SearchVectorField(null=True, editable=False)

    objects = DoctorProfileQuerySet.as_manager()

    class Meta:
        ordering = ["user__last_name", "user__first_name"]
        constraints = [
            models.UniqueConstraint(fields=["licence_country", "licence_number"], name="doctor_unique_licence_per_country"),
            models.CheckConstraint(condition=Q(offers_video=True) | Q(offers_in_person=True), name="doctor_offers_a_consultation_mode"),
        ]
        indexes = [
            GinIndex(fields=["search_vector"], name="doctor_search_vector_gin"),
            models.Index(fields=["verification_status", "-rating_average"], name="doctor_status_rating_idx"),
            models.Index(fields=["verification_status", "min_fee_minor"], name="doctor_status_fee_idx"),
            models.Index(fields=["verification_status", "fee_currency", "min_fee_minor"], name="doctor_status_currency_fee_idx"),
            models.Index(fields=["verification_status", "-years_experience"], name="doctor_status_experience_idx"),
            models.Index(fields=["primary_specialization", "verification_status"], name="doctor_spec_status_idx"),
            models.Index(fields=["verification_status", "next_available_at"], name="doctor_status_next_free_idx"),
        ]

    def __str__(self) -> str:
        return self.display_name

    @property
    def display_name(self) -> str:
        name = self.user.get_full_name() or self.user.email
        return f"{self.title} {name}".strip()

    @property
    def licence_is_expired(self) -> bool:
        return self.licence_expiry < timezone.localdate()

    @property
    def is_listed(self) -> bool:
        return (
            self.verification_status == self.Status.APPROVED
            and self.user.is_active
            and not self.user.is_blocked
            and not self.licence_is_expired
        )

    @property
    def skill_list(self) -> list[str]:
        return [skill.strip() for skill in self.special_skills.split(",") if skill.strip()]

    @property
    def fee_from_display(self) -> str:
        """"₹500.00"-style price of the cheapest active service, or "" when none."""
        return format_money(self.min_fee_minor, self.fee_currency) if self.min_fee_minor is not None and self.fee_currency else ""

    def can_transition_to(self, status: str) -> bool:
        return status in self.TRANSITIONS.get(self.verification_status, set())

    @property
    def consultation_modes(self) -> list[str]:
        return [mode for mode, offered in ((ConsultationMode.VIDEO, self.offers_video), (ConsultationMode.IN_PERSON, self.offers_in_person)) if offered]


# Where staff may move an application (anything but back to "submitted", which is the doctor's move).
TRANSITION_TARGET_CHOICES = [choice for choice in DoctorProfile.Status.choices if choice[0] != DoctorProfile.Status.SUBMITTED]


class Education(models.Model):
    doctor = models.ForeignKey(DoctorProfile, on_delete=models.CASCADE, related_name="education")
    degree = models.CharField(max_length=120)
    institution = models.CharField(max_length=200)
    year = models.PositiveSmallIntegerField(validators=[MinValueValidator(1940), MaxValueValidator(2100)])

    class Meta:
        ordering = ["-year"]

    def __str__(self) -> str:
        return f"{self.degree}, {self.institution} ({self.year})"


class Certification(models.Model):
    doctor = models.ForeignKey(DoctorProfile, on_delete=models.CASCADE, related_name="certifications")
    name = models.CharField(max_length=200)
    issuer = models.CharField(max_length=200, blank=True)
    year = models.PositiveSmallIntegerField(null=True, blank=True, validators=[MinValueValidator(1940), MaxValueValidator(2100)])

    class Meta:
        ordering = ["-year"]

    def __str__(self) -> str:
        return self.name


class Position(models.Model):
    """Professional history: past and current positions."""

    doctor = models.ForeignKey(DoctorProfile, on_delete=models.CASCADE, related_name="positions")
    title = models.CharField(max_length=120)
    organisation = models.CharField(max_length=200)
    start_year = models.PositiveSmallIntegerField(validators=[MinValueValidator(1940), MaxValueValidator(2100)])
    end_year = models.PositiveSmallIntegerField(null=True, blank=True, validators=[MinValueValidator(1940), MaxValueValidator(2100)])

    class Meta:
        ordering = ["-start_year"]
        constraints = [
            models.CheckConstraint(condition=Q(end_year__isnull=True) | Q(end_year__gte=models.F("start_year")), name="position_ends_after_start")
        ]

    def __str__(self) -> str:
        return f"{self.title}, {self.organisation}"


def document_upload_to(instance: DoctorDocument, filename: str) -> str:
    # Never trust the client's file name: a random name with the extension of the detected type.
    return f"doctor-documents/{instance.doctor.public_id.hex}/{uuid.uuid4().hex}{instance.extension}"


class DoctorDocument(models.Model):
    class Kind(models.TextChoices):
        LICENCE = "licence", _("Licence")
        QUALIFICATION = "qualification", _("Qualification")
        OTHER = "other", _("Other")

    doctor = models.ForeignKey(DoctorProfile, on_delete=models.CASCADE, related_name="documents")
    kind = models.CharField(max_length=20, choices=Kind.choices)
    file = models.FileField(upload_to=document_upload_to)
    original_name = models.CharField(max_length=255)
    content_type = models.CharField(max_length=60)
    size = models.PositiveIntegerField()
    uploaded_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-uploaded_at"]

    def __str__(self) -> str:
        return f"{self.get_kind_display()}: {self.original_name}"

    @property
    def extension(self) -> str:
        from medimeet.core.uploads import KINDS

        return next((kind.extension for kind in KINDS.values() if kind.content_type == self.content_type), "")


class VerificationEvent(models.Model):
    """The application's history as the doctor and staff see it (the audit log has it too)."""

    doctor = models.ForeignKey(DoctorProfile, on_delete=models.CASCADE, related_name="verification_events")
    from_status = models.CharField(max_length=20, choices=DoctorProfile.Status.choices, blank=True)
    to_status = models.CharField(max_length=20, choices=DoctorProfile.Status.choices)
    by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    reason = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.from_status or '—'} → {self.to_status}"


class DoctorService(TimeStampedModel):
    """Something a doctor offers and patients book: price, duration and mode."""

    doctor = models.ForeignKey(DoctorProfile, on_delete=models.CASCADE, related_name="services")
    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    name = models.CharField(max_length=120)
    description = models.TextField(blank=True)
    price_minor = models.PositiveIntegerField(help_text=_("Price in the currency's minor unit (cents, paise; yen for JPY)."))
    currency = models.CharField(max_length=3, choices=CURRENCY_CHOICES)
    duration_minutes = models.PositiveSmallIntegerField()
    mode = models.CharField(max_length=12, choices=ConsultationMode.choices, default=ConsultationMode.VIDEO)
    preparation_instructions = models.TextField(blank=True)
    procedure_type = models.CharField(max_length=120, blank=True)
    equipment_required = models.CharField(max_length=200, blank=True)
    free_follow_up_days = models.PositiveSmallIntegerField(
        default=0, validators=[MaxValueValidator(60)], help_text=_("A follow-up booked within this many days of a completed consultation costs nothing (0: never).")
    )
    is_active = models.BooleanField(default=True)

    class Meta:
        ordering = ["price_minor", "name"]
        constraints = [
            models.CheckConstraint(condition=Q(price_minor__gt=0), name="service_price_positive"),
            models.CheckConstraint(
                condition=Q(duration_minutes__gte=5, duration_minutes__lte=240),
                name="service_duration_5_to_240",
            ),
        ]
        indexes = [models.Index(fields=["doctor", "is_active"])]

    def __str__(self) -> str:
        return f"{self.name} ({self.duration_minutes} min)"

    @property
    def price_display(self) -> str:
        return format_money(self.price_minor, self.currency)


def format_money(amount_minor: int, currency: str) -> str:
    exponent = CURRENCY_EXPONENTS.get(currency, 2)
    value = amount_minor / (10**exponent)
    symbol = {"USD": "$", "EUR": "€", "GBP": "£", "INR": "₹", "JPY": "¥"}.get(currency)
    text = f"{value:,.{exponent}f}"
    return f"{symbol}{text}" if symbol else f"{text} {currency}"


class SearchTally(models.Model):
    """How many doctor searches (page and API, first page of results) started in one quarter of
    an hour (UTC). One row per quarter, bumped with a single ``UPDATE … SET count = count + 1``
    (``services.search_tally_record``): correct under concurrency, one statement per search.
    Quarters because every time zone's midnight falls on one, so a staff member's "today" sums
    whole rows. The dashboard's conversion from search to booking reads it."""

    bucket = models.DateTimeField(unique=True)
    count = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ["-bucket"]

    def __str__(self) -> str:
        return f"{self.bucket:%Y-%m-%d %H:%M} UTC: {self.count}"
