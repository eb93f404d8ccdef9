"""Writes to the medical record. Every read and write of clinical content is audited through
``record_audit``; access is decided by ``selectors.record_access`` only."""

from __future__ import annotations

import hashlib
import io
import json
import secrets
from collections.abc import Iterable, Iterator
from datetime import datetime, timedelta
from functools import partial
from typing import IO

from django.conf import settings
from django.contrib.postgres.search import SearchVector
from django.core.files import File
from django.core.files.storage import default_storage
from django.db import connection, transaction
from django.db.models import Value
from django.http import HttpRequest
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from accounts.models import User
from medimeet.core.audit import audit_record
from medimeet.core.envelope import CHUNK, EncryptingReader, WrappedKey, data_key_new, data_key_rewrap, data_key_unwrap, decrypt_stream
from medimeet.core.errors import ApplicationError
from medimeet.core.events import enqueue_on_commit
from medimeet.core.links import LinkExpired, LinkInvalid, signed_link_open, signed_link_token
from medimeet.core.notifications import notify

from . import selectors
from .inspection import document_inspect, ocr_available, ocr_images, ocr_text
from .models import AccessGrant, Document, EmergencyAccess, ErasureRequest, RecordEntry, RecordEntryVersion, Scope
from .payloads import payload_validate
from .selectors import RecordAccess, record_access_require

DOCUMENT_LINK_SALT = "records.document-link"
MAX_REASON = 500


def record_audit(*, access: RecordAccess | None = None, user: User | None = None, patient: User, action: str, target=None, request: HttpRequest | None = None, reason: str = "", **metadata) -> None:
    """One audit entry about ``patient``'s record: who (and on what basis), what, why."""
    details = {k: v for k, v in metadata.items() if v not in (None, "")}
    if access is not None:
        details["basis"] = access.basis
    if reason:
        details["reason"] = reason[:MAX_REASON]
    audit_record(action=f"record.{action}", actor=access.user if access else user, target=target, subject_user=patient, request=request, metadata=details)


def record_notify(*, user: User, event: str, context: dict) -> None:
    """The one place records send a message: ``event`` is ``record.<event>`` of the notification
    catalogue (templates/records/email/<event>_*), never with clinical content."""
    notify(user=user, event=f"record.{event}", context={"record_url": settings.SITE_URL + reverse("records:mine"), **context})


def _reason(reason: str, field: str = "reason") -> str:
    reason = (reason or "").strip()
    if not reason:
        raise ApplicationError("REQ_001", fields={field: [gettext("Give a reason.")]})
    if len(reason) > MAX_REASON:
        raise ApplicationError("REQ_001", fields={field: [gettext("Keep the reason under %(count)d characters.") % {"count": MAX_REASON}]})
    return reason


def _writer(access: RecordAccess) -> None:
    if not access.can_write:
        raise ApplicationError("REC_002", gettext("This access lets you read the record, not change it."))


# --- Structured entries ------------------------------------------------------------------------------


def _version_add(*, entry: RecordEntry, by: User, change: str, payload: dict, reason: str = "") -> RecordEntryVersion:
    version = RecordEntryVersion.objects.create(
        entry=entry, number=entry.version_count + 1, change=change, payload=json.dumps(payload, sort_keys=True), author=by, author_role=by.role, reason=reason
    )
    entry.current_version, entry.version_count = version, version.number
    entry.save(update_fields=["current_version", "version_count", "deleted_at", "deleted_by", "deletion_reason", "retain_until"])
    return version


def entry_create(*, by: User, patient: User, category: str, payload: dict, request: HttpRequest | None = None) -> RecordEntry:
    """A new entry with its first version; the patient or a doctor with a relationship."""
    access = record_access_require(user=by, patient=patient)
    _writer(access)
    clean = payload_validate(category, payload)
    with transaction.atomic():
        entry = RecordEntry.objects.create(patient=patient, category=category, created_by=by)
        _version_add(entry=entry, by=by, change=RecordEntryVersion.Change.CREATED, payload=clean)
        record_audit(access=access, patient=patient, action="entry_created", target=entry, request=request, category=category, version=1)
    return entry


