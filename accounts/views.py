"""Account pages of the patient and doctor portals (sign-in pages themselves are allauth's)."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from medimeet.core.errors import ApplicationError

from . import selectors, services
from .forms import PictureForm, ProfileForm
from .models import User


@login_required
def dashboard(request: HttpRequest) -> HttpResponse:
    from django.utils import timezone

    from appointments.selectors import appointments_for

    user = selectors.user_with_profile(user=request.user)
    upcoming = []
    if user.role in (User.Role.PATIENT, User.Role.DOCTOR):
        role = "doctor" if user.role == User.Role.DOCTOR else "patient"
        upcoming = list(appointments_for(user=user, role=role, start=timezone.now()).filter(status__in=["pending_payment", "confirmed", "in_progress"])[:5])
    return render(request, "accounts/dashboard.html", {"profile_user": user, "profile": getattr(user, "patient_profile", None), "upcoming": upcoming})


def _profile_initial(user) -> dict:
    initial = {name: getattr(user, name) for name in ("first_name", "last_name", "timezone", "language")}
    profile = getattr(user, "patient_profile", None)
    if profile is not None:
        initial.update({name: getattr(profile, name) for name in ProfileForm.PATIENT_ONLY})
    return initial


@login_required
def profile_edit(request: HttpRequest) -> HttpResponse:
    user = selectors.user_with_profile(user=request.user)
    form = ProfileForm(request.POST or None, user=user, initial=_profile_initial(user))
    if request.method == "POST" and form.is_valid():
        changed = {name: form.cleaned_data[name] for name in form.changed_data}
        if changed:
            services.profile_update(user=user, data=changed, request=request)
        messages.success(request, _("Your profile has been saved."))
        return redirect("accounts:profile")
    return render(request, "accounts/profile.html", {"form": form, "picture_form": PictureForm(), "profile_user": user})


@login_required
@require_POST
def profile_picture(request: HttpRequest) -> HttpResponse:
    form = PictureForm(request.POST, request.FILES)
    if form.is_valid():
        try:
            services.profile_picture_set(user=request.user, upload=form.cleaned_data["picture"], request=request)
        except ApplicationError as exc:
            messages.error(request, exc.message)
        else:
            messages.success(request, _("Your picture has been updated."))
    else:
        messages.error(request, _("Choose an image file to upload."))
    return redirect("accounts:profile")


@login_required
def devices(request: HttpRequest) -> HttpResponse:
    sessions = selectors.sessions_for_user(user=request.user, request=request)
    return render(request, "accounts/devices.html", {"sessions": sessions})


@login_required
@require_POST
def device_revoke(request: HttpRequest, session_id: str) -> HttpResponse:
    if session_id == "all":
        services.sessions_revoke_all(user=request.user, request=request, keep_current=True)
        messages.success(request, _("You have been signed out everywhere else."))
        return redirect("accounts:devices")
    try:
        services.session_revoke(user=request.user, session_id=session_id, request=request)
    except ApplicationError as exc:
        messages.error(request, exc.message)
    else:
        messages.success(request, _("The session has been signed out."))
    return redirect("accounts:devices")
