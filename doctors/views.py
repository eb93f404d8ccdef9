"""Doctor pages: public search and profiles, applying, the invitation, and the doctor portal."""

from __future__ import annotations

from functools import wraps

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.http import FileResponse, Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from accounts.models import User
from medimeet.core.api import KnownCountPaginator
from medimeet.core.audit import audit_record
from medimeet.core.errors import ApplicationError, form_add_service_errors
from medimeet.core.roles import staff_can

from . import selectors, services
from .forms import (
    ApplicationForm,
    CertificationFormSet,
    DocumentForm,
    EducationFormSet,
    InvitationForm,
    LicenceUpdateForm,
    PositionFormSet,
    ProfileForm,
    SearchForm,
    ServiceForm,
    formset_items,
)
from .models import CURRENCY_EXPONENTS, DoctorDocument, DoctorProfile, DoctorService


def doctor_required(view):
    @login_required
    @wraps(view)
    def wrapper(request: HttpRequest, *args, **kwargs):
        if request.user.role != User.Role.DOCTOR or not hasattr(request.user, "doctor_profile"):
            messages.info(request, _("The doctor portal is for doctors. Apply to join MediMeet as a doctor."))
            return redirect("doctors:apply")
        return view(request, request.user.doctor_profile, *args, **kwargs)

    return wrapper


# --- Public ---------------------------------------------------------------------------------


def search(request: HttpRequest) -> HttpResponse:
    form = SearchForm(request.GET or None)
    if form.is_bound and not form.is_valid():
        page = Paginator(DoctorProfile.objects.none(), 12).get_page(1)
    else:
        params = form.search_params() if form.is_bound else selectors.DoctorSearch()
        queryset = selectors.doctor_search(params)
        if request.GET.get("page", "1") == "1":  # a search, not a later page of the same one
            services.search_tally_record()
        page = KnownCountPaginator(queryset, 12, count=lambda: selectors.doctor_search_count(params, queryset)).get_page(request.GET.get("page"))
    query = request.GET.copy()
    query.pop("page", None)
    return render(request, "doctors/search.html", {"form": form, "page": page, "query": query.urlencode()})


def detail(request: HttpRequest, slug: str) -> HttpResponse:
    try:
        doctor = selectors.doctor_public_detail(slug=slug)
    except DoctorProfile.DoesNotExist:
        return render(request, "404.html", status=404)
    return render(request, "doctors/detail.html", {"doctor": doctor})


def apply(request: HttpRequest) -> HttpResponse:
    if request.user.is_authenticated:
        if hasattr(request.user, "doctor_profile"):
            return redirect("doctors:portal")
        messages.info(request, _("Sign out first to apply as a doctor with a new account."))
        return redirect("accounts:dashboard")
    form = ApplicationForm(request.POST or None, request.FILES or None)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            services.doctor_apply(
                request=request,
                email=data["email"],
                password=data["password"],
                first_name=data["first_name"],
                last_name=data["last_name"],
                licence_number=data["licence_number"],
                licence_authority=data["licence_authority"],
                licence_country=data["licence_country"],
                licence_expiry=data["licence_expiry"],
                primary_specialization=data["primary_specialization"],
                licence_document=data["licence_document"],
                timezone_name=data["timezone"],
                years_experience=data["years_experience"],
            )
        except ApplicationError as exc:
            form_add_service_errors(form, exc)
        else:
            messages.success(request, _("Application received. Verify your email address, then sign in to follow your verification."))
            return redirect("account_email_verification_sent")
    return render(request, "doctors/apply.html", {"form": form})


def invitation(request: HttpRequest, token: str) -> HttpResponse:
    try:
        invited = services.invitation_user(token)
    except ApplicationError as exc:
        return render(request, "doctors/invitation.html", {"error": exc.message}, status=400)
    form = InvitationForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            services.invitation_accept(token=token, password=form.cleaned_data["password1"], request=request)
        except ApplicationError as exc:
            form_add_service_errors(form, exc)
            if "password" in exc.fields:
                for message in exc.fields["password"]:
                    form.add_error("password1", message)
        else:
            messages.success(request, _("Your password is set. Sign in to complete your profile."))
            return redirect("account_login")
    return render(request, "doctors/invitation.html", {"form": form, "invited": invited})


# --- Portal ---------------------------------------------------------------------------------


@doctor_required
def portal(request: HttpRequest, doctor: DoctorProfile) -> HttpResponse:
    return render(
        request,
        "doctors/portal/dashboard.html",
        {
            "doctor": doctor,
            "completeness": selectors.doctor_completeness(doctor),
            "history": doctor.verification_events.select_related("by")[:10],
            "services": doctor.services.filter(is_active=True),
        },
    )


def _list_initial(doctor: DoctorProfile, name: str, fields: list[str]) -> list[dict]:
    return list(getattr(doctor, name).values(*fields))