def entry_update(*, by: User, entry: RecordEntry, payload: dict, request: HttpRequest | None = None) -> RecordEntry:
    """The next version of an entry; the previous ones stay as they were."""
    access = record_access_require(user=by, patient=entry.patient, scope=entry.category)
    _writer(access)
    clean = payload_validate(entry.category, payload)
    with transaction.atomic():
        entry = RecordEntry.objects.select_for_update().get(pk=entry.pk)  # versions are numbered in order
        if entry.is_deleted:
            raise ApplicationError("REC_004")
        _version_add(entry=entry, by=by, change=RecordEntryVersion.Change.UPDATED, payload=clean)
        record_audit(access=access, patient=entry.patient, action="entry_updated", target=entry, request=request, category=entry.category, version=entry.version_count)
    return entry


def entry_delete(*, by: User, entry: RecordEntry, reason: str, request: HttpRequest | None = None) -> RecordEntry:
    """Soft delete with a reason: a last version marks it, and it is kept for the retention period."""
    access = record_access_require(user=by, patient=entry.patient, scope=entry.category)
    _writer(access)
    reason = _reason(reason)
    with transaction.atomic():
        entry = RecordEntry.objects.select_for_update(of=("self",)).select_related("current_version").get(pk=entry.pk)
        if entry.is_deleted:
            raise ApplicationError("REC_004")
        now = timezone.now()
        entry.deleted_at, entry.deleted_by, entry.deletion_reason = now, by, reason
        entry.retain_until = now + timedelta(days=settings.RECORDS_RETENTION_DAYS)
        _version_add(entry=entry, by=by, change=RecordEntryVersion.Change.DELETED, payload=selectors.entry_payload(entry.current_version), reason=reason)
        record_audit(access=access, patient=entry.patient, action="entry_deleted", target=entry, request=request, reason=reason, category=entry.category)
    return entry


# --- Documents -------------------------------------------------------------------------------------


def document_upload(*, by: User, patient: User, file: IO[bytes], size: int, title: str, original_name: str = "", request: HttpRequest | None = None) -> Document:
    """Inspect (type, limits, scanners), encrypt with a fresh data key and store. A refused file
    is never written anywhere; OCR and indexing follow after commit."""
    access = record_access_require(user=by, patient=patient, scope=Scope.DOCUMENTS)
    _writer(access)
    title = (title or "").strip()[:200] or (original_name or "Document")[:200]
    inspection = document_inspect(file, size=size)
    key, wrapped = data_key_new()
    digest = hashlib.sha256()
    file.seek(0)
    # Encrypted while the storage reads it: one pass, no plaintext or second copy written anywhere.
    encrypted = io.BufferedReader(EncryptingReader(key, _hashing(file, digest)), buffer_size=CHUNK)
    name = default_storage.save(f"records/{patient.public_id.hex}/{secrets.token_hex(16)}.bin", File(encrypted))
    try:
        with transaction.atomic():
            document = Document.objects.create(
                patient=patient, uploaded_by=by, kind=inspection.detected.kind, content_type=inspection.detected.content_type, title=title,
                original_name=(original_name or "")[:200], size=size, sha256=digest.hexdigest(), file_name=name, key_id=wrapped.key_id,
                wrapped_key=wrapped.wrapped, metadata=inspection.metadata, text=inspection.text,
                ocr_status=Document.OcrStatus.PENDING if inspection.needs_ocr else Document.OcrStatus.NOT_NEEDED,
            )
            record_audit(access=access, patient=patient, action="document_uploaded", target=document, request=request, kind=document.kind, size=size)
            from .tasks import index_document

            enqueue_on_commit(index_document, document_id=document.pk)
    except BaseException:
        default_storage.delete(name)
        raise
    return document


class _hashing:
    """A read-only file wrapper that feeds what is read into a hash (one pass over the upload)."""

    def __init__(self, file: IO[bytes], digest) -> None:
        self.file, self.digest = file, digest

    def read(self, size: int = -1) -> bytes:
        data = self.file.read(size)
        self.digest.update(data)
        return data


def document_content(document: Document) -> Iterator[bytes]:
    """The plaintext of a document, decrypted chunk by chunk as it is read from storage."""
    key = data_key_unwrap(WrappedKey(document.key_id, bytes(document.wrapped_key)))
    with default_storage.open(document.file_name, "rb") as stored:
        yield from decrypt_stream(key, stored)


def document_link_create(*, document: Document, access: RecordAccess, request: HttpRequest | None = None) -> tuple[str, datetime]:
    """A short-lived signed link for downloading ``document`` in a browser. It names the user it
    was made for: it works only for them and only while their access still covers the document."""
    minutes = settings.RECORDS_LINK_MINUTES
    token = signed_link_token(salt=DOCUMENT_LINK_SALT, payload={"d": document.public_id.hex, "u": access.user.public_id.hex}, minutes=minutes)
    record_audit(access=access, patient=document.patient, action="document_link_created", target=document, request=request, minutes=minutes)
    return token, timezone.now() + timedelta(minutes=minutes)


