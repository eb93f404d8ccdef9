"""Record pages: the patient's own record (timeline, entries, documents, grants, access log,
export) and a doctor's view of a patient's record. Access is decided by selectors.record_access."""

from __future__ import annotations

from datetime import timedelta

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_POST

from accounts.models import User
from doctors.models import DoctorProfile
from medimeet.core.api import page_throttled
from medimeet.core.errors import ApplicationError, form_add_service_errors

from . import prescriptions, selectors, services
from .api import document_file_response, export_response, prescription_pdf_response
from .forms import (
    DocumentForm,
    GrantForm,
    MedicineFormSet,
    PrescriptionForm,
    ReasonForm,
    entry_form,
    entry_form_initial,
    entry_form_payload,
    entry_forms,
    field_label,
)
from .models import AccessGrant, Scope
from .payloads import payload_display, payload_headline


def _timeline_items(access) -> list[dict]:
    items = selectors.timeline(access=access)
    for item in items:
        if item["kind"] == "entry":
            entry = item["object"]
            entry.payload = selectors.entry_payload(entry.current_version)
            entry.headline = payload_headline(entry.category, entry.payload)
            entry.payload_words = payload_display(entry.payload)
    return items


def _grant_doctors(patient: User) -> list[DoctorProfile]:
    return list(DoctorProfile.objects.filter(appointments__patient=patient).exclude(appointments__status="expired").select_related("user").distinct())


@never_cache
@login_required
def my_record(request: HttpRequest) -> HttpResponse:
    """The patient's own record."""
    patient = request.user
    if patient.role != User.Role.PATIENT:
        raise Http404
    access = selectors.record_access_require(user=patient, patient=patient)
    doctors = _grant_doctors(patient)
    bound = request.POST.get("form")
    document_form = DocumentForm(request.POST or None, request.FILES or None) if bound == "document" else DocumentForm()
    grant_form = GrantForm(request.POST if bound == "grant" else None, doctors=doctors)
    forms_by_category = entry_forms(request.POST if bound and bound.startswith("entry:") else None, bound.removeprefix("entry:") if bound else None)
    if request.method == "POST":
        done = _handle_post(request, access, bound, document_form, grant_form, forms_by_category)
        if done:
            return redirect(reverse("records:mine") + done)
    services.record_audit(access=access, patient=patient, action="read", target=patient, request=request, view="record_page")
    context = {
        "access": access,
        "patient": patient,
        "items": _timeline_items(access),
        "documents": selectors.documents_for(access=access),
        "entry_forms": forms_by_category,
        "open_category": bound.removeprefix("entry:") if bound and bound.startswith("entry:") else "",
        "document_form": document_form,
        "grant_form": grant_form,
        "has_doctors": bool(doctors),
        "grants": selectors.grants_of(patient),
        "log": selectors.access_log(patient, limit=30),
        "now": timezone.now(),
    }
    return render(request, "records/mine.html", context, status=400 if request.method == "POST" else 200)


def _handle_post(request, access, bound, document_form, grant_form, forms_by_category) -> str | None:
    """Run the posted form's service; the URL fragment to go back to, or None to show errors."""
    patient = access.patient
    try:
        if bound == "document" and document_form.is_valid():
            upload = document_form.cleaned_data["file"]
            services.document_upload(by=request.user, patient=patient, file=upload, size=upload.size, title=document_form.cleaned_data["title"], original_name=upload.name, request=request)
            messages.success(request, _("Document uploaded. It is stored encrypted."))
            return "#documents"
        if bound == "grant" and grant_form.is_valid():
            data = grant_form.cleaned_data
            doctor = User.objects.get(public_id=data["doctor"], role=User.Role.DOCTOR)
            services.grant_create(patient=patient, doctor=doctor, whole_record=data["whole_record"], categories=data["categories"], expires_at=timezone.now() + timedelta(days=int(data["days"])), request=request)
            messages.success(request, _("%(doctor)s can now see your record for %(period)s.") % {"doctor": doctor.doctor_profile.display_name, "period": dict(grant_form.fields["days"].choices)[data["days"]]})
            return "#grants"
    except ApplicationError as exc:
        target = {"document": document_form, "grant": grant_form}.get(bound)
        if target is None:
            raise
        form_add_service_errors(target, exc)
    if bound and bound.startswith("entry:"):
        return "#timeline" if _entry_add(request, access, bound, forms_by_category) else None
    return None


