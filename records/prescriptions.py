"""Prescriptions: issued by the appointment's doctor during or after the consultation, never
edited (a correction supersedes), printed as a PDF (WeasyPrint) with the doctor's registration
number and a verification code a pharmacist checks on a public page."""

from __future__ import annotations

import json

from django.conf import settings
from django.db import transaction
from django.http import HttpRequest
from django.urls import reverse
from django.utils.translation import gettext

from accounts.models import User
from appointments.models import Appointment
from medimeet.core.errors import ApplicationError
from medimeet.core.pdf import SignedDocument, document_language, pdf_render, pdf_sign

from .models import Prescription, Scope
from .payloads import prescription_validate
from .selectors import record_access_require
from .services import record_audit

PRESCRIBING_STATUSES = (Appointment.Status.IN_PROGRESS, Appointment.Status.COMPLETED)


def prescription_issue(*, appointment: Appointment, by: User, content: dict, supersedes: Prescription | None = None, request: HttpRequest | None = None) -> Prescription:
    """The appointment's doctor issues a prescription (medicines with dose, route, frequency,
    duration, instructions; advice; follow-up). With ``supersedes``, that one is marked
    superseded in the same transaction."""
    if appointment.party(by) != "doctor":
        raise ApplicationError("APPT_006")
    if appointment.status not in PRESCRIBING_STATUSES:
        raise ApplicationError("REC_017", gettext("A prescription is written during or after the consultation."))
    clean = prescription_validate(content)
    with transaction.atomic():
        if supersedes is not None:
            if supersedes.appointment_id != appointment.pk:
                raise ApplicationError("REC_017", gettext("A prescription supersedes one of the same consultation."))
            if not Prescription.objects.filter(pk=supersedes.pk, status=Prescription.Status.ISSUED).update(status=Prescription.Status.SUPERSEDED):
                raise ApplicationError("REC_016", gettext("This prescription has already been superseded."))
        prescription = Prescription.objects.create(
            appointment=appointment, patient=appointment.patient, doctor=appointment.doctor, registration_number=appointment.doctor.licence_number,
            supersedes=supersedes, content=json.dumps(clean, sort_keys=True),
        )
        record_audit(user=by, patient=appointment.patient, action="prescription_issued", target=prescription, request=request, supersedes=str(supersedes.public_id) if supersedes else "")
    return prescription


def prescription_get(*, user: User, prescription_id) -> Prescription:
    """A prescription the user may read (the record's access decision, scope "prescriptions")."""
    prescription = Prescription.objects.select_related("patient", "doctor__user", "appointment", "supersedes").filter(public_id=prescription_id).first()
    if prescription is None:
        raise ApplicationError("REC_001")
    record_access_require(user=user, patient=prescription.patient, scope=Scope.PRESCRIPTIONS)
    return prescription


def prescription_content(prescription: Prescription) -> dict:
    return json.loads(prescription.content)


def prescription_verify_url(prescription: Prescription) -> str:
    return settings.SITE_URL + reverse("records:verify-prescription", args=[prescription.verification_code])


def prescription_pdf(prescription: Prescription) -> bytes:
    """The prescription in its patient's language (the medicines as the doctor wrote them)."""
    context = {
        "rx": prescription,
        "content": prescription_content(prescription),
        "verify_url": prescription_verify_url(prescription),
        "SITE_NAME": settings.SITE_NAME,
        "SITE_URL": settings.SITE_URL,
    }
    with document_language(prescription.patient):
        data = pdf_render("records/prescription_pdf.html", context)
    return pdf_sign(data, reason=f"{settings.SITE_NAME} prescription {prescription.verification_code}", reference=f"prescription:{prescription.verification_code}")


def prescription_download(*, prescription: Prescription, user: User, request: HttpRequest | None = None) -> bytes:
    """The PDF, for someone whose access covers prescriptions; audited."""
    access = record_access_require(user=user, patient=prescription.patient, scope=Scope.PRESCRIPTIONS)
    record_audit(access=access, patient=prescription.patient, action="prescription_downloaded", target=prescription, request=request)
    return prescription_pdf(prescription)


def prescription_signed_document(code: str) -> SignedDocument | None:
    """The prescription a signed PDF names (medimeet.core.pdf.pdf_signature_check); a superseded
    one is genuine but no longer current."""
    prescription = Prescription.objects.filter(verification_code=code).only("verification_code", "status").first()
    if prescription is None:
        return None
    return SignedDocument(
        kind="prescription", title=gettext("Prescription %(code)s") % {"code": prescription.verification_code}, code=prescription.verification_code,
        verify_url=reverse("records:verify-prescription", args=[prescription.verification_code]), current=prescription.status == Prescription.Status.ISSUED,
    )


def prescription_by_code(code: str) -> Prescription | None:
    return Prescription.objects.select_related("doctor__user", "patient").filter(verification_code=(code or "").strip().upper()[:12]).first()