def document_link_open(*, token: str, user: User) -> tuple[Document, RecordAccess]:
    """The document and access behind a signed link: REC_006 when it has expired, REC_001 when
    it was never valid or is not ``user``'s, and the access is checked again right now."""
    try:
        payload = signed_link_open(salt=DOCUMENT_LINK_SALT, token=token)
    except LinkExpired as exc:
        raise ApplicationError("REC_006") from exc
    except LinkInvalid as exc:
        raise ApplicationError("REC_001") from exc
    if not getattr(user, "is_authenticated", False) or payload.get("u") != user.public_id.hex:
        raise ApplicationError("REC_001")
    return selectors.document_get(user=user, document_id=payload.get("d"))


def document_delete(*, by: User, document: Document, reason: str, request: HttpRequest | None = None) -> Document:
    access = record_access_require(user=by, patient=document.patient, scope=Scope.DOCUMENTS)
    _writer(access)
    reason = _reason(reason)
    now = timezone.now()
    with transaction.atomic():
        claimed = Document.objects.filter(pk=document.pk, deleted_at__isnull=True).update(
            deleted_at=now, deleted_by=by, deletion_reason=reason, retain_until=now + timedelta(days=settings.RECORDS_RETENTION_DAYS)
        )
        if not claimed:
            raise ApplicationError("REC_004")
        record_audit(access=access, patient=document.patient, action="document_deleted", target=document, request=request, reason=reason)
    document.refresh_from_db()
    return document


def document_index(*, document_id: int) -> str:
    """Extract text by OCR where needed and refresh the full-text index. Idempotent."""
    document = Document.objects.filter(pk=document_id, deleted_at__isnull=True).first()
    if document is None:
        return "gone"
    if document.ocr_status == Document.OcrStatus.PENDING:
        if not ocr_available():
            status, text = Document.OcrStatus.UNAVAILABLE, document.text
        else:
            try:
                found = ocr_text(ocr_images(document.kind, b"".join(document_content(document))))
                status, text = Document.OcrStatus.DONE, "\n".join(t for t in (document.text, found) if t)
            except (OSError, ValueError) as exc:
                import logging

                logging.getLogger("medimeet.records").warning("OCR failed", extra={"document": document.pk, "error": type(exc).__name__})
                status, text = Document.OcrStatus.FAILED, document.text
        Document.objects.filter(pk=document.pk).update(ocr_status=status, text=text)
        document.text, document.ocr_status = text, status
    if connection.vendor == "postgresql":
        Document.objects.filter(pk=document.pk).update(search_vector=SearchVector(Value(document.text or ""), config="english"))
    return document.ocr_status


def documents_rewrap_keys(*, batch_size: int = 500) -> int:
    """Re-wrap every document's data key under the newest master key (file contents unchanged).
    Each row is claimed with a conditional update, so two runs at once never clash."""
    from medimeet.core.envelope import master_key_current_id

    current, done = master_key_current_id(), 0
    while batch := list(Document.objects.exclude(key_id=current).only("pk", "key_id", "wrapped_key")[:batch_size]):
        for document in batch:
            rewrapped = data_key_rewrap(WrappedKey(document.key_id, bytes(document.wrapped_key)))
            done += Document.objects.filter(pk=document.pk, key_id=document.key_id).update(key_id=rewrapped.key_id, wrapped_key=rewrapped.wrapped)
    return done


# --- Grants and emergency access -----------------------------------------------------------------------