def _entry_add(request: HttpRequest, access, bound: str, forms_by_category) -> bool:
    """The posted "Add to the record" form (``bound`` is "entry:<category>"), on the patient's
    page and on a doctor's: True once the entry is written, False with the errors on the form."""
    category = bound.removeprefix("entry:")
    form = next((form for value, _label, form in forms_by_category if value == category), None)
    if form is None:
        raise Http404
    if not form.is_valid():
        return False
    try:
        services.entry_create(by=request.user, patient=access.patient, category=category, payload=entry_form_payload(form), request=request)
    except ApplicationError as exc:
        _entry_form_errors(form, exc)
        return False
    messages.success(request, _("Added to your record.") if access.basis == "owner" else _("Added to the patient's record."))
    return True


def _entry_form_errors(form, exc: ApplicationError) -> None:
    form_add_service_errors(form, exc, names={"payload." + name: name for name in form.fields})


@require_POST
@login_required
def grant_revoke(request: HttpRequest, grant_id) -> HttpResponse:
    grant = AccessGrant.objects.select_related("doctor").filter(public_id=grant_id, patient=request.user).first()
    if grant is None:
        raise Http404
    try:
        services.grant_revoke(grant=grant, by=request.user, request=request)
        messages.success(request, _("Access revoked. The doctor can no longer see your record."))
    except ApplicationError as exc:
        messages.error(request, exc.message)
    return redirect(reverse("records:mine") + "#grants")


@never_cache
@login_required
def patient_record(request: HttpRequest, patient_id) -> HttpResponse:
    """A doctor's view of a patient's record (from the appointment page), limited to their access.
    Doctors without access see why, and may use emergency access with a reason."""
    patient = User.objects.filter(public_id=patient_id, role=User.Role.PATIENT).first()
    if patient is None:
        raise Http404
    if patient == request.user:
        return redirect("records:mine")
    access = selectors.record_access(user=request.user, patient=patient)
    if access is None:
        if request.user.role != User.Role.DOCTOR:
            raise Http404
        return _no_access(request, patient)
    bound = request.POST.get("form", "") if request.method == "POST" else ""
    if bound and not (access.can_write and bound.startswith("entry:")):
        raise PermissionDenied
    forms_by_category = entry_forms(request.POST or None, bound.removeprefix("entry:")) if access.can_write else []
    if bound and _entry_add(request, access, bound, forms_by_category):
        return redirect(reverse("records:patient", args=[patient.public_id]) + "#timeline")
    services.record_audit(access=access, patient=patient, action="read", target=patient, request=request, view="record_page")
    grant = AccessGrant.objects.active().filter(patient=patient, doctor=request.user).order_by("-expires_at").first() if access.basis == "grant" else None
    context = {
        "access": access, "patient": patient, "items": _timeline_items(access), "documents": selectors.documents_for(access=access), "grant": grant,
        "scope_labels": _scope_labels(access), "entry_forms": forms_by_category, "open_category": bound.removeprefix("entry:"),
    }
    return render(request, "records/patient.html", context, status=400 if bound else 200)


def _scope_labels(access) -> list[str]:
    return [label for value, label in Scope.choices if value in access.scopes]


def _no_access(request: HttpRequest, patient: User) -> HttpResponse:
    form = ReasonForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            services.emergency_access_start(doctor=request.user, patient=patient, reason=form.cleaned_data["reason"], request=request)
            messages.warning(request, _("Emergency access granted for a limited time. The patient and our compliance team have been told."))
            return redirect("records:patient", patient_id=patient.public_id)
        except ApplicationError as exc:
            form_add_service_errors(form, exc)
    return render(request, "records/no_access.html", {"patient": patient, "form": form, "hours": settings.RECORDS_EMERGENCY_ACCESS_HOURS}, status=403)


