"""The patient's copy of their record: a ZIP with record.json (everything, as the API shows it),
fhir-bundle.json (an HL7 FHIR R4 Bundle of the structured data) and the documents, decrypted."""

from __future__ import annotations

import json
import re
import tempfile
import zipfile
from typing import IO

from django.conf import settings
from django.http import HttpRequest
from django.utils import timezone
from django.utils.translation import gettext

from accounts.models import PatientProfile, User

from . import selectors
from .models import Category, Document, RecordEntry
from .prescriptions import prescription_content
from .services import document_content, record_audit

FHIR_OBSERVATION_CATEGORY = "http://terminology.hl7.org/CodeSystem/observation-category"
FHIR_CONDITION_CLINICAL = "http://terminology.hl7.org/CodeSystem/condition-clinical"
FHIR_ALLERGY_CLINICAL = "http://terminology.hl7.org/CodeSystem/allergyintolerance-clinical"
UCUM = "http://unitsofmeasure.org"
NUMBER = re.compile(r"^-?\d+(\.\d+)?$")
EXTENSIONS = {"jpeg": "jpg", "dicom": "dcm", "tiff": "tif"}


def _ref(public_id) -> dict:
    return {"reference": f"urn:uuid:{public_id}"}


def _text(value: str) -> dict:
    return {"text": value}


def _patient_resource(patient: User) -> dict:
    profile = PatientProfile.objects.filter(user=patient).first()
    resource: dict = {"resourceType": "Patient", "id": str(patient.public_id), "name": [{"family": patient.last_name, "given": [patient.first_name] if patient.first_name else []}], "telecom": [{"system": "email", "value": patient.email}]}
    if profile is not None:
        if profile.date_of_birth:
            resource["birthDate"] = profile.date_of_birth.isoformat()
        gender = {"female": "female", "male": "male", "intersex": "other", "undisclosed": "unknown"}.get(profile.sex or "")
        if gender:
            resource["gender"] = gender
    return resource


def _entry_resource(entry: RecordEntry, payload: dict, subject: dict) -> dict:
    """One structured entry as the FHIR R4 resource of its kind."""
    recorded = entry.created_at.isoformat()
    base = {"id": str(entry.public_id), "meta": {"versionId": str(entry.version_count), "lastUpdated": entry.current_version.created_at.isoformat()}}
    if entry.category == Category.ALLERGY:
        resource = {**base, "resourceType": "AllergyIntolerance", "clinicalStatus": {"coding": [{"system": FHIR_ALLERGY_CLINICAL, "code": "active"}]}, "code": _text(payload["substance"]), "patient": subject, "recordedDate": recorded}
        if payload.get("reaction") or payload.get("severity"):
            reaction: dict = {"manifestation": [_text(payload.get("reaction") or "Reaction")]}
            if payload.get("severity"):
                reaction["severity"] = payload["severity"]
            resource["reaction"] = [reaction]
        return resource
    if entry.category == Category.MEDICATION:
        resource = {**base, "resourceType": "MedicationStatement", "status": "completed" if payload.get("stopped_on") else "active", "medicationCodeableConcept": _text(payload["name"]), "subject": subject, "dateAsserted": recorded}
        dosage = ", ".join(payload[k] for k in ("dose", "route", "frequency") if payload.get(k))
        if dosage or payload.get("instructions"):
            resource["dosage"] = [{"text": dosage or payload["instructions"], **({"patientInstruction": payload["instructions"]} if payload.get("instructions") else {})}]
        period = {k: payload[v] for k, v in (("start", "started_on"), ("end", "stopped_on")) if payload.get(v)}
        if period:
            resource["effectivePeriod"] = period
        return resource
    if entry.category == Category.CONDITION:
        resource = {**base, "resourceType": "Condition", "clinicalStatus": {"coding": [{"system": FHIR_CONDITION_CLINICAL, "code": payload.get("status", "active")}]}, "code": _text(payload["name"]), "subject": subject, "recordedDate": recorded}
        if payload.get("onset_on"):
            resource["onsetDateTime"] = payload["onset_on"]
        if payload.get("notes"):
            resource["note"] = [{"text": payload["notes"]}]
        return resource
    if entry.category == Category.IMMUNIZATION:
        resource = {**base, "resourceType": "Immunization", "status": "completed", "vaccineCode": _text(payload["vaccine"]), "patient": subject, "occurrenceDateTime": payload["given_on"]}
        if payload.get("lot_number"):
            resource["lotNumber"] = payload["lot_number"]
        if payload.get("dose_number"):
            resource["protocolApplied"] = [{"doseNumberPositiveInt": payload["dose_number"]}]
        return resource
    # Vitals and lab results are Observations.
    vital = entry.category == Category.VITAL
    name = payload["kind"].replace("_", " ") if vital else payload["name"]
    resource = {
        **base, "resourceType": "Observation", "status": "final",
        "category": [{"coding": [{"system": FHIR_OBSERVATION_CATEGORY, "code": "vital-signs" if vital else "laboratory"}]}],
        "code": _text(name), "subject": subject,
        "effectiveDateTime": payload.get("measured_at") or payload.get("taken_on") or recorded,
    }
    value = str(payload["value"])
    if NUMBER.match(value):
        resource["valueQuantity"] = {"value": float(value), **({"unit": payload["unit"], "system": UCUM, "code": payload["unit"]} if payload.get("unit") else {})}
    else:
        resource["valueString"] = f"{value} {payload.get('unit', '')}".strip()
    if payload.get("reference_range"):
        resource["referenceRange"] = [{"text": payload["reference_range"]}]
    if payload.get("flag"):
        resource["interpretation"] = [_text(payload["flag"])]
    return resource


