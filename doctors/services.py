"""Everything that changes doctors: applications, invitations, verification, profiles, services."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

from allauth.account.internal.flows.email_verification import send_verification_email_to_address
from allauth.account.models import EmailAddress
from django.conf import settings
from django.core import signing
from django.core.files.uploadedfile import UploadedFile
from django.db import IntegrityError, connection, transaction
from django.db.models import Count, Min
from django.http import HttpRequest
from django.urls import reverse
from django.utils import timezone
from django.utils.text import slugify
from django.utils.translation import gettext

from accounts.models import User
from accounts.services import password_check
from medimeet.core.audit import audit_record
from medimeet.core.errors import ApplicationError
from medimeet.core.notifications import notify
from medimeet.core.uploads import DetectedType, upload_validate

from .models import (
    Certification,
    DoctorDocument,
    DoctorProfile,
    DoctorService,
    Education,
    Language,
    Position,
    SearchTally,
    Specialization,
    VerificationEvent,
)

Status = DoctorProfile.Status
DOCUMENT_KINDS = {"pdf", "jpeg", "png"}
INVITATION_SALT = "medimeet.doctors.invitation"

# Registration number formats of the authorities we know; elsewhere a generic shape applies.
LICENCE_FORMATS: dict[str, tuple[re.Pattern[str], str]] = {
    "GB": (re.compile(r"^\d{7}$"), "a 7-digit GMC number"),
    "IE": (re.compile(r"^\d{5,6}$"), "a 5–6 digit IMC number"),
    "AU": (re.compile(r"^MED\d{10}$"), "an AHPRA number such as MED0001234567"),
    "IN": (re.compile(r"^[A-Z]{0,6}[-/]?(\d{4}/)?\d{3,7}$"), "a state medical council number such as MMC-2012/12345 or 45123"),
    "US": (re.compile(r"^[A-Z]{0,3}\d{4,10}$"), "a state licence number such as A123456"),
}
GENERIC_LICENCE = (re.compile(r"^[A-Z0-9][A-Z0-9/-]{3,29}$"), "4–30 letters, digits, / or -")


# --- Validation -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Licence:
    number: str
    authority: str
    country: str
    expiry: date


def licence_clean(*, number: str, authority: str, country: str, expiry: date | None, exclude: DoctorProfile | None = None) -> Licence:
    """Normalise and validate licence details; raises DOC_003 with a message per field."""
    errors: dict[str, list[str]] = {}
    country = (country or "").strip().upper()
    number = re.sub(r"\s+", "", (number or "").upper())
    if not re.fullmatch(r"[A-Z]{2}", country):
        errors["licence_country"] = [gettext("Use the two-letter country code, e.g. IN, GB, US.")]
    pattern, description = LICENCE_FORMATS.get(country, GENERIC_LICENCE)
    if not number:
        errors["licence_number"] = [gettext("The licence number is required.")]
    elif not pattern.fullmatch(number):
        errors["licence_number"] = [f"Enter {description}."]
    if not (authority or "").strip():
        errors["licence_authority"] = [gettext("Name the authority that issued the licence.")]
    if expiry is None or expiry <= timezone.localdate():
        errors["licence_expiry"] = [gettext("The licence must still be valid (expiry date in the future).")]
    if "licence_number" not in errors and "licence_country" not in errors:
        duplicates = DoctorProfile.objects.filter(licence_country=country, licence_number=number)
        if exclude is not None:
            duplicates = duplicates.exclude(pk=exclude.pk)
        if duplicates.exists():
            errors["licence_number"] = [gettext("This licence number is already registered.")]
    if errors:
        raise ApplicationError("DOC_003", gettext("The licence details are not valid."), fields=errors)
    return Licence(number=number, authority=authority.strip(), country=country, expiry=expiry)


def documents_validate(uploads: Iterable[UploadedFile], *, field: str = "document") -> list[tuple[UploadedFile, DetectedType]]:
    """Check every upload by content before anything is written (DOC_004 on the first bad one)."""
    return [
        (upload, upload_validate(upload, allowed=DOCUMENT_KINDS, max_bytes=settings.DOCTOR_DOCUMENT_MAX_BYTES, code="DOC_004", field=field))
        for upload in uploads
    ]


class _StoredFiles:
    """Files written inside a transaction; removed again if the transaction fails (Django has
    no on-rollback hook, so services wrap their atomic block in ``with _StoredFiles() as files``)."""

    def __init__(self) -> None:
        self.items: list[tuple[Any, str]] = []

    def __enter__(self) -> _StoredFiles:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is not None:
            for storage, name in self.items:
                storage.delete(name)

    def add(self, *, doctor: DoctorProfile, kind: str, upload: UploadedFile, detected: DetectedType) -> DoctorDocument:
        document = DoctorDocument(
            doctor=doctor, kind=kind, original_name=(upload.name or "document")[:255], content_type=detected.content_type, size=upload.size
        )
        document.file.save("upload", upload, save=False)
        self.items.append((document.file.storage, document.file.name))
        document.save()
        return document


def _unique_slug(user: User) -> str:
    base = slugify(f"dr-{user.first_name}-{user.last_name}")[:140] or "dr"
    taken = set(DoctorProfile.objects.filter(slug__startswith=base).values_list("slug", flat=True))
    slug, n = base, 1
    while slug in taken:
        n += 1
        slug = f"{base}-{n}"
    return slug


def _record_transition(*, doctor: DoctorProfile, from_status: str, to_status: str, by: User | None, reason: str = "", request: HttpRequest | None = None) -> None:
    VerificationEvent.objects.create(doctor=doctor, from_status=from_status, to_status=to_status, by=by, reason=reason)
    audit_record(
        action=f"doctor.verification.{to_status}",
        actor=by,
        target=doctor,
        subject_user=doctor.user,
        request=request,
        metadata={"from": from_status, "to": to_status, "reason": reason[:500]},
    )


def _notify(doctor: DoctorProfile, event: str, **context: Any) -> None:
    notify(user=doctor.user, event=event, context={"doctor": doctor, "portal_url": settings.SITE_URL + reverse("doctors:portal"), **context})


# --- Applications and invitations -----------------------------------------------------------


def doctor_apply(
    *,
    request: HttpRequest,
    email: str,
    password: str,
    first_name: str,
    last_name: str,
    licence_number: str,
    licence_authority: str,
    licence_country: str,
    licence_expiry: date | None,
    primary_specialization: Specialization,
    licence_document: UploadedFile,
    qualification_documents: Iterable[UploadedFile] = (),
    timezone_name: str = "UTC",
    years_experience: int = 0,
) -> DoctorProfile:
    """A doctor applies: a new account (email to verify), a submitted application, documents."""
    email = email.strip().lower()
    if User.objects.filter(email=email).exists():
        raise ApplicationError("USER_002", fields={"email": [gettext("An account with this email address already exists.")]})
    password_check(password, User(email=email, first_name=first_name, last_name=last_name))
    licence = licence_clean(number=licence_number, authority=licence_authority, country=licence_country, expiry=licence_expiry)
    documents = documents_validate([licence_document], field="licence_document") + documents_validate(qualification_documents, field="qualification_documents")
    try:
        with _StoredFiles() as files, transaction.atomic():
            user = User.objects.create_user(
                email=email, password=password, first_name=first_name, last_name=last_name, role=User.Role.DOCTOR, timezone=timezone_name
            )
            address = EmailAddress.objects.create(user=user, email=email, primary=True, verified=False)
            doctor = DoctorProfile.objects.create(
                user=user,
                slug=_unique_slug(user),
                licence_number=licence.number,
                licence_authority=licence.authority,
                licence_country=licence.country,
                licence_expiry=licence.expiry,
                primary_specialization=primary_specialization,
                years_experience=years_experience,
                country=licence.country,
            )
            for index, (upload, detected) in enumerate(documents):
                kind = DoctorDocument.Kind.LICENCE if index == 0 else DoctorDocument.Kind.QUALIFICATION
                files.add(doctor=doctor, kind=kind, upload=upload, detected=detected)
            _record_transition(doctor=doctor, from_status="", to_status=Status.SUBMITTED, by=user, request=request)
            doctor_search_refresh(doctor=doctor)
    except IntegrityError as exc:  # a concurrent application took the email or the licence number
        raise ApplicationError("DOC_003", gettext("This email address or licence number is already registered.")) from exc
    send_verification_email_to_address(request, address, signup=True)
    _notify(doctor, "doctor.application_received")
    return doctor


def _invitation_fingerprint(user: User) -> str:
    # Changes once a password is set, which makes the invitation single-use.
    return hashlib.sha256(f"{user.password}:{user.last_login}".encode()).hexdigest()[:16]


def invitation_token_make(user: User) -> str:
    return signing.dumps({"u": str(user.public_id), "f": _invitation_fingerprint(user)}, salt=INVITATION_SALT, compress=True)


def invitation_user(token: str) -> User:
    """The invited doctor the token stands for, or AUTH_011 if it is forged, expired or used."""
    try:
        payload = signing.loads(token, salt=INVITATION_SALT, max_age=settings.DOCTOR_INVITATION_DAYS * 24 * 3600)
    except signing.BadSignature as exc:
        raise ApplicationError("AUTH_011", gettext("This invitation link is invalid or has expired.")) from exc
    user = User.objects.filter(public_id=payload.get("u"), role=User.Role.DOCTOR).first()
    if user is None or payload.get("f") != _invitation_fingerprint(user):
        raise ApplicationError("AUTH_011", gettext("This invitation link is invalid or has already been used."))
    return user


def doctor_invite(
    *,
    by: User,
    email: str,
    first_name: str,
    last_name: str,
    licence_number: str,
    licence_authority: str,
    licence_country: str,
    licence_expiry: date | None,
    primary_specialization: Specialization,
    request: HttpRequest | None = None,
) -> DoctorProfile:
    """Staff add a doctor; the doctor is emailed a link to set a password. The application
    starts under review: staff still verify the licence before the doctor is listed."""
    email = email.strip().lower()
    if User.objects.filter(email=email).exists():
        raise ApplicationError("USER_002", fields={"email": [gettext("An account with this email address already exists.")]})
    licence = licence_clean(number=licence_number, authority=licence_authority, country=licence_country, expiry=licence_expiry)
    try:
        with transaction.atomic():
            user = User.objects.create_user(email=email, password=None, first_name=first_name, last_name=last_name, role=User.Role.DOCTOR)
            # The invitation link reaches only this mailbox, so setting a password proves it.
            EmailAddress.objects.create(user=user, email=email, primary=True, verified=True)
            doctor = DoctorProfile.objects.create(
                user=user,
                slug=_unique_slug(user),
                licence_number=licence.number,
                licence_authority=licence.authority,
                licence_country=licence.country,
                licence_expiry=licence.expiry,
                primary_specialization=primary_specialization,
                verification_status=Status.UNDER_REVIEW,
                country=licence.country,
            )
            _record_transition(doctor=doctor, from_status="", to_status=Status.UNDER_REVIEW, by=by, reason="Added by staff", request=request)
            doctor_search_refresh(doctor=doctor)
    except IntegrityError as exc:
        raise ApplicationError("DOC_003", gettext("This email address or licence number is already registered.")) from exc
    invitation_send(doctor=doctor)
    return doctor


def invitation_send(*, doctor: DoctorProfile) -> None:
    url = settings.SITE_URL + reverse("doctors:invitation", kwargs={"token": invitation_token_make(doctor.user)})
    _notify(doctor, "doctor.invitation", invitation_url=url, valid_days=settings.DOCTOR_INVITATION_DAYS)


def invitation_accept(*, token: str, password: str, request: HttpRequest | None = None) -> User:
    user = invitation_user(token)
    password_check(password, user)
    user.set_password(password)
    user.save(update_fields=["password"])
    audit_record(action="doctor.invitation_accepted", actor=user, target=user, subject_user=user, request=request)
    return user


# --- Verification workflow ------------------------------------------------------------------


def _missing_qualifications(doctor: DoctorProfile) -> list[str]:
    held = {degree.strip().lower() for degree in doctor.education.values_list("degree", flat=True)}
    return [q for q in doctor.primary_specialization.required_qualifications if q.strip().lower() not in held]


def doctor_transition(*, doctor: DoctorProfile, to_status: str, by: User, reason: str = "", request: HttpRequest | None = None) -> DoctorProfile:
    """Move an application through the verification workflow (staff only).

    Rejection and change requests need a reason; approval needs a valid licence, a licence
    document and the qualifications the primary specialization requires.
    """
    reason = (reason or "").strip()
    with transaction.atomic():
        doctor = DoctorProfile.objects.select_for_update().select_related("user", "primary_specialization").get(pk=doctor.pk)
        if not doctor.can_transition_to(to_status):
            raise ApplicationError(
                "DOC_005",
                f"An application that is {doctor.get_verification_status_display().lower()} cannot become {Status(to_status).label.lower()}.",
            )
        if to_status in (Status.REJECTED, Status.CHANGES_REQUESTED) and not reason:
            raise ApplicationError("REQ_001", fields={"reason": [gettext("Give the doctor a reason.")]})
        if to_status == Status.APPROVED:
            problems = []
            if doctor.licence_is_expired:
                problems.append(gettext("The licence has expired."))
            if not doctor.documents.filter(kind=DoctorDocument.Kind.LICENCE).exists():
                problems.append(gettext("No licence document has been uploaded."))
            missing = _missing_qualifications(doctor)
            if missing:
                problems.append(f"{doctor.primary_specialization.name} requires: {', '.join(missing)}.")
            if problems:
                raise ApplicationError("DOC_006", gettext("The application cannot be approved yet."), fields={"verification": problems})
        from_status = doctor.verification_status
        doctor.verification_status = to_status
        doctor.status_reason = reason
        doctor.status_changed_at = timezone.now()
        if to_status == Status.APPROVED:
            doctor.licence_expired_flagged_at = None
        doctor.save(update_fields=["verification_status", "status_reason", "status_changed_at", "licence_expired_flagged_at", "updated_at"])
        _record_transition(doctor=doctor, from_status=from_status, to_status=to_status, by=by, reason=reason, request=request)
        if to_status in (Status.APPROVED, Status.REJECTED, Status.CHANGES_REQUESTED):
            _notify(doctor, f"doctor.application_{to_status}", reason=reason)
    return doctor


def doctor_resubmit(*, doctor: DoctorProfile, request: HttpRequest | None = None) -> DoctorProfile:
    """The doctor sends a rejected or changes-requested application back for review."""
    with transaction.atomic():
        doctor = DoctorProfile.objects.select_for_update().select_related("user").get(pk=doctor.pk)
        if not doctor.can_transition_to(Status.SUBMITTED):
            raise ApplicationError("DOC_005", gettext("Only an application with changes requested or a rejection can be resubmitted."))
        from_status = doctor.verification_status
        doctor.verification_status = Status.SUBMITTED
        doctor.status_changed_at = doctor.submitted_at = timezone.now()
        doctor.save(update_fields=["verification_status", "status_changed_at", "submitted_at", "updated_at"])
        _record_transition(doctor=doctor, from_status=from_status, to_status=Status.SUBMITTED, by=doctor.user, request=request)
        _notify(doctor, "doctor.application_received")
    return doctor


def licences_flag_expired(*, today: date | None = None) -> int:
    """Daily: flag approved doctors whose licence has expired (they drop out of listings) and
    tell them. Idempotent: a doctor already flagged is not flagged or emailed again."""
    today = today or timezone.localdate()
    flagged = 0
    candidates = DoctorProfile.objects.filter(verification_status=Status.APPROVED, licence_expiry__lt=today, licence_expired_flagged_at__isnull=True)
    for doctor in candidates.select_related("user"):
        with transaction.atomic():
            claimed = DoctorProfile.objects.filter(pk=doctor.pk, licence_expired_flagged_at__isnull=True).update(licence_expired_flagged_at=timezone.now())
            if not claimed:
                continue
            audit_record(action="doctor.licence_expired", target=doctor, subject_user=doctor.user, metadata={"expiry": doctor.licence_expiry.isoformat()})
            _notify(doctor, "doctor.licence_expired")
            flagged += 1
    return flagged


# --- Profile, documents, services -----------------------------------------------------------

PROFILE_FIELDS = {
    "title", "bio", "years_experience", "special_skills", "clinic_name", "clinic_address", "city", "country",
    "offers_video", "offers_in_person", "primary_specialization",
}
LICENCE_FIELDS = {"licence_number", "licence_authority", "licence_country", "licence_expiry"}
NAME_FIELDS = {"first_name", "last_name"}
LIST_FIELDS = {"languages", "secondary_specializations", "education", "certifications", "positions"}


def doctor_profile_update(*, doctor: DoctorProfile, data: dict[str, Any], by: User, request: HttpRequest | None = None) -> DoctorProfile:
    """Apply validated profile changes. Changing the licence of an approved doctor sends the
    application back under review: a listed doctor is always a verified one."""
    unknown = set(data) - PROFILE_FIELDS - LICENCE_FIELDS - NAME_FIELDS - LIST_FIELDS
    if unknown:
        raise ApplicationError("REQ_001", fields={name: [gettext("This field cannot be changed.")] for name in sorted(unknown)})
    with transaction.atomic():
        doctor = DoctorProfile.objects.select_for_update().select_related("user").get(pk=doctor.pk)
        if LICENCE_FIELDS & set(data):
            licence = licence_clean(
                number=data.get("licence_number", doctor.licence_number),
                authority=data.get("licence_authority", doctor.licence_authority),
                country=data.get("licence_country", doctor.licence_country),
                expiry=data.get("licence_expiry", doctor.licence_expiry),
                exclude=doctor,
            )
            changed = (licence.number, licence.country, licence.expiry) != (doctor.licence_number, doctor.licence_country, doctor.licence_expiry)
            doctor.licence_number, doctor.licence_authority = licence.number, licence.authority
            doctor.licence_country, doctor.licence_expiry = licence.country, licence.expiry
            if changed and doctor.verification_status == Status.APPROVED:
                _record_transition(doctor=doctor, from_status=Status.APPROVED, to_status=Status.UNDER_REVIEW, by=by, reason="Licence details changed", request=request)
                doctor.verification_status = Status.UNDER_REVIEW
                doctor.status_changed_at = timezone.now()
        for name in PROFILE_FIELDS & set(data):
            setattr(doctor, name, data[name])
        if "country" in data:
            doctor.country = (data["country"] or "").upper()
        if not (doctor.offers_video or doctor.offers_in_person):
            raise ApplicationError("REQ_001", fields={"offers_video": [gettext("Offer at least one consultation mode.")]})
        doctor.save()
        if NAME_FIELDS & set(data):
            for name in NAME_FIELDS & set(data):
                setattr(doctor.user, name, data[name])
            doctor.user.save(update_fields=sorted(NAME_FIELDS & set(data)))
        if "languages" in data:
            doctor.languages.set(data["languages"])
        if "secondary_specializations" in data:
            doctor.secondary_specializations.set([s for s in data["secondary_specializations"] if s.pk != doctor.primary_specialization_id])
        for name, model in (("education", Education), ("certifications", Certification), ("positions", Position)):
            if name in data:
                model.objects.filter(doctor=doctor).delete()
                model.objects.bulk_create([model(doctor=doctor, **item) for item in data[name]])
        doctor_search_refresh(doctor=doctor)
        audit_record(action="doctor.profile_updated", actor=by, target=doctor, subject_user=doctor.user, request=request, metadata={"fields": sorted(data)})
    return doctor


def doctor_document_add(*, doctor: DoctorProfile, kind: str, upload: UploadedFile, by: User, request: HttpRequest | None = None) -> DoctorDocument:
    if kind not in DoctorDocument.Kind.values:
        raise ApplicationError("REQ_001", fields={"kind": [gettext("Choose one of: %(values)s.") % {"values": ", ".join(DoctorDocument.Kind.values)}]})
    [(upload, detected)] = documents_validate([upload])
    with _StoredFiles() as files, transaction.atomic():
        document = files.add(doctor=doctor, kind=kind, upload=upload, detected=detected)
        audit_record(action="doctor.document_added", actor=by, target=document, subject_user=doctor.user, request=request, metadata={"kind": kind})
    return document


SERVICE_FIELDS = {"name", "description", "price_minor", "currency", "duration_minutes", "mode", "preparation_instructions", "procedure_type", "equipment_required", "free_follow_up_days", "is_active"}


def _service_check(doctor: DoctorProfile, fields: dict[str, Any]) -> None:
    errors: dict[str, list[str]] = {}
    duration = fields.get("duration_minutes")
    if duration is not None and (duration % 5 or not 5 <= duration <= 240):
        errors["duration_minutes"] = [gettext("Use 5 to 240 minutes, in steps of 5.")]
    price = fields.get("price_minor")
    if price is not None and price <= 0:
        errors["price_minor"] = [gettext("The price must be positive.")]
    mode = fields.get("mode")
    if mode == "video" and not doctor.offers_video or mode == "in_person" and not doctor.offers_in_person:
        errors["mode"] = [gettext("Your profile does not offer this consultation mode.")]
    if errors:
        raise ApplicationError("DOC_007", gettext("The service is not valid."), fields=errors)


def service_create(*, doctor: DoctorProfile, data: dict[str, Any], request: HttpRequest | None = None) -> DoctorService:
    fields = {k: v for k, v in data.items() if k in SERVICE_FIELDS}
    _service_check(doctor, fields)
    with transaction.atomic():
        service = DoctorService.objects.create(doctor=doctor, **fields)
        doctor_fee_refresh(doctor=doctor)
        audit_record(action="doctor.service_created", actor=doctor.user, target=service, request=request)
    return service


def service_update(*, service: DoctorService, data: dict[str, Any], request: HttpRequest | None = None) -> DoctorService:
    fields = {k: v for k, v in data.items() if k in SERVICE_FIELDS}
    _service_check(service.doctor, {"mode": service.mode, **fields})
    with transaction.atomic():
        for name, value in fields.items():
            setattr(service, name, value)
        service.save()
        doctor_fee_refresh(doctor=service.doctor)
        audit_record(action="doctor.service_updated", actor=service.doctor.user, target=service, request=request, metadata={"fields": sorted(fields)})
    return service


def doctor_fee_refresh(*, doctor: DoctorProfile) -> None:
    """Keep the cheapest active service price on the profile for fee filters and sorting.
    With services in several currencies, the doctor's most common currency wins."""
    active = DoctorService.objects.filter(doctor=doctor, is_active=True)
    currency = active.values("currency").order_by().annotate(n=Count("id")).order_by("-n", "currency").values_list("currency", flat=True).first()
    price = active.filter(currency=currency).aggregate(p=Min("price_minor"))["p"] if currency else None
    DoctorProfile.objects.filter(pk=doctor.pk).update(min_fee_minor=price, fee_currency=currency or "")


