"""Medical records API (/api/v1/records/...). Every view asks ``selectors.record_access`` (through
the selectors and services it calls) and audits what it reads."""

from __future__ import annotations

from django.http import FileResponse, HttpResponse, StreamingHttpResponse
from django.utils import timezone
from django.utils.translation import gettext
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers, status
from rest_framework.parsers import MultiPartParser
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.models import User
from appointments.models import Appointment
from medimeet.core.api import error_responses, valid_input
from medimeet.core.errors import ApplicationError
from medimeet.core.spreadsheets import csv_lines

from . import exports, prescriptions, selectors, services
from .models import AccessGrant, Category, Document, ErasureRequest, RecordEntry, Scope
from .payloads import payload_headline

TAGS = ["records"]


# --- Serializers -----------------------------------------------------------------------------------------


class PersonOutput(serializers.Serializer):
    id = serializers.UUIDField(source="public_id")
    name = serializers.CharField(source="display_name")
    role = serializers.CharField()


class EntryInput(serializers.Serializer):
    category = serializers.ChoiceField(choices=Category.choices)
    payload = serializers.DictField(help_text="The category's fields (docs/api.md, Medical records).")


class EntryUpdateInput(serializers.Serializer):
    payload = serializers.DictField()


class ReasonInput(serializers.Serializer):
    reason = serializers.CharField(max_length=500)


class EntryOutput(serializers.Serializer):
    id = serializers.UUIDField(source="public_id")
    category = serializers.ChoiceField(choices=Category.choices)
    headline = serializers.CharField()
    payload = serializers.DictField()
    version = serializers.IntegerField(source="version_count")
    created_by = PersonOutput()
    created_at = serializers.DateTimeField()
    updated_by = PersonOutput(source="current_version.author")
    updated_at = serializers.DateTimeField(source="current_version.created_at")
    deleted_at = serializers.DateTimeField(allow_null=True)
    deletion_reason = serializers.CharField()


class VersionOutput(serializers.Serializer):
    number = serializers.IntegerField()
    change = serializers.CharField()
    author = PersonOutput()
    author_role = serializers.CharField()
    created_at = serializers.DateTimeField()
    reason = serializers.CharField()
    payload = serializers.DictField()
    changes = serializers.ListField(child=serializers.DictField(), help_text="Field by field: {field, before, after} against the previous version.")


class RecordDocumentOutput(serializers.Serializer):
    id = serializers.UUIDField(source="public_id")
    title = serializers.CharField()
    kind = serializers.ChoiceField(choices=Document.Kind.choices)
    content_type = serializers.CharField()
    size = serializers.IntegerField()
    metadata = serializers.DictField()
    ocr_status = serializers.ChoiceField(choices=Document.OcrStatus.choices)
    uploaded_by = PersonOutput()
    created_at = serializers.DateTimeField()


class RecordDocumentUploadInput(serializers.Serializer):
    file = serializers.FileField()
    title = serializers.CharField(max_length=200, required=False, allow_blank=True)


class LinkOutput(serializers.Serializer):
    url = serializers.CharField()
    expires_at = serializers.DateTimeField()


class GrantInput(serializers.Serializer):
    doctor = serializers.UUIDField(help_text="The doctor's user id.")
    whole_record = serializers.BooleanField(default=False)
    categories = serializers.ListField(child=serializers.ChoiceField(choices=Scope.choices), required=False, default=list)
    documents = serializers.ListField(child=serializers.UUIDField(), required=False, default=list)
    expires_at = serializers.DateTimeField()


class GrantOutput(serializers.Serializer):
    id = serializers.UUIDField(source="public_id")
    doctor = PersonOutput()
    whole_record = serializers.BooleanField()
    categories = serializers.ListField(child=serializers.CharField())
    documents = serializers.SerializerMethodField()
    created_at = serializers.DateTimeField()
    expires_at = serializers.DateTimeField()
    revoked_at = serializers.DateTimeField(allow_null=True)
    active = serializers.SerializerMethodField()

    def get_documents(self, grant) -> list[str]:
        return [str(d.public_id) for d in grant.documents.all()]

    def get_active(self, grant) -> bool:
        return grant.is_active()