@never_cache
@login_required
def document_download(request: HttpRequest, document_id) -> HttpResponse:
    """Checks access, then sends the browser to a short-lived signed link for the file."""
    try:
        document, access = selectors.document_get(user=request.user, document_id=document_id)
    except ApplicationError as exc:
        raise Http404 from exc
    token, _expires = services.document_link_create(document=document, access=access, request=request)
    return HttpResponseRedirect(reverse("records:document-link", args=[token]))


@never_cache
def document_link(request: HttpRequest, token: str) -> HttpResponse:
    """The signed link: streams the file while it is valid, for the user it was made for, and
    while their access still covers the document; otherwise a page that says why."""
    try:
        document, access = services.document_link_open(token=token, user=request.user)
    except ApplicationError as exc:
        return render(request, "records/link_refused.html", {"code": exc.code, "message": exc.message}, status=exc.status_code)
    return document_file_response(document, access, request, via="link")



@never_cache
@login_required
def export(request: HttpRequest) -> HttpResponse:
    """The patient's ZIP export (record.json, FHIR R4 bundle, documents)."""
    try:
        return export_response(request)
    except ApplicationError as exc:
        raise Http404 from exc


@never_cache
@login_required
def prescription_pdf(request: HttpRequest, prescription_id) -> HttpResponse:
    try:
        rx = prescriptions.prescription_get(user=request.user, prescription_id=prescription_id)
        return prescription_pdf_response(rx, request)
    except ApplicationError as exc:
        raise Http404 from exc


@never_cache
@page_throttled("verify")
def verify_prescription(request: HttpRequest, code: str) -> HttpResponse:
    """Public: a pharmacist checks a prescription is genuine and current. Shows the prescriber,
    registration number and medicines, and only the patient's initials."""
    rx = prescriptions.prescription_by_code(code)
    context = {"code": code, "rx": rx}
    if rx is not None:
        context["content"] = prescriptions.prescription_content(rx)
        context["initials"] = "".join(part[:1].upper() + "." for part in (rx.patient.first_name, rx.patient.last_name) if part)
    return render(request, "records/verify_prescription.html", context, status=200 if rx else 404)


@never_cache
@login_required
def entry_history(request: HttpRequest, entry_id) -> HttpResponse:
    """Every version of an entry with who changed what and when, each compared with the one before."""
    try:
        entry, access = selectors.entry_get(user=request.user, entry_id=entry_id)
    except ApplicationError as exc:
        raise Http404 from exc
    services.record_audit(access=access, patient=entry.patient, action="history_read", target=entry, request=request)
    versions = selectors.entry_history(entry)
    for version in versions:
        for change in version.changes:
            change["label"] = field_label(change["field"])
    return render(request, "records/history.html", {"entry": entry, "access": access, "versions": list(reversed(versions)), "back": _record_url(access)})


def _record_url(access) -> str:
    """The record page the user came from: the patient's own, or the doctor's view of it."""
    return reverse("records:mine") if access.basis == "owner" else reverse("records:patient", args=[access.patient.public_id])


def _entry_to_change(request: HttpRequest, entry_id):
    """An entry the user may change: 404 when they may not see it (or it is deleted: only its
    history stays), 403 when their access is read-only (a grant, emergency access)."""
    try:
        entry, access = selectors.entry_get(user=request.user, entry_id=entry_id)
    except ApplicationError as exc:
        if exc.code == "REC_002":
            raise PermissionDenied from exc
        raise Http404 from exc
    if entry.is_deleted:
        raise Http404
    if not access.can_write:
        raise PermissionDenied
    return entry, access


