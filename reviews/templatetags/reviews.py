"""Review blocks for pages owned by other apps, so their templates only need an include:
the review card on an appointment and the reviews section of a doctor's page."""

from __future__ import annotations

from django import template
from django.core.paginator import Paginator

from medimeet.core.errors import ApplicationError
from reviews import selectors, services
from reviews.models import Review

register = template.Library()
PAGE_SIZE = 10


@register.inclusion_tag("reviews/includes/appointment_card.html", takes_context=True)
def appointment_review_card(context, appointment) -> dict:
    """For the patient of a completed consultation: write a review, or see the one written."""
    user = context["request"].user
    if appointment.patient_id != user.pk or appointment.status != appointment.Status.COMPLETED:
        return {"show": False}
    review = Review.objects.filter(appointment=appointment).only("status", "overall", "created_at").first()
    reason = ""
    if review is None:
        try:
            services.review_check_eligible(appointment=appointment, patient=user)
        except ApplicationError as exc:  # past the window: say so instead of offering the form
            reason = exc.message
    return {"show": True, "appointment": appointment, "review": review, "closed_reason": reason}


@register.inclusion_tag("reviews/includes/doctor_reviews.html", takes_context=True)
def doctor_reviews(context, doctor) -> dict:
    """Rating, category bars, histogram and a page of reviews (recent or most helpful), in a
    constant number of queries."""
    request = context["request"]
    sort = request.GET.get("reviews", "recent")
    sort = sort if sort in selectors.SORTS else "recent"
    page = Paginator(selectors.doctor_reviews(doctor_id=doctor.pk, sort=sort), PAGE_SIZE).get_page(request.GET.get("reviews_page"))
    reviews = list(page.object_list)
    return {
        "doctor": doctor,
        "summary": selectors.rating_summary(doctor=doctor),
        "reviews": reviews,
        "page": page,
        "sort": sort,
        "voted": selectors.helpful_review_ids(user=request.user, reviews=reviews),
        "user": request.user,
        "path": request.get_full_path(),
        "SITE_NAME": context.get("SITE_NAME"),
    }