class BreakGlassInput(serializers.Serializer):
    reason = serializers.CharField(max_length=500)


class BreakGlassOutput(serializers.Serializer):
    id = serializers.UUIDField(source="public_id")
    started_at = serializers.DateTimeField()
    expires_at = serializers.DateTimeField()


class AccessLogOutput(serializers.Serializer):
    at = serializers.DateTimeField(source="created_at")
    action = serializers.CharField()
    label = serializers.CharField(help_text="The action in words.")
    who = serializers.CharField(help_text="Name of who did it (doctors with their title).")
    role = serializers.CharField(source="actor_role")
    basis = serializers.SerializerMethodField()
    reason = serializers.SerializerMethodField()
    object_type = serializers.CharField(source="target_type")
    ip_address = serializers.IPAddressField(allow_null=True)

    def get_basis(self, event) -> str:
        return event.metadata.get("basis", "")

    def get_reason(self, event) -> str:
        return event.metadata.get("reason", "")


class NoteOutput(serializers.Serializer):
    appointment = serializers.UUIDField(source="appointment.public_id")
    doctor = serializers.CharField(source="appointment.doctor")
    date = serializers.DateTimeField(source="appointment.start")
    text = serializers.CharField()


class RecordOutput(serializers.Serializer):
    patient = PersonOutput()
    access = serializers.CharField(help_text="owner, relationship, grant or emergency")
    scopes = serializers.ListField(child=serializers.CharField())
    entries = EntryOutput(many=True)
    documents = RecordDocumentOutput(many=True)
    notes = NoteOutput(many=True)


# --- Helpers -------------------------------------------------------------------------------------------


def entry_output(entry: RecordEntry) -> dict:
    entry.payload = selectors.entry_payload(entry.current_version)
    entry.headline = payload_headline(entry.category, entry.payload)
    return EntryOutput(entry).data


def _patient_access(request, patient_id, scope: str | None = None):
    patient = selectors.patient_by_public_id(patient_id)
    return selectors.record_access_require(user=request.user, patient=patient, scope=scope)


# --- Views -----------------------------------------------------------------------------------------------


class RecordView(APIView):
    @extend_schema(tags=TAGS, responses={200: RecordOutput, **error_responses(401, 404)})
    def get(self, request, patient_id):
        """The record as the caller may see it: entries, documents and consultation notes."""
        access = _patient_access(request, patient_id)
        services.record_audit(access=access, patient=access.patient, action="read", target=access.patient, request=request, view="record")
        return Response(
            {
                "patient": PersonOutput(access.patient).data,
                "access": access.basis,
                "scopes": sorted(access.scopes),
                "entries": [entry_output(e) for e in selectors.entries_for(access=access)],
                "documents": RecordDocumentOutput(selectors.documents_for(access=access), many=True).data,
                "notes": NoteOutput(selectors.clinical_notes_for(access=access), many=True).data,
            }
        )


class EntryListView(APIView):
    @extend_schema(tags=TAGS, parameters=[OpenApiParameter("category", str, enum=Category.values)], responses={200: EntryOutput(many=True), **error_responses(401, 403, 404)})
    def get(self, request, patient_id):
        category = request.query_params.get("category") or None
        access = _patient_access(request, patient_id, scope=category)
        entries = list(selectors.entries_for(access=access, category=category))
        services.record_audit(access=access, patient=access.patient, action="read", target=access.patient, request=request, view="entries", category=category)
        return Response([entry_output(e) for e in entries])

    @extend_schema(tags=TAGS, request=EntryInput, responses={201: EntryOutput, **error_responses(400, 401, 403, 404)})
    def post(self, request, patient_id):
        data = valid_input(EntryInput, request.data)
        patient = selectors.patient_by_public_id(patient_id)
        entry = services.entry_create(by=request.user, patient=patient, category=data["category"], payload=data["payload"], request=request)
        return Response(entry_output(entry), status=status.HTTP_201_CREATED)


