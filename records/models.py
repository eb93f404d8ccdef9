"""The medical record: structured entries with an append-only version history, encrypted
documents, prescriptions, and who may read it (grants, emergency access) — docs/architecture.md,
Medical records.

Clinical content is encrypted at rest: entry payloads and document text with the field keys
(medimeet.core.fields), document files with a per-document data key (medimeet.core.envelope).
"""

from __future__ import annotations

import secrets
import uuid

from django.conf import settings
from django.contrib.postgres.indexes import GinIndex
from django.contrib.postgres.search import SearchVectorField
from django.core.exceptions import PermissionDenied
from django.db import models
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from medimeet.core.fields import EncryptedTextField
from medimeet.core.models import AppendOnlyModel


class Category(models.TextChoices):
    """What an entry is about. Grants name categories, plus the unstructured ones below."""

    ALLERGY = "allergy", _("Allergies")
    MEDICATION = "medication", _("Medications")
    CONDITION = "condition", _("Conditions and diagnoses")
    VITAL = "vital", _("Vitals and measurements")
    IMMUNIZATION = "immunization", _("Immunizations")
    LAB_RESULT = "lab_result", _("Lab results")


# What a grant may cover: every structured category, and the unstructured parts of the record.
Scope = models.TextChoices(
    "Scope",
    [(c.name, (c.value, c.label)) for c in Category]
    + [("NOTES", ("notes", _("Consultation notes"))), ("PRESCRIPTIONS", ("prescriptions", _("Prescriptions"))), ("DOCUMENTS", ("documents", _("Documents")))],
)


class SoftDeletable(models.Model):
    """Deletion is a flag with a reason; the row and its content are kept until ``retain_until``
    and then purged (records.services.records_purge_past_retention)."""

    deleted_at = models.DateTimeField(null=True, blank=True)
    deleted_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    deletion_reason = models.CharField(max_length=500, blank=True)
    retain_until = models.DateTimeField(null=True, blank=True)

    class Meta:
        abstract = True

    @property
    def is_deleted(self) -> bool:
        return self.deleted_at is not None


def soft_delete_constraint(name: str) -> models.CheckConstraint:
    return models.CheckConstraint(
        condition=Q(deleted_at__isnull=True, deletion_reason="", retain_until__isnull=True)
        | (Q(deleted_at__isnull=False, retain_until__isnull=False) & ~Q(deletion_reason="")),
        name=name,
    )


class RecordEntryQuerySet(models.QuerySet):
    def live(self) -> RecordEntryQuerySet:
        return self.filter(deleted_at__isnull=True)


class RecordEntry(SoftDeletable):
    """One structured item of a patient's record (an allergy, a lab result...). Its content
    lives in its versions; ``current_version`` points at the newest one."""

    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    patient = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="record_entries")
    category = models.CharField(max_length=20, choices=Category.choices)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    created_at = models.DateTimeField(default=timezone.now)
    current_version = models.OneToOneField("RecordEntryVersion", null=True, on_delete=models.PROTECT, related_name="+")
    version_count = models.PositiveIntegerField(default=0)

    objects = RecordEntryQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at", "-pk"]
        verbose_name_plural = "record entries"
        indexes = [models.Index(fields=["patient", "category", "-created_at"], name="rec_entry_patient_cat_idx")]
        constraints = [
            soft_delete_constraint("rec_entry_deletion_has_reason"),
            models.CheckConstraint(condition=Q(category__in=Category.values), name="rec_entry_category_valid"),
        ]

    def __str__(self) -> str:
        return f"{self.get_category_display()} entry {self.public_id}"