def grant_create(
    *, patient: User, doctor: User, expires_at: datetime, whole_record: bool = False, categories: Iterable[str] = (), documents: Iterable[Document] = (), request: HttpRequest | None = None
) -> AccessGrant:
    """The patient lets a doctor read (not change) all or part of their record until ``expires_at``."""
    if patient.role != User.Role.PATIENT:
        raise ApplicationError("REC_002", gettext("Only patients grant access to their record."))
    if doctor.role != User.Role.DOCTOR or not doctor.is_active or not hasattr(doctor, "doctor_profile"):
        raise ApplicationError("REC_005", fields={"doctor": [gettext("Choose a doctor.")]})
    categories = sorted(set(categories))
    unknown = [c for c in categories if c not in Scope.values]
    if unknown:
        raise ApplicationError("REC_005", fields={"categories": [gettext("Unknown categories: %(names)s.") % {"names": ", ".join(unknown)}]})
    documents = list(documents)
    if any(d.patient_id != patient.pk or d.is_deleted for d in documents):
        raise ApplicationError("REC_005", fields={"documents": [gettext("Choose documents of your own record.")]})
    if not whole_record and not categories and not documents:
        raise ApplicationError("REC_005", fields={"categories": [gettext("Choose what the doctor may see.")]})
    now = timezone.now()
    if not now < expires_at <= now + timedelta(days=settings.RECORDS_GRANT_MAX_DAYS):
        raise ApplicationError("REC_005", fields={"expires_at": [gettext("Choose a time in the next %(days)d days.") % {"days": settings.RECORDS_GRANT_MAX_DAYS}]})
    with transaction.atomic():
        grant = AccessGrant.objects.create(patient=patient, doctor=doctor, whole_record=whole_record, categories=[] if whole_record else categories, created_at=now, expires_at=expires_at)
        if documents and not whole_record:
            grant.documents.set(documents)
        record_audit(user=patient, patient=patient, action="grant_created", target=grant, request=request, doctor=str(doctor.public_id), whole_record=whole_record, categories=",".join(grant.categories), documents=len(documents), expires_at=expires_at.isoformat())
        scope = _("the whole") if whole_record else _("part")
        patient_url = settings.SITE_URL + reverse("records:patient", args=[patient.public_id])
        record_notify(user=doctor, event="access_granted", context={"grant": grant, "scope": scope, "record_url": patient_url})
    return grant


def grant_revoke(*, grant: AccessGrant, by: User, request: HttpRequest | None = None) -> AccessGrant:
    """Revoked from this instant: the doctor's next request is refused."""
    if grant.patient_id != by.pk:
        raise ApplicationError("REC_001")
    with transaction.atomic():
        if not AccessGrant.objects.filter(pk=grant.pk, revoked_at__isnull=True).update(revoked_at=timezone.now()):
            raise ApplicationError("REC_007")
        record_audit(user=by, patient=grant.patient, action="grant_revoked", target=grant, request=request, doctor=str(grant.doctor.public_id))
    grant.refresh_from_db()
    return grant


def emergency_access_start(*, doctor: User, patient: User, reason: str, request: HttpRequest | None = None) -> EmergencyAccess:
    """Break-glass: time-limited read access for a doctor who states why; the patient and the
    compliance staff are told and the event is flagged for review."""
    reason = _reason(reason)
    if doctor.role != User.Role.DOCTOR or not hasattr(doctor, "doctor_profile") or patient.role != User.Role.PATIENT:
        raise ApplicationError("REC_008")
    now = timezone.now()
    with transaction.atomic():
        access = EmergencyAccess.objects.create(doctor=doctor, patient=patient, reason=reason, started_at=now, expires_at=now + timedelta(hours=settings.RECORDS_EMERGENCY_ACCESS_HOURS))
        record_audit(user=doctor, patient=patient, action="emergency_access", target=access, request=request, reason=reason, expires_at=access.expires_at.isoformat(), flagged=True)
        context = {"access": access, "doctor_name": str(doctor.doctor_profile)}
        record_notify(user=patient, event="emergency_access_patient", context=context)
        for reviewer in selectors.emergency_reviewers():
            record_notify(user=reviewer, event="emergency_access_review", context={**context, "admin_url": f"{settings.SITE_URL}/admin/records/emergencyaccess/{access.pk}/change/"})
    return access


def emergency_access_review(*, access: EmergencyAccess, by: User, note: str, request: HttpRequest | None = None) -> EmergencyAccess:
    if not (by.is_staff and by.has_perm("records.review_emergency_access")):
        raise ApplicationError("AUTH_010")
    note = _reason(note, "review_note")
    with transaction.atomic():
        if not EmergencyAccess.objects.filter(pk=access.pk, reviewed_at__isnull=True).update(reviewed_at=timezone.now(), reviewed_by=by, review_note=note):
            raise ApplicationError("REC_009")
        audit_record(action="record.emergency_access_reviewed", actor=by, target=access, subject_user=access.patient, request=request, metadata={"doctor": str(access.doctor.public_id)})
    access.refresh_from_db()
    return access


# --- Retention -------------------------------------------------------------------------------------------