class EntryDetailView(APIView):
    @extend_schema(tags=TAGS, responses={200: EntryOutput, **error_responses(401, 403, 404)})
    def get(self, request, entry_id):
        entry, access = selectors.entry_get(user=request.user, entry_id=entry_id)
        services.record_audit(access=access, patient=entry.patient, action="entry_read", target=entry, request=request)
        return Response(entry_output(entry))

    @extend_schema(tags=TAGS, request=EntryUpdateInput, responses={200: EntryOutput, **error_responses(400, 401, 403, 404, 409)})
    def put(self, request, entry_id):
        data = valid_input(EntryUpdateInput, request.data)
        entry, _access = selectors.entry_get(user=request.user, entry_id=entry_id)
        entry = services.entry_update(by=request.user, entry=entry, payload=data["payload"], request=request)
        return Response(entry_output(RecordEntry.objects.select_related("current_version__author", "created_by").get(pk=entry.pk)))

    @extend_schema(tags=TAGS, request=ReasonInput, responses={204: None, **error_responses(400, 401, 403, 404, 409)})
    def delete(self, request, entry_id):
        data = valid_input(ReasonInput, request.data)
        entry, _access = selectors.entry_get(user=request.user, entry_id=entry_id)
        services.entry_delete(by=request.user, entry=entry, reason=data["reason"], request=request)
        return Response(status=status.HTTP_204_NO_CONTENT)


class EntryHistoryView(APIView):
    @extend_schema(tags=TAGS, responses={200: VersionOutput(many=True), **error_responses(401, 403, 404)})
    def get(self, request, entry_id):
        """Every version, oldest first, each compared with the one before it."""
        entry, access = selectors.entry_get(user=request.user, entry_id=entry_id)
        services.record_audit(access=access, patient=entry.patient, action="history_read", target=entry, request=request)
        versions = selectors.entry_history(entry)
        return Response(VersionOutput(versions, many=True).data)


class DocumentListView(APIView):
    parser_classes = [MultiPartParser]

    @extend_schema(tags=TAGS, responses={200: RecordDocumentOutput(many=True), **error_responses(401, 403, 404)})
    def get(self, request, patient_id):
        access = _patient_access(request, patient_id)
        documents = selectors.documents_for(access=access)
        services.record_audit(access=access, patient=access.patient, action="read", target=access.patient, request=request, view="documents")
        return Response(RecordDocumentOutput(documents, many=True).data)

    @extend_schema(tags=TAGS, request={"multipart/form-data": RecordDocumentUploadInput}, responses={201: RecordDocumentOutput, **error_responses(400, 401, 403, 404, 413, 503)})
    def post(self, request, patient_id):
        data = valid_input(RecordDocumentUploadInput, request.data)
        patient = selectors.patient_by_public_id(patient_id)
        upload = data["file"]
        document = services.document_upload(by=request.user, patient=patient, file=upload, size=upload.size, title=data.get("title", ""), original_name=upload.name, request=request)
        return Response(RecordDocumentOutput(document).data, status=status.HTTP_201_CREATED)


class DocumentDetailView(APIView):
    @extend_schema(tags=TAGS, responses={200: RecordDocumentOutput, **error_responses(401, 403, 404)})
    def get(self, request, document_id):
        document, access = selectors.document_get(user=request.user, document_id=document_id)
        services.record_audit(access=access, patient=document.patient, action="document_read", target=document, request=request)
        return Response(RecordDocumentOutput(document).data)

    @extend_schema(tags=TAGS, request=ReasonInput, responses={204: None, **error_responses(400, 401, 403, 404, 409)})
    def delete(self, request, document_id):
        data = valid_input(ReasonInput, request.data)
        document, _access = selectors.document_get(user=request.user, document_id=document_id)
        services.document_delete(by=request.user, document=document, reason=data["reason"], request=request)
        return Response(status=status.HTTP_204_NO_CONTENT)