def doctor_search_refresh(*, doctor: DoctorProfile) -> None:
    doctors_search_rebuild(doctor_ids=[doctor.pk])


# PostgreSQL: a weighted tsvector so that name and specialization rank above skills, skills
# above clinic and city, and those above the biography. Built in one statement for any number
# of doctors (the seed of 20,000 doctors uses the same statement as a single profile save).
SEARCH_VECTOR_SQL = """
UPDATE doctors_doctorprofile AS d SET search_vector =
    setweight(to_tsvector('simple', coalesce(u.first_name, '') || ' ' || coalesce(u.last_name, '')), 'A')
    || setweight(to_tsvector('simple', coalesce(p.name, '') || ' ' || coalesce((
        SELECT string_agg(s.name, ' ') FROM doctors_doctorprofile_secondary_specializations AS x
        JOIN doctors_specialization AS s ON s.id = x.specialization_id WHERE x.doctorprofile_id = d.id), '')), 'A')
    || setweight(to_tsvector('simple', d.special_skills), 'B')
    || setweight(to_tsvector('simple', d.clinic_name || ' ' || d.city), 'C')
    || setweight(to_tsvector('english', d.bio), 'D')
FROM accounts_user AS u, doctors_specialization AS p
WHERE u.id = d.user_id AND p.id = d.primary_specialization_id {where}
"""