def records_purge_past_retention(*, now: datetime | None = None) -> int:
    """Remove deleted entries (with their versions) and documents (with their files) whose
    retention has ended. The audit trail of them stays. Idempotent."""
    now = now or timezone.now()
    purged = 0
    for document in Document.objects.filter(retain_until__lte=now).only("pk", "file_name")[:500]:
        with transaction.atomic():
            if Document.objects.filter(pk=document.pk).delete()[0]:
                transaction.on_commit(partial(default_storage.delete, document.file_name))
                purged += 1
    for entry in RecordEntry.objects.filter(retain_until__lte=now).only("pk")[:500]:
        with transaction.atomic():
            RecordEntry.objects.filter(pk=entry.pk).update(current_version=None)
            RecordEntry.objects.filter(pk=entry.pk).delete()
        purged += 1
    return purged


def erasure_request_create(*, patient: User, reason: str = "", request: HttpRequest | None = None) -> ErasureRequest:
    if patient.role != User.Role.PATIENT:
        raise ApplicationError("REC_002")
    if ErasureRequest.objects.filter(patient=patient, status=ErasureRequest.Status.PENDING).exists():
        raise ApplicationError("REC_014")
    with transaction.atomic():
        erasure = ErasureRequest.objects.create(patient=patient, reason=(reason or "").strip()[:2000])
        record_audit(user=patient, patient=patient, action="erasure_requested", target=erasure, request=request)
    return erasure


def erasure_request_decide(*, erasure: ErasureRequest, by: User, approve: bool, note: str, request: HttpRequest | None = None) -> ErasureRequest:
    """Staff approve or reject. Approval soft-deletes every entry and document now ("erasure"),
    keeping them for the legal retention period, after which they are purged."""
    if not (by.is_staff and by.has_perm("records.decide_erasure")):
        raise ApplicationError("AUTH_010")
    note = _reason(note, "decision_note")
    now = timezone.now()
    with transaction.atomic():
        status = ErasureRequest.Status.APPROVED if approve else ErasureRequest.Status.REJECTED
        if not ErasureRequest.objects.filter(pk=erasure.pk, status=ErasureRequest.Status.PENDING).update(status=status, decided_by=by, decided_at=now, decision_note=note):
            raise ApplicationError("REC_015")
        patient = erasure.patient
        if approve:
            retain_until = now + timedelta(days=settings.RECORDS_RETENTION_DAYS)
            Document.objects.filter(patient=patient, deleted_at__isnull=True).update(deleted_at=now, deleted_by=by, deletion_reason="Erasure request", retain_until=retain_until)
            for entry in RecordEntry.objects.live().filter(patient=patient).select_related("current_version").select_for_update(of=("self",)):
                entry.deleted_at, entry.deleted_by, entry.deletion_reason, entry.retain_until = now, by, "Erasure request", retain_until
                _version_add(entry=entry, by=by, change=RecordEntryVersion.Change.DELETED, payload=selectors.entry_payload(entry.current_version), reason="Erasure request")
            AccessGrant.objects.filter(patient=patient, revoked_at__isnull=True).update(revoked_at=now)
        audit_record(action="record.erasure_decided", actor=by, target=erasure, subject_user=patient, request=request, metadata={"approved": approve})
        record_notify(user=patient, event="erasure_decided", context={"erasure": erasure, "approved": approve, "retention_days": settings.RECORDS_RETENTION_DAYS})
    erasure.refresh_from_db()
    return erasure


AUDIT_COLUMNS = ["created_at", "action", "actor", "actor_role", "patient", "target_type", "target_id", "ip_address", "basis", "reason", "request_id"]


def audit_log_export(*, by: User, since=None, until=None, request: HttpRequest | None = None) -> Iterator[list]:
    """The records audit log as rows (header first) for staff allowed to export it; the export
    itself is audited. No clinical content: ids, roles, reasons."""
    from medimeet.core.models import AuditEvent

    if not (by.is_staff and by.has_perm("records.export_record_audit")):
        raise ApplicationError("AUTH_010")
    events = AuditEvent.objects.filter(action__startswith="record.").select_related("actor", "subject_user").order_by("created_at")
    if since:
        events = events.filter(created_at__date__gte=since)
    if until:
        events = events.filter(created_at__date__lte=until)
    audit_record(action="record.audit_exported", actor=by, request=request, metadata={"since": str(since or ""), "until": str(until or "")})

    def rows():
        yield AUDIT_COLUMNS
        for e in events.iterator(chunk_size=1000):
            yield [
                e.created_at.isoformat(), e.action, e.actor.email if e.actor else "", e.actor_role, str(e.subject_user.public_id) if e.subject_user else "",
                e.target_type, e.target_id, e.ip_address or "", e.metadata.get("basis", ""), e.metadata.get("reason", ""), e.request_id,
            ]

    return rows()
