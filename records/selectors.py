"""Reads of the medical record. ``record_access`` is the one place that decides who may read
what; every API view, page and service asks it (docs/architecture.md, Medical records)."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from datetime import timedelta

from django.conf import settings
from django.contrib.postgres.search import SearchQuery, SearchRank
from django.db import connection
from django.db.models import F, QuerySet
from django.utils import timezone

from accounts.models import User
from appointments.models import Appointment, ClinicalNote
from medimeet.core.errors import ApplicationError
from medimeet.core.models import AuditEvent

from .models import AccessGrant, Document, EmergencyAccess, Prescription, RecordEntry, RecordEntryVersion, Scope

ALL_SCOPES = frozenset(Scope.values)
# Appointments that make a doctor "the patient's doctor" for the relationship window.
RELATIONSHIP_STATUSES = (Appointment.Status.CONFIRMED, Appointment.Status.IN_PROGRESS, Appointment.Status.COMPLETED)


@dataclass(frozen=True)
class RecordAccess:
    """What ``user`` may read of ``patient``'s record, and on what basis (for the audit trail)."""

    user: User
    patient: User
    basis: str  # "owner", "relationship", "emergency", "grant"
    scopes: frozenset[str] = ALL_SCOPES
    document_ids: frozenset[int] = field(default_factory=frozenset)
    can_write: bool = False

    def allows(self, scope: str) -> bool:
        return scope in self.scopes

    def allows_document(self, document: Document) -> bool:
        return Scope.DOCUMENTS in self.scopes or document.pk in self.document_ids


def _relationship(doctor: User, patient: User, now) -> bool:
    return Appointment.objects.filter(
        doctor__user=doctor,
        patient=patient,
        status__in=RELATIONSHIP_STATUSES,
        start__gte=now - timedelta(days=settings.RECORDS_RELATIONSHIP_PAST_DAYS),
        start__lte=now + timedelta(days=settings.RECORDS_RELATIONSHIP_UPCOMING_DAYS),
    ).exists()


def record_access(*, user: User | None, patient: User) -> RecordAccess | None:
    """The access ``user`` has to ``patient``'s record right now, or None.

    The patient owns it. A doctor reads it while they have a relationship (an appointment in the
    configured window), an active emergency access, or an active grant (limited to its scope).
    Staff have no access to clinical content. Expiry and revocation count from this instant.
    """
    if user is None or not user.is_authenticated or not user.is_active or user.is_blocked or patient.role != User.Role.PATIENT:
        return None
    if user.pk == patient.pk:
        return RecordAccess(user=user, patient=patient, basis="owner", can_write=True)
    if user.role != User.Role.DOCTOR or user.is_staff:
        return None
    now = timezone.now()
    if _relationship(user, patient, now):
        return RecordAccess(user=user, patient=patient, basis="relationship", can_write=True)
    if EmergencyAccess.objects.filter(doctor=user, patient=patient, started_at__lte=now, expires_at__gt=now).exists():
        return RecordAccess(user=user, patient=patient, basis="emergency", can_write=False)
    grants = list(AccessGrant.objects.active(now).filter(doctor=user, patient=patient).prefetch_related("documents"))
    if not grants:
        return None
    if any(grant.whole_record for grant in grants):
        return RecordAccess(user=user, patient=patient, basis="grant")
    scopes = frozenset(scope for grant in grants for scope in grant.categories)
    documents = frozenset(document.pk for grant in grants for document in grant.documents.all())
    return RecordAccess(user=user, patient=patient, basis="grant", scopes=scopes, document_ids=documents)


def record_access_require(*, user: User | None, patient: User, scope: str | None = None) -> RecordAccess:
    """``record_access`` or REC_001 (404: the record is not even acknowledged to exist); with
    ``scope``, REC_002 (403) when the access does not cover it."""
    access = record_access(user=user, patient=patient)
    if access is None:
        raise ApplicationError("REC_001")
    if scope is not None and not access.allows(scope) and not (scope == Scope.DOCUMENTS and access.document_ids):
        raise ApplicationError("REC_002")
    return access


def patient_by_public_id(public_id) -> User:
    patient = User.objects.filter(public_id=public_id, role=User.Role.PATIENT).first()
    if patient is None:
        raise ApplicationError("REC_001")
    return patient


# --- Entries -------------------------------------------------------------------------------------


def entry_payload(version: RecordEntryVersion) -> dict:
    return json.loads(version.payload)


def entries_for(*, access: RecordAccess, category: str | None = None) -> QuerySet[RecordEntry]:
    qs = RecordEntry.objects.live().filter(patient=access.patient, category__in=[c for c in access.scopes if c in Scope.values]).select_related("current_version__author", "created_by")
    if category:
        qs = qs.filter(category=category)
    return qs


def entry_get(*, user: User, entry_id) -> tuple[RecordEntry, RecordAccess]:
    """An entry the user may read (including deleted ones: their history stays readable)."""
    entry = RecordEntry.objects.select_related("patient", "current_version__author").filter(public_id=entry_id).first()
    if entry is None:
        raise ApplicationError("REC_001")
    access = record_access_require(user=user, patient=entry.patient)
    if not access.allows(entry.category):
        raise ApplicationError("REC_002")
    return entry, access


def entry_versions(entry: RecordEntry) -> list[RecordEntryVersion]:
    return list(entry.versions.select_related("author").order_by("number"))


def entry_history(entry: RecordEntry) -> list[RecordEntryVersion]:
    """The versions oldest first, each with its ``payload`` and its ``changes`` against the one before."""
    versions, previous = entry_versions(entry), None
    for version in versions:
        version.payload = entry_payload(version)
        version.changes = version_diff(previous, version.payload)
        previous = version.payload
    return versions


