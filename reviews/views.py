"""Review pages: writing (and editing, appealing) a review of a completed consultation,
reporting a review, helpful votes, the doctor's reply, and review photos."""

from __future__ import annotations

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import FileResponse, Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.translation import gettext as _
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_POST

from appointments.models import Appointment
from medimeet.core.errors import ApplicationError, form_add_service_errors
from medimeet.core.roles import staff_can

from . import services
from .forms import AppealForm, FlagForm, ReplyForm, ReviewForm
from .models import OVERALL, Review, ReviewPhoto

FIELD_NAMES = {"scores.overall": "overall", "text": "text", "photos": "photos", "statement": "statement"}


def _rules() -> dict:
    return {"window_days": settings.REVIEWS_WINDOW_DAYS, "edit_days": settings.REVIEWS_EDIT_WINDOW_DAYS}


def _doctor_page(review: Review) -> str:
    return reverse("doctors:detail", args=[review.doctor.slug]) + "#reviews-title"


def _back(request: HttpRequest, review: Review) -> HttpResponse:
    target = request.POST.get("next", "")
    if not url_has_allowed_host_and_scheme(target, allowed_hosts={request.get_host()}, require_https=request.is_secure()):
        target = _doctor_page(review)
    return redirect(target)


@never_cache
@login_required
def write(request: HttpRequest, appointment_id) -> HttpResponse:
    """Write a review of one's completed consultation; afterwards the same page shows the
    review's state, the edit form inside the window and the appeal form after a rejection."""
    appointment = get_object_or_404(Appointment.objects.select_related("doctor__user", "service"), public_id=appointment_id, patient=request.user)
    review = Review.objects.select_related("doctor").prefetch_related("scores__category", "photos", "versions").filter(appointment=appointment).first()
    if review is not None:
        return _own_review(request, appointment, review)
    try:
        services.review_check_eligible(appointment=appointment, patient=request.user)
    except ApplicationError as exc:
        return render(request, "reviews/write.html", {**_rules(), "appointment": appointment, "ineligible": exc.message}, status=409)
    form = ReviewForm(request.POST or None, request.FILES or None)
    if request.method == "POST" and form.is_valid():
        try:
            review = services.review_create(appointment=appointment, author=request.user, scores=form.scores(), text=form.cleaned_data["text"], photos=form.cleaned_data.get("photos") or [], request=request)
        except ApplicationError as exc:
            form_add_service_errors(form, exc, FIELD_NAMES)
        else:
            messages.success(request, {"published": _("Thank you. Your review is published."), "held": _("Thank you. Your review will be published once a moderator has checked it."), "rejected": _("Your review could not be published. The reason is below.")}[review.status])
            return redirect("reviews:write", appointment_id=appointment.public_id)
    return render(request, "reviews/write.html", {**_rules(), "appointment": appointment, "form": form})


def _own_review(request: HttpRequest, appointment: Appointment, review: Review) -> HttpResponse:
    editing = request.GET.get("edit") == "1" or request.method == "POST"
    form = None
    if editing and review.can_edit():
        initial = {OVERALL: review.overall, "overall": review.overall, "text": review.text, **{f"score_{s.category.code}": s.score for s in review.scores.all()}}
        form = ReviewForm(request.POST or None, initial=initial, with_photos=False)
        if request.method == "POST" and form.is_valid():
            try:
                services.review_edit(review=review, author=request.user, scores=form.scores(), text=form.cleaned_data["text"], request=request)
            except ApplicationError as exc:
                form_add_service_errors(form, exc, FIELD_NAMES)
            else:
                messages.success(request, _("Your review is updated."))
                return redirect("reviews:write", appointment_id=appointment.public_id)
    appeal = review.appeal if hasattr(review, "appeal") else None
    context = {**_rules(), "appointment": appointment, "review": review, "form": form, "appeal": appeal, "appeal_form": AppealForm() if review.can_appeal() else None}
    return render(request, "reviews/write.html", context)


@require_POST
@login_required
def appeal(request: HttpRequest, review_id) -> HttpResponse:
    review = get_object_or_404(Review.objects.select_related("appointment"), public_id=review_id, author=request.user)
    form = AppealForm(request.POST)
    if form.is_valid():
        try:
            services.review_appeal(review=review, author=request.user, statement=form.cleaned_data["statement"], request=request)
        except ApplicationError as exc:
            messages.error(request, exc.message)
        else:
            messages.success(request, _("Your appeal is with the moderators. We will email you their decision."))
    else:
        messages.error(request, _("Explain your appeal in 10 to 2000 characters."))
    return redirect("reviews:write", appointment_id=review.appointment.public_id)


@never_cache
@login_required
def flag(request: HttpRequest, review_id) -> HttpResponse:
    review = get_object_or_404(Review.objects.published().select_related("doctor__user", "author"), public_id=review_id)
    form = FlagForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            services.review_flag(review=review, reporter=request.user, reason=form.cleaned_data["reason"], note=form.cleaned_data["note"], request=request)
        except ApplicationError as exc:
            messages.info(request, exc.message)
        else:
            messages.success(request, _("Thank you. The moderators will look at this review. Neither the doctor nor the author will know who reported it."))
        return redirect(_doctor_page(review))
    return render(request, "reviews/flag.html", {"review": review, "form": form})


@require_POST
@login_required
def helpful(request: HttpRequest, review_id) -> HttpResponse:
    review = get_object_or_404(Review.objects.published().select_related("doctor"), public_id=review_id)
    try:
        services.review_helpful_set(review=review, user=request.user, helpful=request.POST.get("helpful") != "0")
    except ApplicationError as exc:
        messages.info(request, exc.message)
    return _back(request, review)


@require_POST
@login_required
def reply(request: HttpRequest, review_id) -> HttpResponse:
    review = get_object_or_404(Review.objects.published().select_related("doctor__user"), public_id=review_id)
    form = ReplyForm(request.POST)
    if not form.is_valid():
        messages.error(request, _("Write a reply of up to 5000 characters."))
        return _back(request, review)
    try:
        services.review_reply(review=review, by=request.user, text=form.cleaned_data["text"], request=request)
    except ApplicationError as exc:
        messages.error(request, exc.message)
    else:
        messages.success(request, _("Your reply is published."))
    return _back(request, review)


def photo(request: HttpRequest, photo_id) -> HttpResponse:
    """A review photo: public once its review is published; before that only its author and staff."""
    item = get_object_or_404(ReviewPhoto.objects.select_related("review"), public_id=photo_id)
    user = request.user
    if item.review.status != Review.Status.PUBLISHED and not (staff_can(user, "reviews.view_review") or item.review.author_id == user.pk):
        raise Http404
    response = FileResponse(item.image.open("rb"), content_type="image/jpeg")
    response["Cache-Control"] = "public, max-age=3600" if item.review.status == Review.Status.PUBLISHED else "private, no-store"
    response["X-Content-Type-Options"] = "nosniff"
    return response
