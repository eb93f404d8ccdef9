"""Reads for reviews: a doctor's published reviews with filters and sorts (a constant number of
queries whatever the page size), the rating summary shown on the doctor's page, and what the
rating formula needs."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from django.conf import settings
from django.db.models import Count, IntegerField, OuterRef, Prefetch, Q, QuerySet, Subquery, Value
from django.db.models.functions import Coalesce

from .models import OVERALL, DoctorRating, HelpfulVote, RatingCategory, Review, ReviewPhoto, ReviewScore
from .ratings import RatedReview

SORTS = {"recent": ("-created_at", "-pk"), "helpful": ("-helpful_count", "-created_at", "-pk")}


def doctor_reviews(*, doctor_id: int, sort: str = "recent", stars: int | None = None, with_photos: bool = False, with_reply: bool | None = None) -> QuerySet[Review]:
    """Published reviews of one doctor, newest or most helpful first; scores and photos are
    prefetched, so a page costs the same queries however many reviews it shows."""
    queryset = Review.objects.published().filter(doctor_id=doctor_id)
    if stars is not None:
        queryset = queryset.filter(overall=stars)
    if with_photos:
        queryset = queryset.filter(pk__in=ReviewPhoto.objects.values("review_id"))
    if with_reply is not None:
        queryset = queryset.exclude(reply_text="") if with_reply else queryset.filter(reply_text="")
    return (
        queryset.select_related("author", "appointment")
        .prefetch_related(
            Prefetch("scores", queryset=ReviewScore.objects.select_related("category").order_by("category__position", "category_id")),
            "photos",
        )
        .order_by(*SORTS.get(sort, SORTS["recent"]))
    )


def helpful_review_ids(*, user, reviews) -> set[int]:
    """Which of ``reviews`` ``user`` has marked helpful (one query)."""
    if not getattr(user, "is_authenticated", False):
        return set()
    return set(HelpfulVote.objects.filter(user=user, review__in=[review.pk for review in reviews]).values_list("review_id", flat=True))


def rated_reviews(*, doctor_id: int, today: date) -> list[RatedReview]:
    """A doctor's published reviews as the rating formula sees them (two queries). An author
    is suspect once REVIEWS_SUSPECT_REJECTIONS of their reviews have been rejected."""
    rejected = (
        Review.objects.filter(author_id=OuterRef("author_id"), status=Review.Status.REJECTED)
        .order_by().values("author_id").annotate(total=Count("pk")).values("total")
    )
    rows = list(
        Review.objects.published().filter(doctor_id=doctor_id)
        .annotate(rejections=Coalesce(Subquery(rejected, output_field=IntegerField()), Value(0)))
        .order_by("pk").values_list("pk", "overall", "created_at", "rejections")
    )
    scores: dict[int, dict[str, int]] = {}
    for review_id, code, score in ReviewScore.objects.filter(review_id__in=[row[0] for row in rows]).values_list("review_id", "category__code", "score"):
        scores.setdefault(review_id, {})[code] = score
    return [
        RatedReview(overall=overall, age_days=(today - created_at.date()).days, suspect_author=rejections >= settings.REVIEWS_SUSPECT_REJECTIONS, scores={OVERALL: overall, **scores.get(pk, {})})
        for pk, overall, created_at, rejections in rows
    ]


@dataclass(frozen=True)
class Bar:
    label: str
    value: float  # the average (categories) or the count (histogram)
    count: int
    percent: int


@dataclass(frozen=True)
class RatingSummary:
    average: float
    count: int
    categories: list[Bar]
    histogram: list[Bar]


def rating_summary(*, doctor) -> RatingSummary | None:
    """What the doctor's page shows above the reviews: per-category bars (active categories,
    in the staff's order) and the histogram, five stars first. None before the first review."""
    rating = DoctorRating.objects.filter(doctor=doctor).first()
    if rating is None or not rating.count:
        return None
    categories = [
        Bar(label=category.name, value=rating.categories[category.code]["average"], count=rating.categories[category.code]["count"], percent=round(rating.categories[category.code]["average"] * 20))
        for category in RatingCategory.objects.filter(is_active=True)
        if category.code in rating.categories
    ]
    histogram = [Bar(label=str(stars), value=rating.histogram.get(str(stars), 0), count=rating.histogram.get(str(stars), 0), percent=round(100 * rating.histogram.get(str(stars), 0) / rating.count)) for stars in range(5, 0, -1)]
    return RatingSummary(average=float(rating.average), count=rating.count, categories=categories, histogram=histogram)


def moderation_queue() -> QuerySet[Review]:
    """Reviews a moderator must look at: held by the filter, or reported and not yet decided."""
    return Review.objects.filter(Q(status=Review.Status.HELD) | Q(open_flag_count__gt=0)).order_by("created_at", "pk")