@never_cache
@login_required
def entry_edit(request: HttpRequest, entry_id) -> HttpResponse:
    """Change an entry: the form shows the current version, saving writes the next one."""
    entry, access = _entry_to_change(request, entry_id)
    payload = selectors.entry_payload(entry.current_version)
    form = entry_form(entry.category, request.POST or None)
    form.initial = entry_form_initial(entry.category, payload)
    if request.method == "POST" and form.is_valid():
        try:
            updated = services.entry_update(by=request.user, entry=entry, payload=entry_form_payload(form), request=request)
        except ApplicationError as exc:
            _entry_form_errors(form, exc)
        else:
            messages.success(request, _("Saved as version %(number)s. The earlier versions stay in the history.") % {"number": updated.version_count})
            return redirect(_record_url(access) + "#timeline")
    if request.method != "POST":
        services.record_audit(access=access, patient=entry.patient, action="entry_read", target=entry, request=request, view="edit")
    context = {"entry": entry, "access": access, "form": form, "headline": payload_headline(entry.category, payload), "back": _record_url(access)}
    return render(request, "records/entry_edit.html", context, status=400 if request.method == "POST" else 200)


@never_cache
@login_required
def entry_delete(request: HttpRequest, entry_id) -> HttpResponse:
    """Delete an entry with a reason. It is hidden from the record, its history is kept, and it is
    purged only after the retention period."""
    entry, access = _entry_to_change(request, entry_id)
    form = ReasonForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            services.entry_delete(by=request.user, entry=entry, reason=form.cleaned_data["reason"], request=request)
        except ApplicationError as exc:
            form_add_service_errors(form, exc)
        else:
            messages.success(request, _("Entry deleted. Its history is kept."))
            return redirect(_record_url(access) + "#timeline")
    payload = selectors.entry_payload(entry.current_version)
    context = {"entry": entry, "form": form, "headline": payload_headline(entry.category, payload), "back": _record_url(access)}
    return render(request, "records/entry_delete.html", context, status=400 if request.method == "POST" else 200)


@require_POST
@login_required
def erasure_request(request: HttpRequest) -> HttpResponse:
    try:
        services.erasure_request_create(patient=request.user, reason=request.POST.get("reason", ""), request=request)
        messages.success(request, _("Your erasure request has been sent. Our team will decide and email you."))
    except ApplicationError as exc:
        messages.error(request, exc.message)
    return redirect(reverse("records:mine") + "#erasure")


@never_cache
@login_required
def prescribe(request: HttpRequest, appointment_id) -> HttpResponse:
    """The appointment's doctor writes a prescription (or one that replaces the current one)."""
    from appointments.models import Appointment

    appointment = Appointment.objects.select_related("doctor__user", "patient").filter(public_id=appointment_id).first()
    if appointment is None or appointment.party(request.user) != "doctor":
        raise Http404
    current = appointment.prescriptions.filter(status="issued").order_by("-issued_at").first()
    form = PrescriptionForm(request.POST or None)
    medicines = MedicineFormSet(request.POST or None, prefix="medicine")
    if request.method == "POST" and form.is_valid() and medicines.is_valid():
        content = {
            "medicines": [{k: v for k, v in m.items() if v not in (None, "")} for m in medicines.cleaned_data if m.get("name")],
            "advice": form.cleaned_data["advice"],
            "follow_up": form.cleaned_data["follow_up"],
        }
        try:
            prescriptions.prescription_issue(appointment=appointment, by=request.user, content=content, supersedes=current if form.cleaned_data["supersede"] else None, request=request)
            messages.success(request, _("Prescription issued. The patient can download it from their record."))
            return redirect("records:prescribe", appointment_id=appointment.public_id)
        except ApplicationError as exc:
            form_add_service_errors(form, exc)
    issued = list(appointment.prescriptions.order_by("-issued_at"))
    return render(request, "records/prescribe.html", {"appointment": appointment, "form": form, "medicines": medicines, "issued": issued, "current": current}, status=400 if request.method == "POST" else 200)