def document_file_response(document: Document, access, request, *, via: str) -> StreamingHttpResponse:
    """Stream the decrypted document as an attachment; the download is audited first."""
    services.record_audit(access=access, patient=document.patient, action="document_downloaded", target=document, request=request, via=via)
    response = StreamingHttpResponse(services.document_content(document), content_type=document.content_type)
    response["Content-Length"] = str(document.size)
    extension = {"jpeg": "jpg", "dicom": "dcm", "tiff": "tif"}.get(document.kind, document.kind)
    # No names in the file name: it ends up in download folders and browser histories.
    response["Content-Disposition"] = f'attachment; filename="record-document-{document.created_at:%Y%m%d}-{document.public_id.hex[:8]}.{extension}"'
    response["Cache-Control"] = "private, no-store"
    response["X-Content-Type-Options"] = "nosniff"
    return response


class DocumentDownloadView(APIView):
    @extend_schema(tags=TAGS, responses={(200, "application/octet-stream"): OpenApiTypes.BINARY, **error_responses(401, 403, 404)})
    def get(self, request, document_id):
        document, access = selectors.document_get(user=request.user, document_id=document_id)
        return document_file_response(document, access, request, via="api")


class DocumentLinkView(APIView):
    @extend_schema(tags=TAGS, request=None, responses={201: LinkOutput, **error_responses(401, 403, 404)})
    def post(self, request, document_id):
        """A short-lived signed link (RECORDS_LINK_MINUTES) for the browser; it works only for
        the caller and only while their access still covers the document."""
        from django.urls import reverse

        document, access = selectors.document_get(user=request.user, document_id=document_id)
        token, expires_at = services.document_link_create(document=document, access=access, request=request)
        return Response({"url": request.build_absolute_uri(reverse("records:document-link", args=[token])), "expires_at": expires_at}, status=status.HTTP_201_CREATED)


class SearchQuery(serializers.Serializer):
    # A serializer CharField refuses NUL characters, which PostgreSQL cannot take (fuzzing found the 500).
    q = serializers.CharField(max_length=500, required=False, allow_blank=True, default="")


class SearchView(APIView):
    @extend_schema(tags=TAGS, parameters=[SearchQuery], responses={200: RecordDocumentOutput(many=True), **error_responses(400, 401, 403, 404)})
    def get(self, request, patient_id):
        """Documents of the record whose text (PDF text, OCR, DICOM description) matches ``q``."""
        access = _patient_access(request, patient_id)
        found = selectors.documents_search(access=access, q=valid_input(SearchQuery, request.query_params)["q"])
        services.record_audit(access=access, patient=access.patient, action="search", target=access.patient, request=request, results=len(found))
        return Response(RecordDocumentOutput(found, many=True).data)


class GrantListView(APIView):
    @extend_schema(tags=TAGS, responses={200: GrantOutput(many=True), **error_responses(401)})
    def get(self, request):
        """The caller's grants (as a patient)."""
        return Response(GrantOutput(selectors.grants_of(request.user), many=True).data)

    @extend_schema(tags=TAGS, request=GrantInput, responses={201: GrantOutput, **error_responses(400, 401, 403)})
    def post(self, request):
        data = valid_input(GrantInput, request.data)
        doctor = User.objects.filter(public_id=data["doctor"], role=User.Role.DOCTOR).first()
        if doctor is None:
            raise ApplicationError("REC_005", fields={"doctor": [gettext("No doctor has this id.")]})
        documents = list(Document.objects.filter(public_id__in=data["documents"], patient=request.user))
        if len(documents) != len(set(data["documents"])):
            raise ApplicationError("REC_005", fields={"documents": [gettext("Choose documents of your own record.")]})
        grant = services.grant_create(patient=request.user, doctor=doctor, expires_at=data["expires_at"], whole_record=data["whole_record"], categories=data["categories"], documents=documents, request=request)
        return Response(GrantOutput(grant).data, status=status.HTTP_201_CREATED)


class GrantRevokeView(APIView):
    @extend_schema(tags=TAGS, request=None, responses={200: GrantOutput, **error_responses(401, 404, 409)})
    def post(self, request, grant_id):
        grant = AccessGrant.objects.select_related("doctor", "patient").filter(public_id=grant_id, patient=request.user).first()
        if grant is None:
            raise ApplicationError("REC_001")
        return Response(GrantOutput(services.grant_revoke(grant=grant, by=request.user, request=request)).data)