def version_diff(previous: dict | None, current: dict) -> list[dict]:
    """Field by field what changed from ``previous`` to ``current`` (all fields for the first)."""
    previous = previous or {}
    names = list(dict.fromkeys([*previous, *current]))
    return [
        {"field": name, "before": previous.get(name), "after": current.get(name)}
        for name in names
        if previous.get(name) != current.get(name)
    ]


# --- Documents -----------------------------------------------------------------------------------


def documents_for(*, access: RecordAccess) -> QuerySet[Document]:
    qs = Document.objects.filter(patient=access.patient, deleted_at__isnull=True)
    if Scope.DOCUMENTS not in access.scopes:
        qs = qs.filter(pk__in=access.document_ids)
    return qs.select_related("uploaded_by")


def document_get(*, user: User, document_id) -> tuple[Document, RecordAccess]:
    document = Document.objects.select_related("patient").filter(public_id=document_id, deleted_at__isnull=True).first()
    if document is None:
        raise ApplicationError("REC_001")
    access = record_access_require(user=user, patient=document.patient)
    if not access.allows_document(document):
        raise ApplicationError("REC_002")
    return document, access


def documents_search(*, access: RecordAccess, q: str) -> list[Document]:
    """Documents of the record whose extracted text matches ``q``, within what ``access``
    covers. PostgreSQL: full-text over the indexed lexemes. Elsewhere the text is encrypted,
    so the (one patient's, permitted) documents are decrypted and matched word by word."""
    q = q.strip()[:200]
    if not q:
        return []
    qs = documents_for(access=access)
    if connection.vendor == "postgresql":
        query = SearchQuery(q, search_type="websearch", config="english")
        return list(qs.filter(search_vector=query).annotate(rank=SearchRank(F("search_vector"), query)).order_by("-rank", "-created_at")[:50])
    words = re.findall(r"\w+", q.lower())[:8]
    found = []
    for document in qs.iterator(chunk_size=200):
        text = (document.text or "").lower()
        if words and all(word in text for word in words):
            found.append(document)
    return found[:50]


# --- Timeline, prescriptions, grants, access log ---------------------------------------------------


def clinical_notes_for(*, access: RecordAccess) -> list[ClinicalNote]:
    if not access.allows(Scope.NOTES):
        return []
    notes = ClinicalNote.objects.filter(appointment__patient=access.patient).select_related("appointment__doctor__user", "author").order_by("-appointment__start")
    return [note for note in notes if note.text]  # encrypted: filtered after decryption


def prescriptions_for(*, access: RecordAccess) -> list[Prescription]:
    if not access.allows(Scope.PRESCRIPTIONS):
        return []
    return list(Prescription.objects.filter(patient=access.patient).select_related("doctor__user", "appointment").order_by("-issued_at"))


def timeline(*, access: RecordAccess) -> list[dict]:
    """Everything the access covers, newest first, as (when, kind, object) items."""
    items = [{"at": entry.current_version.created_at, "kind": "entry", "object": entry} for entry in entries_for(access=access)]
    items += [{"at": document.created_at, "kind": "document", "object": document} for document in documents_for(access=access)]
    items += [{"at": note.appointment.start, "kind": "note", "object": note} for note in clinical_notes_for(access=access)]
    items += [{"at": rx.issued_at, "kind": "prescription", "object": rx} for rx in prescriptions_for(access=access)]
    return sorted(items, key=lambda item: item["at"], reverse=True)


def grants_of(patient: User) -> QuerySet[AccessGrant]:
    return AccessGrant.objects.filter(patient=patient).select_related("doctor").prefetch_related("documents").order_by("-created_at")


ACTION_LABELS = {
    "record.read": "opened the record",
    "record.entry_read": "opened an entry",
    "record.history_read": "looked at an entry's history",
    "record.entry_created": "added an entry",
    "record.entry_updated": "changed an entry",
    "record.entry_deleted": "deleted an entry",
    "record.document_uploaded": "uploaded a document",
    "record.document_read": "looked at a document's details",
    "record.document_link_created": "asked to download a document",
    "record.document_downloaded": "downloaded a document",
    "record.document_deleted": "deleted a document",
    "record.search": "searched the documents",
    "record.grant_created": "gave access",
    "record.grant_revoked": "revoked access",
    "record.emergency_access": "used emergency access",
    "record.emergency_access_reviewed": "reviewed an emergency access",
    "record.prescription_issued": "issued a prescription",
    "record.prescription_read": "opened a prescription",
    "record.prescription_downloaded": "downloaded a prescription",
    "record.exported": "exported the record",
    "record.erasure_requested": "asked for erasure",
    "record.erasure_decided": "decided on erasure",
}


def access_log(patient: User, *, limit: int = 200) -> list[AuditEvent]:
    """Who touched the patient's record: every records audit entry about them, newest first,
    each with a ``label`` in words."""
    events = list(AuditEvent.objects.filter(subject_user=patient, action__startswith="record.").select_related("actor__doctor_profile").order_by("-created_at")[:limit])
    for event in events:
        event.label = ACTION_LABELS.get(event.action, event.action.removeprefix("record.").replace("_", " "))
        profile = getattr(event.actor, "doctor_profile", None) if event.actor else None
        event.who = profile.display_name if profile else (event.actor.display_name if event.actor else "")
    return events


def emergency_reviewers() -> QuerySet[User]:
    """Compliance staff: active staff with the permission to review emergency access."""
    from django.contrib.auth.models import Permission
    from django.db.models import Q

    permission = Permission.objects.filter(codename="review_emergency_access", content_type__app_label="records").first()
    return User.objects.filter(Q(user_permissions=permission) | Q(groups__permissions=permission) | Q(is_superuser=True), is_active=True, is_staff=True).distinct()