@doctor_required
def portal_profile(request: HttpRequest, doctor: DoctorProfile) -> HttpResponse:
    initial = {
        "first_name": doctor.user.first_name,
        "last_name": doctor.user.last_name,
        **{name: getattr(doctor, name) for name in ("title", "bio", "years_experience", "special_skills", "clinic_name", "clinic_address", "city", "country", "offers_video", "offers_in_person")},
        "primary_specialization": doctor.primary_specialization.slug,
        "secondary_specializations": list(doctor.secondary_specializations.values_list("slug", flat=True)),
        "languages": list(doctor.languages.values_list("code", flat=True)),
    }
    data = request.POST if request.method == "POST" else None
    form = ProfileForm(data, initial=initial)
    education = EducationFormSet(data, prefix="education", initial=_list_initial(doctor, "education", ["degree", "institution", "year"]))
    certifications = CertificationFormSet(data, prefix="certifications", initial=_list_initial(doctor, "certifications", ["name", "issuer", "year"]))
    positions = PositionFormSet(data, prefix="positions", initial=_list_initial(doctor, "positions", ["title", "organisation", "start_year", "end_year"]))
    formsets = [education, certifications, positions]
    if request.method == "POST" and form.is_valid() and all(f.is_valid() for f in formsets):
        changes = dict(form.cleaned_data)
        changes.update(education=formset_items(education), certifications=formset_items(certifications), positions=formset_items(positions))
        try:
            services.doctor_profile_update(doctor=doctor, data=changes, by=request.user, request=request)
        except ApplicationError as exc:
            form_add_service_errors(form, exc)
        else:
            messages.success(request, _("Your profile has been saved."))
            return redirect("doctors:portal-profile")
    return render(
        request,
        "doctors/portal/profile.html",
        {"doctor": doctor, "form": form, "education": education, "certifications": certifications, "positions": positions, "completeness": selectors.doctor_completeness(doctor)},
    )


@doctor_required
def portal_services(request: HttpRequest, doctor: DoctorProfile) -> HttpResponse:
    form = ServiceForm(request.POST or None, initial={"currency": doctor.fee_currency or ("INR" if doctor.country == "IN" else "USD"), "duration_minutes": 20, "is_active": True})
    if request.method == "POST" and form.is_valid():
        try:
            services.service_create(doctor=doctor, data=form.service_data(), request=request)
        except ApplicationError as exc:
            form_add_service_errors(form, exc)
        else:
            messages.success(request, _("Service added."))
            return redirect("doctors:portal-services")
    return render(request, "doctors/portal/services.html", {"doctor": doctor, "form": form, "services": doctor.services.all()})


@doctor_required
def portal_service_edit(request: HttpRequest, doctor: DoctorProfile, service_id) -> HttpResponse:
    service = get_object_or_404(DoctorService, public_id=service_id, doctor=doctor)
    initial = {
        **{name: getattr(service, name) for name in ("name", "description", "currency", "duration_minutes", "mode", "preparation_instructions", "procedure_type", "equipment_required", "free_follow_up_days", "is_active")},
        "price": service.price_minor / 10 ** CURRENCY_EXPONENTS[service.currency],
    }
    form = ServiceForm(request.POST or None, initial=initial)
    if request.method == "POST" and form.is_valid():
        try:
            services.service_update(service=service, data=form.service_data(), request=request)
        except ApplicationError as exc:
            form_add_service_errors(form, exc)
        else:
            messages.success(request, _("Service updated."))
            return redirect("doctors:portal-services")
    return render(request, "doctors/portal/service_edit.html", {"doctor": doctor, "form": form, "service": service})


@doctor_required
def portal_documents(request: HttpRequest, doctor: DoctorProfile) -> HttpResponse:
    licence_initial = {name: getattr(doctor, name) for name in ("licence_number", "licence_authority", "licence_country", "licence_expiry")}
    is_licence_update = request.method == "POST" and request.POST.get("form") == "licence"
    licence_form = LicenceUpdateForm(request.POST if is_licence_update else None, initial=licence_initial)
    form = DocumentForm(None if is_licence_update else (request.POST or None), request.FILES or None)
    if is_licence_update and licence_form.is_valid():
        changed = {name: licence_form.cleaned_data[name] for name in licence_form.changed_data}
        try:
            if changed:
                services.doctor_profile_update(doctor=doctor, data=changed, by=request.user, request=request)
        except ApplicationError as exc:
            form_add_service_errors(licence_form, exc)
        else:
            messages.success(request, _("Licence details saved. Your profile is back with our verification team.") if changed and doctor.verification_status == DoctorProfile.Status.APPROVED else _("Licence details saved."))
            return redirect("doctors:portal-documents")
    if not is_licence_update and request.method == "POST" and form.is_valid():
        try:
            services.doctor_document_add(doctor=doctor, kind=form.cleaned_data["kind"], upload=form.cleaned_data["document"], by=request.user, request=request)
        except ApplicationError as exc:
            form.add_error("document", exc.fields.get("document", [exc.message])[0])
        else:
            messages.success(request, _("Document uploaded."))
            return redirect("doctors:portal-documents")
    return render(request, "doctors/portal/documents.html", {"doctor": doctor, "form": form, "licence_form": licence_form, "documents": doctor.documents.all()})


@login_required
def document_download(request: HttpRequest, pk: int) -> HttpResponse:
    """Licence and qualification documents are never public: only their doctor and staff may
    open them, and staff access is audited."""
    document = get_object_or_404(DoctorDocument.objects.select_related("doctor__user"), pk=pk)
    is_owner = document.doctor.user_id == request.user.pk
    if not (is_owner or staff_can(request.user, "doctors.view_doctordocument")):
        raise Http404
    if not is_owner:
        audit_record(action="doctor.document_viewed", actor=request.user, target=document, subject_user=document.doctor.user, request=request)
    response = FileResponse(document.file.open("rb"), content_type=document.content_type, as_attachment=True, filename=document.original_name)
    response["X-Content-Type-Options"] = "nosniff"
    response["Cache-Control"] = "private, no-store"
    return response


@require_POST
@doctor_required
def portal_resubmit(request: HttpRequest, doctor: DoctorProfile) -> HttpResponse:
    try:
        services.doctor_resubmit(doctor=doctor, request=request)
    except ApplicationError as exc:
        messages.error(request, exc.message)
    else:
        messages.success(request, _("Your application is back with our verification team."))
    return redirect(reverse("doctors:portal"))