def doctors_search_rebuild(*, doctor_ids: list[int] | None = None, batch_size: int = 2000) -> None:
    """Rebuild what patients search for the given doctors (all when ``doctor_ids`` is None):
    the plain ``search_document`` (SQLite fallback, and shown to staff) and, on PostgreSQL,
    the weighted ``search_vector``."""
    qs = DoctorProfile.objects.select_related("user", "primary_specialization").prefetch_related("secondary_specializations").order_by("pk")
    if doctor_ids is not None:
        qs = qs.filter(pk__in=doctor_ids)
    batch: list[DoctorProfile] = []
    for doctor in qs.iterator(chunk_size=batch_size):
        specializations = [doctor.primary_specialization.name, *(s.name for s in doctor.secondary_specializations.all())]
        parts = [doctor.user.first_name, doctor.user.last_name, *specializations, doctor.special_skills, doctor.clinic_name, doctor.city, doctor.bio]
        doctor.search_document = " ".join(p for p in parts if p).lower()
        batch.append(doctor)
        if len(batch) >= batch_size:
            DoctorProfile.objects.bulk_update(batch, ["search_document"])
            batch = []
    if batch:
        DoctorProfile.objects.bulk_update(batch, ["search_document"])
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            if doctor_ids is None:
                cursor.execute(SEARCH_VECTOR_SQL.format(where=""))
            else:
                cursor.execute(SEARCH_VECTOR_SQL.format(where="AND d.id = ANY(%s)"), [list(doctor_ids)])