class RecordEntryVersion(AppendOnlyModel):
    """One state of an entry, never changed: a change writes the next version. The payload is
    the entry's fields as JSON (validated per category by records.services), encrypted."""

    class Change(models.TextChoices):
        CREATED = "created", _("Created")
        UPDATED = "updated", _("Updated")
        DELETED = "deleted", _("Deleted")

    entry = models.ForeignKey(RecordEntry, on_delete=models.CASCADE, related_name="versions")
    number = models.PositiveIntegerField()
    change = models.CharField(max_length=10, choices=Change.choices)
    payload = EncryptedTextField()
    author = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    author_role = models.CharField(max_length=20)
    reason = models.CharField(max_length=500, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["entry", "number"]
        constraints = [
            models.UniqueConstraint(fields=["entry", "number"], name="rec_version_unique_number"),
            models.CheckConstraint(condition=Q(number__gte=1), name="rec_version_number_positive"),
        ]

    def __str__(self) -> str:
        return f"Version {self.number} of entry {self.entry_id}"


class Document(SoftDeletable):
    """An uploaded file, stored encrypted with its own data key (wrapped by a master key).
    Never served from a public URL: downloads stream through an authorised view."""

    class Kind(models.TextChoices):
        PDF = "pdf", "PDF"
        DICOM = "dicom", "DICOM"
        JPEG = "jpeg", "JPEG"
        PNG = "png", "PNG"
        WEBP = "webp", "WebP"
        TIFF = "tiff", "TIFF"
        GIF = "gif", "GIF"

    class OcrStatus(models.TextChoices):
        NOT_NEEDED = "not_needed", _("Not needed")
        PENDING = "pending", _("Pending")
        DONE = "done", _("Done")
        UNAVAILABLE = "unavailable", _("OCR unavailable")
        FAILED = "failed", _("Failed")

    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    patient = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="record_documents")
    uploaded_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    created_at = models.DateTimeField(default=timezone.now)
    kind = models.CharField(max_length=10, choices=Kind.choices)
    content_type = models.CharField(max_length=60)
    title = EncryptedTextField()
    original_name = EncryptedTextField(blank=True)
    size = models.PositiveBigIntegerField()
    sha256 = models.CharField(max_length=64)
    # Envelope encryption (medimeet.core.envelope): the storage name of the ciphertext and the
    # data key wrapped by master key ``key_id``.
    file_name = models.CharField(max_length=200, unique=True)
    key_id = models.CharField(max_length=40)
    wrapped_key = models.BinaryField()
    # Non-identifying metadata only (page count, dimensions, DICOM modality/study date/body part).
    metadata = models.JSONField(default=dict, blank=True)
    text = EncryptedTextField(blank=True, help_text=_("Text extracted from the document (PDF text or OCR)."))
    # PostgreSQL full-text index of ``text`` (stemmed lexemes); unused on SQLite.
    search_vector = SearchVectorField(null=True, editable=False)
    ocr_status = models.CharField(max_length=12, choices=OcrStatus.choices, default=OcrStatus.NOT_NEEDED)

    class Meta:
        ordering = ["-created_at", "-pk"]
        indexes = [
            models.Index(fields=["patient", "-created_at"], name="rec_doc_patient_idx"),
            GinIndex(fields=["search_vector"], name="rec_doc_search_idx"),
        ]
        constraints = [soft_delete_constraint("rec_doc_deletion_has_reason")]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} document {self.public_id}"


class AccessGrantQuerySet(models.QuerySet):
    def active(self, now=None) -> AccessGrantQuerySet:
        return self.filter(revoked_at__isnull=True, expires_at__gt=now or timezone.now())


class AccessGrant(models.Model):
    """A patient lets a doctor read their record (all of it, some categories, or chosen
    documents) until ``expires_at`` or until revoked — both take effect on the next request."""

    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    patient = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="record_grants_given")
    doctor = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="record_grants_received")
    whole_record = models.BooleanField(default=False)
    categories = models.JSONField(default=list, blank=True, help_text=_("Scope values (records.models.Scope)."))
    documents = models.ManyToManyField(Document, blank=True, related_name="grants")
    created_at = models.DateTimeField(default=timezone.now)
    expires_at = models.DateTimeField()
    revoked_at = models.DateTimeField(null=True, blank=True)

    objects = AccessGrantQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["doctor", "patient", "expires_at"], name="rec_grant_lookup_idx")]
        constraints = [
            models.CheckConstraint(condition=Q(expires_at__gt=models.F("created_at")), name="rec_grant_expires_after_created"),
            models.CheckConstraint(condition=~Q(patient=models.F("doctor")), name="rec_grant_not_to_self"),
        ]

    def __str__(self) -> str:
        return f"Grant {self.public_id}"

    def is_active(self, now=None) -> bool:
        return self.revoked_at is None and self.expires_at > (now or timezone.now())