class EmergencyAccessView(APIView):
    @extend_schema(tags=TAGS, request=BreakGlassInput, responses={201: BreakGlassOutput, **error_responses(400, 401, 403, 404)})
    def post(self, request, patient_id):
        """Break-glass: the doctor states why; read access for RECORDS_EMERGENCY_ACCESS_HOURS."""
        data = valid_input(BreakGlassInput, request.data)
        patient = selectors.patient_by_public_id(patient_id)
        access = services.emergency_access_start(doctor=request.user, patient=patient, reason=data["reason"], request=request)
        return Response(BreakGlassOutput(access).data, status=status.HTTP_201_CREATED)


class AccessLogView(APIView):
    @extend_schema(tags=TAGS, responses={200: AccessLogOutput(many=True), **error_responses(401)})
    def get(self, request):
        """Who read or changed the caller's record (patients), newest first."""
        return Response(AccessLogOutput(selectors.access_log(request.user), many=True).data)


class AuditExportView(APIView):
    @extend_schema(tags=TAGS, parameters=[OpenApiParameter("since", OpenApiTypes.DATE), OpenApiParameter("until", OpenApiTypes.DATE)], responses={(200, "text/csv"): OpenApiTypes.STR, **error_responses(400, 401, 403)})
    def get(self, request):
        """Staff with records.export_record_audit: the records audit log as CSV (no clinical content)."""
        data = valid_input(AuditExportInput, request.query_params)
        rows = services.audit_log_export(by=request.user, since=data.get("since"), until=data.get("until"), request=request)
        return StreamingHttpResponse(csv_lines(rows), content_type="text/csv", headers={"Content-Disposition": 'attachment; filename="records-audit.csv"'})


class AuditExportInput(serializers.Serializer):
    since = serializers.DateField(required=False)
    until = serializers.DateField(required=False)


# --- Prescriptions, export, erasure ----------------------------------------------------------------------


class MedicineOutput(serializers.Serializer):
    name = serializers.CharField()
    dose = serializers.CharField()
    route = serializers.CharField()
    frequency = serializers.CharField()
    duration = serializers.CharField()
    instructions = serializers.CharField(required=False)


class PrescriptionInput(serializers.Serializer):
    medicines = serializers.ListField(child=serializers.DictField(), help_text="Each: name, dose, route, frequency, duration, instructions?")
    advice = serializers.CharField(required=False, allow_blank=True)
    follow_up = serializers.CharField(required=False, allow_blank=True)


class PrescriptionOutput(serializers.Serializer):
    id = serializers.UUIDField(source="public_id")
    appointment = serializers.UUIDField(source="appointment.public_id")
    doctor = serializers.CharField(source="doctor.display_name")
    registration_number = serializers.CharField()
    status = serializers.CharField()
    issued_at = serializers.DateTimeField()
    verification_code = serializers.CharField()
    verify_url = serializers.SerializerMethodField()
    supersedes = serializers.UUIDField(source="supersedes.public_id", allow_null=True, default=None)
    medicines = MedicineOutput(many=True, source="content_data.medicines")
    advice = serializers.CharField(source="content_data.advice", default="")
    follow_up = serializers.CharField(source="content_data.follow_up", default="")

    def get_verify_url(self, rx) -> str:
        return prescriptions.prescription_verify_url(rx)


def prescription_output(rx) -> dict:
    rx.content_data = prescriptions.prescription_content(rx)
    return PrescriptionOutput(rx).data


class PrescriptionIssueView(APIView):
    @extend_schema(tags=TAGS, request=PrescriptionInput, responses={201: PrescriptionOutput, **error_responses(400, 401, 404)})
    def post(self, request, appointment_id):
        """The appointment's doctor issues a prescription; it joins the patient's record."""
        data = valid_input(PrescriptionInput, request.data)
        appointment = Appointment.objects.select_related("doctor__user", "patient").filter(public_id=appointment_id).first()
        if appointment is None:
            raise ApplicationError("APPT_006")
        rx = prescriptions.prescription_issue(appointment=appointment, by=request.user, content=data, request=request)
        return Response(prescription_output(rx), status=status.HTTP_201_CREATED)