def language_ensure(codes: Iterable[str]) -> list[Language]:
    """Languages by code; unknown codes are refused (staff maintain the list)."""
    codes = [c.strip().lower() for c in codes if c.strip()]
    found = {language.code: language for language in Language.objects.filter(code__in=codes)}
    unknown = [c for c in codes if c not in found]
    if unknown:
        raise ApplicationError("REQ_001", fields={"languages": [gettext("Unknown language code: %(codes)s.") % {"codes": ", ".join(unknown)}]})
    return [found[c] for c in codes]


SEARCH_TALLY_MINUTES = 15


def search_tally_record(*, at: datetime | None = None) -> None:
    """Count one doctor search in its quarter of an hour (UTC). One statement, an upsert: two
    searches at once never lose a count and never collide on the quarter's first row."""
    at = (at or timezone.now()).astimezone(UTC)
    bucket = at.replace(minute=at.minute - at.minute % SEARCH_TALLY_MINUTES, second=0, microsecond=0)
    table, count = connection.ops.quote_name(SearchTally._meta.db_table), connection.ops.quote_name("count")
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {table} (bucket, {count}) VALUES (%s, 1) ON CONFLICT (bucket) DO UPDATE SET {count} = {table}.{count} + 1",
            [connection.ops.adapt_datetimefield_value(bucket)],
        )