def _document_path(document: Document) -> str:
    return f"documents/{document.created_at:%Y%m%d}-{document.public_id.hex[:8]}.{EXTENSIONS.get(document.kind, document.kind)}"


def _document_resource(document: Document, subject: dict) -> dict:
    return {
        "resourceType": "DocumentReference", "id": str(document.public_id), "status": "current", "subject": subject, "date": document.created_at.isoformat(),
        "description": document.title,
        "content": [{"attachment": {"contentType": document.content_type, "url": _document_path(document), "size": document.size, "title": document.title, "creation": document.created_at.isoformat()}}],
    }


def fhir_bundle(*, patient: User, entries: list[tuple[RecordEntry, dict]], documents: list[Document]) -> dict:
    """An HL7 FHIR R4 Bundle (type "collection") of the record's structured data."""
    subject = _ref(patient.public_id)
    resources = [_patient_resource(patient)]
    resources += [_entry_resource(entry, payload, subject) for entry, payload in entries]
    resources += [_document_resource(document, subject) for document in documents]
    return {
        "resourceType": "Bundle",
        "type": "collection",
        "timestamp": timezone.now().isoformat(),
        "entry": [{"fullUrl": f"urn:uuid:{r['id']}", "resource": r} for r in resources],
    }


def record_export(*, patient: User, by: User, request: HttpRequest | None = None) -> IO[bytes]:
    """The ZIP, in a temporary file (documents are streamed into it decrypted, one at a time).
    Only the patient exports their own record; audited."""
    access = selectors.record_access_require(user=by, patient=patient)
    if access.basis != "owner":
        from medimeet.core.errors import ApplicationError

        raise ApplicationError("REC_002", gettext("Only the patient exports their record."))
    entries = [(entry, selectors.entry_payload(entry.current_version)) for entry in selectors.entries_for(access=access)]
    documents = list(selectors.documents_for(access=access))
    record = {
        "exported_at": timezone.now().isoformat(),
        "site": settings.SITE_NAME,
        "patient": {"id": str(patient.public_id), "name": patient.get_full_name(), "email": patient.email},
        "entries": [
            {
                "id": str(entry.public_id), "category": entry.category, "created_at": entry.created_at.isoformat(), "payload": payload,
                "versions": [{"number": v.number, "change": v.change, "author": v.author.display_name, "at": v.created_at.isoformat(), "payload": selectors.entry_payload(v)} for v in selectors.entry_versions(entry)],
            }
            for entry, payload in entries
        ],
        "documents": [{"id": str(d.public_id), "title": d.title, "kind": d.kind, "size": d.size, "sha256": d.sha256, "metadata": d.metadata, "file": _document_path(d), "uploaded_at": d.created_at.isoformat()} for d in documents],
        "consultation_notes": [{"appointment": str(n.appointment.public_id), "doctor": n.appointment.doctor.display_name, "date": n.appointment.start.isoformat(), "text": n.text} for n in selectors.clinical_notes_for(access=access)],
        "prescriptions": [{"id": str(rx.public_id), "doctor": rx.doctor.display_name, "registration_number": rx.registration_number, "issued_at": rx.issued_at.isoformat(), "status": rx.status, "verification_code": rx.verification_code, **prescription_content(rx)} for rx in selectors.prescriptions_for(access=access)],
    }
    archive = tempfile.TemporaryFile(prefix="mm-export-")
    with zipfile.ZipFile(archive, "w", compression=zipfile.ZIP_DEFLATED) as zipped:
        zipped.writestr("record.json", json.dumps(record, indent=2, ensure_ascii=False))
        zipped.writestr("fhir-bundle.json", json.dumps(fhir_bundle(patient=patient, entries=entries, documents=documents), indent=2, ensure_ascii=False))
        for document in documents:
            with zipped.open(_document_path(document), "w", force_zip64=True) as target:
                for chunk in document_content(document):
                    target.write(chunk)
    record_audit(access=access, patient=patient, action="exported", target=patient, request=request, entries=len(entries), documents=len(documents))
    archive.seek(0)
    return archive