class PrescriptionDetailView(APIView):
    @extend_schema(tags=TAGS, responses={200: PrescriptionOutput, **error_responses(401, 403, 404)})
    def get(self, request, prescription_id):
        rx = prescriptions.prescription_get(user=request.user, prescription_id=prescription_id)
        services.record_audit(user=request.user, patient=rx.patient, action="prescription_read", target=rx, request=request)
        return Response(prescription_output(rx))

    @extend_schema(tags=TAGS, request=PrescriptionInput, responses=error_responses(401, 403, 404, 409))
    def put(self, request, prescription_id):
        """Issued prescriptions never change: REC_016 (supersede instead)."""
        prescriptions.prescription_get(user=request.user, prescription_id=prescription_id)
        raise ApplicationError("REC_016")


class PrescriptionSupersedeView(APIView):
    @extend_schema(tags=TAGS, request=PrescriptionInput, responses={201: PrescriptionOutput, **error_responses(400, 401, 404, 409)})
    def post(self, request, prescription_id):
        """Issue a corrected prescription that replaces this one (which is kept, marked superseded)."""
        data = valid_input(PrescriptionInput, request.data)
        old = prescriptions.prescription_get(user=request.user, prescription_id=prescription_id)
        rx = prescriptions.prescription_issue(appointment=old.appointment, by=request.user, content=data, supersedes=old, request=request)
        return Response(prescription_output(rx), status=status.HTTP_201_CREATED)


class PrescriptionPdfView(APIView):
    @extend_schema(tags=TAGS, responses={(200, "application/pdf"): OpenApiTypes.BINARY, **error_responses(401, 403, 404)})
    def get(self, request, prescription_id):
        rx = prescriptions.prescription_get(user=request.user, prescription_id=prescription_id)
        return prescription_pdf_response(rx, request)


def prescription_pdf_response(rx, request) -> HttpResponse:
    pdf = prescriptions.prescription_download(prescription=rx, user=request.user, request=request)
    response = HttpResponse(pdf, content_type="application/pdf")
    response["Content-Disposition"] = f'attachment; filename="prescription-{rx.verification_code}.pdf"'
    response["Cache-Control"] = "private, no-store"
    return response


class ExportView(APIView):
    @extend_schema(tags=TAGS, responses={(200, "application/zip"): OpenApiTypes.BINARY, **error_responses(401, 403, 404)})
    def get(self, request):
        """The caller's whole record as a ZIP: record.json, fhir-bundle.json (FHIR R4) and documents."""
        return export_response(request)


def export_response(request) -> FileResponse:
    archive = exports.record_export(patient=request.user, by=request.user, request=request)
    response = FileResponse(archive, as_attachment=True, filename=f"medical-record-{timezone.now():%Y%m%d}.zip", content_type="application/zip")
    response["Cache-Control"] = "private, no-store"
    return response


class ErasureInput(serializers.Serializer):
    reason = serializers.CharField(required=False, allow_blank=True, max_length=2000)


class ErasureOutput(serializers.Serializer):
    id = serializers.UUIDField(source="public_id")
    status = serializers.CharField()
    created_at = serializers.DateTimeField()
    decided_at = serializers.DateTimeField(allow_null=True)
    decision_note = serializers.CharField()


class ErasureRequestView(APIView):
    @extend_schema(tags=TAGS, responses={200: ErasureOutput(many=True), **error_responses(401)})
    def get(self, request):
        return Response(ErasureOutput(ErasureRequest.objects.filter(patient=request.user), many=True).data)

    @extend_schema(tags=TAGS, request=ErasureInput, responses={201: ErasureOutput, **error_responses(400, 401, 403, 409)})
    def post(self, request):
        """Ask for the record to be erased; staff decide, legal retention applies (docs/api.md)."""
        data = valid_input(ErasureInput, request.data)
        erasure = services.erasure_request_create(patient=request.user, reason=data.get("reason", ""), request=request)
        return Response(ErasureOutput(erasure).data, status=status.HTTP_201_CREATED)