class EmergencyAccess(models.Model):
    """Break-glass: a doctor with no relationship or grant states a reason and reads the whole
    record for a few hours; the patient and compliance staff are told, and the event waits for
    review in the admin."""

    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    doctor = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    patient = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    reason = models.TextField()
    started_at = models.DateTimeField(default=timezone.now)
    expires_at = models.DateTimeField()
    reviewed_at = models.DateTimeField(null=True, blank=True)
    reviewed_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    review_note = models.TextField(blank=True)

    class Meta:
        ordering = ["-started_at"]
        verbose_name_plural = "emergency accesses"
        permissions = [
            ("review_emergency_access", "Can review emergency (break-glass) access"),
            ("export_record_audit", "Can export the medical-record audit log"),
            ("decide_erasure", "Can approve or reject record erasure requests"),
        ]
        constraints = [
            models.CheckConstraint(condition=Q(expires_at__gt=models.F("started_at")), name="rec_emergency_expires_after_start"),
            models.CheckConstraint(condition=~Q(reason=""), name="rec_emergency_has_reason"),
            models.CheckConstraint(condition=Q(reviewed_at__isnull=True) | Q(reviewed_by__isnull=False), name="rec_emergency_review_has_reviewer"),
        ]

    def __str__(self) -> str:
        return f"Emergency access {self.public_id}"


def _verification_code() -> str:
    return secrets.token_hex(6).upper()


class Prescription(models.Model):
    """What the doctor prescribed after a consultation. Never edited once issued: a correction
    issues a new prescription that supersedes this one."""

    class Status(models.TextChoices):
        ISSUED = "issued", _("Issued")
        SUPERSEDED = "superseded", _("Superseded")

    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    appointment = models.ForeignKey("appointments.Appointment", on_delete=models.PROTECT, related_name="prescriptions")
    patient = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="prescriptions")
    doctor = models.ForeignKey("doctors.DoctorProfile", on_delete=models.PROTECT, related_name="prescriptions")
    registration_number = models.CharField(max_length=60, help_text=_("The doctor's registration (licence) number when issued."))
    verification_code = models.CharField(max_length=12, unique=True, default=_verification_code)
    status = models.CharField(max_length=12, choices=Status.choices, default=Status.ISSUED)
    issued_at = models.DateTimeField(default=timezone.now)
    supersedes = models.OneToOneField("self", null=True, blank=True, on_delete=models.PROTECT, related_name="superseded_by")
    # {"medicines": [{name, dose, route, frequency, duration, instructions}], "advice", "follow_up"}
    content = EncryptedTextField()

    class Meta:
        ordering = ["-issued_at"]
        constraints = [models.CheckConstraint(condition=Q(status__in=["issued", "superseded"]), name="rec_rx_status_valid")]

    def __str__(self) -> str:
        return f"Prescription {self.verification_code}"

    def save(self, *args, **kwargs) -> None:
        # Issued means final: the only later change is the status flip done by the supersede
        # service with a conditional update.
        if not self._state.adding:
            raise PermissionDenied("An issued prescription cannot be changed; issue one that supersedes it.")
        super().save(*args, **kwargs)


class ErasureRequest(models.Model):
    """A patient asks for their record to be erased; staff decide. An approved request soft-
    deletes every entry and document now; content is purged when legal retention ends."""

    class Status(models.TextChoices):
        PENDING = "pending", _("Pending")
        APPROVED = "approved", _("Approved")
        REJECTED = "rejected", _("Rejected")

    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    patient = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="erasure_requests")
    reason = models.TextField(blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.PENDING)
    decided_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    decided_at = models.DateTimeField(null=True, blank=True)
    decision_note = models.TextField(blank=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(fields=["patient"], condition=Q(status="pending"), name="rec_erasure_one_pending"),
            models.CheckConstraint(condition=Q(status="pending", decided_at__isnull=True) | (~Q(status="pending") & Q(decided_at__isnull=False, decided_by__isnull=False)), name="rec_erasure_decision_recorded"),
        ]

    def __str__(self) -> str:
        return f"Erasure request {self.public_id}"
