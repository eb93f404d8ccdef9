"""Reads of doctors: public search, detail, profile completeness, the staff queue."""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal

from django.contrib.postgres.search import SearchQuery, SearchRank
from django.core.cache import cache
from django.db import connection
from django.db.models import Exists, F, OuterRef, Prefetch, Q, QuerySet
from django.utils.translation import gettext_noop

from .models import CURRENCY_EXPONENTS, DoctorProfile, DoctorService, Specialization

SORTS = ("relevance", "rating", "fee", "-fee", "experience", "availability")


@dataclass
class DoctorSearch:
    """Validated search parameters (the API's and the page's filter forms produce one)."""

    q: str = ""
    specialization: Specialization | None = None
    fee_min: Decimal | None = None
    fee_max: Decimal | None = None
    currency: str = ""
    experience_min: int | None = None
    rating_min: Decimal | None = None
    language: str = ""
    mode: str = ""
    city: str = ""
    country: str = ""
    available_on: date | None = None
    sort: str = "relevance"


def available_on_filter(queryset: QuerySet, day: date) -> QuerySet:
    """Doctors who work on ``day``: weekly hours on that weekday unless the date is closed, or
    special hours that date, and no platform holiday. Set-based (no per-doctor slot
    computation), so it stays fast over every listed doctor; a day that turns out fully booked
    shows no slots on the booking page."""
    from appointments.models import DateOverride, PlatformHoliday, WeeklyHours

    weekly = WeeklyHours.objects.filter(schedule__doctor_id=OuterRef("pk"), weekday=day.weekday())
    closed = DateOverride.objects.filter(schedule__doctor_id=OuterRef("pk"), date=day, is_closed=True)
    special = DateOverride.objects.filter(schedule__doctor_id=OuterRef("pk"), date=day, is_closed=False)
    holiday = PlatformHoliday.objects.filter(Q(country="") | Q(country=OuterRef("country")), date=day)
    return queryset.filter((Exists(weekly) & ~Exists(closed)) | Exists(special)).exclude(Exists(holiday))


def soonest_availability_order(queryset: QuerySet) -> QuerySet:
    """Soonest first free slot (kept on the profile by the appointments app), then rating;
    doctors without a free slot in their booking horizon come last."""
    return queryset.order_by(F("next_available_at").asc(nulls_last=True), "-rating_average", "pk")


def _to_minor(amount: Decimal, currency: str) -> int:
    return int(amount * (10 ** CURRENCY_EXPONENTS.get(currency, 2)))


def doctor_search(params: DoctorSearch) -> QuerySet[DoctorProfile]:
    """Listed doctors matching ``params``, ordered, with everything a result card shows loaded
    in a constant number of queries (no N+1, whatever the page size)."""
    qs = DoctorProfile.objects.listed()
    if params.q:
        qs = _text_filter(qs, params.q)
    if params.specialization is not None:
        # Resolve the subtree to ids first: an OR over an EXISTS forced a per-row subplan.
        subtree = list(Specialization.objects.filter(path__startswith=params.specialization.path).values_list("pk", flat=True))
        secondary = DoctorProfile.secondary_specializations.through.objects.filter(specialization_id__in=subtree).values("doctorprofile_id")
        qs = qs.filter(Q(primary_specialization_id__in=subtree) | Q(pk__in=secondary))
    if params.fee_min is not None or params.fee_max is not None:
        # The consultation fee a patient compares is the cheapest active service ("from ₹500"),
        # kept on the profile: an indexed range instead of a per-doctor EXISTS over services.
        qs = qs.filter(fee_currency=params.currency)
        if params.fee_min is not None:
            qs = qs.filter(min_fee_minor__gte=_to_minor(params.fee_min, params.currency))
        if params.fee_max is not None:
            qs = qs.filter(min_fee_minor__lte=_to_minor(params.fee_max, params.currency))
    if params.experience_min is not None:
        qs = qs.filter(years_experience__gte=params.experience_min)
    if params.rating_min is not None:
        qs = qs.filter(rating_average__gte=params.rating_min)
    if params.language:
        speaks = DoctorProfile.languages.through.objects.filter(doctorprofile_id=OuterRef("pk"), language_id=params.language)
        qs = qs.filter(Exists(speaks))
    if params.mode == "video":
        qs = qs.filter(offers_video=True)
    elif params.mode == "in_person":
        qs = qs.filter(offers_in_person=True)
    if params.city:
        qs = qs.filter(city__iexact=params.city)
    if params.country:
        qs = qs.filter(country=params.country.upper())
    if params.available_on is not None:
        qs = available_on_filter(qs, params.available_on)
    qs = _order(qs, params)
    # Result cards show the fee from the profile, so services are not loaded here.
    return qs.select_related("user", "primary_specialization").prefetch_related("languages")


SEARCH_COUNT_SECONDS = 60


def doctor_search_count(params: DoctorSearch, queryset: QuerySet) -> int:
    """The number of results, cached for a minute per filter combination (Redis in production):
    counting every listed doctor is the most expensive query of a search page (see
    docs/performance.md), while a "1,234 doctors found" a minute old misleads no one. The results
    themselves are always live."""
    key_parts = [
        params.q.strip().lower(), params.specialization.pk if params.specialization else "", params.fee_min, params.fee_max,
        params.currency, params.experience_min, params.rating_min, params.language, params.mode, params.city.lower(),
        params.country.upper(), params.available_on,
    ]
    key = "doctor-search-count:" + hashlib.sha256(repr(key_parts).encode()).hexdigest()
    return cache.get_or_set(key, queryset.count, SEARCH_COUNT_SECONDS)


def _text_filter(qs: QuerySet, q: str) -> QuerySet:
    if connection.vendor == "postgresql":
        query = SearchQuery(q, search_type="websearch", config="simple")
        return qs.filter(search_vector=query).annotate(rank=SearchRank(F("search_vector"), query))
    # SQLite fallback: every word must appear in the prepared search document.
    for word in re.findall(r"\w+", q.lower())[:8]:
        qs = qs.filter(search_document__contains=word)
    return qs


def _order(qs: QuerySet, params: DoctorSearch) -> QuerySet:
    sort = params.sort
    if sort == "relevance" and params.q and connection.vendor == "postgresql":
        return qs.order_by("-rank", "-rating_average", "pk")
    if sort == "fee":
        return qs.order_by(F("min_fee_minor").asc(nulls_last=True), "pk")
    if sort == "-fee":
        return qs.order_by(F("min_fee_minor").desc(nulls_last=True), "pk")
    if sort == "experience":
        return qs.order_by("-years_experience", "pk")
    if sort == "availability":
        return soonest_availability_order(qs)
    return qs.order_by("-rating_average", "-rating_count", "pk")


def doctor_public_detail(*, slug: str) -> DoctorProfile:
    """A listed doctor with services, education, history and languages, or DoesNotExist."""
    return (
        DoctorProfile.objects.listed()
        .select_related("user", "primary_specialization")
        .prefetch_related(
            "languages",
            "secondary_specializations",
            "education",
            "certifications",
            "positions",
            Prefetch("services", queryset=DoctorService.objects.filter(is_active=True).order_by("price_minor"), to_attr="active_services"),
        )
        .get(slug=slug)
    )


@dataclass
class Completeness:
    score: int
    missing: list[str] = field(default_factory=list)


# What a complete profile has, and how much each part weighs (sums to 100). Labels stay English
# (API, comparisons); the portal template translates them (gettext_noop marks them for the .po).
COMPLETENESS_PARTS = [
    ("photo", 10, gettext_noop("a profile photo")),
    ("bio", 15, gettext_noop("a biography of at least 100 characters")),
    ("experience", 5, gettext_noop("years of experience")),
    ("education", 15, gettext_noop("your education")),
    ("certifications", 5, gettext_noop("certifications")),
    ("positions", 5, gettext_noop("your professional history")),
    ("languages", 10, gettext_noop("languages you speak")),
    ("skills", 5, gettext_noop("special skills")),
    ("clinic", 10, gettext_noop("your clinic or hospital and city")),
    ("services", 15, gettext_noop("at least one active service with a price")),
    ("licence_document", 5, gettext_noop("your licence document")),
]


def doctor_completeness(doctor: DoctorProfile) -> Completeness:
    present = {
        "photo": bool(doctor.user.picture),
        "bio": len(doctor.bio.strip()) >= 100,
        "experience": doctor.years_experience > 0,
        "education": doctor.education.exists(),
        "certifications": doctor.certifications.exists(),
        "positions": doctor.positions.exists(),
        "languages": doctor.languages.exists(),
        "skills": bool(doctor.special_skills.strip()),
        "clinic": bool(doctor.clinic_name.strip() and doctor.city.strip()),
        "services": doctor.services.filter(is_active=True).exists(),
        "licence_document": doctor.documents.filter(kind="licence").exists(),
    }
    score = sum(weight for key, weight, _ in COMPLETENESS_PARTS if present[key])
    return Completeness(score=score, missing=[label for key, _, label in COMPLETENESS_PARTS if not present[key]])


def specialization_tree() -> list[dict]:
    """All specializations as nested dicts, in one query."""
    specializations = list(Specialization.objects.order_by("path"))
    nodes = {s.pk: {"id": s.pk, "slug": s.slug, "name": s.name, "children": []} for s in specializations}
    roots: list[dict] = []
    for s in specializations:  # ordered by path, so a parent always comes before its children
        (nodes[s.parent_id]["children"] if s.parent_id else roots).append(nodes[s.pk])
    return roots


def doctor_queue(*, status: str = "", q: str = "") -> QuerySet[DoctorProfile]:
    """The staff verification queue: oldest submissions first."""
    qs = DoctorProfile.objects.select_related("user", "primary_specialization").prefetch_related(
        "languages", Prefetch("services", queryset=DoctorService.objects.filter(is_active=True), to_attr="active_services")
    )
    if status:
        qs = qs.filter(verification_status=status)
    if q:
        qs = qs.filter(Q(user__email__icontains=q) | Q(user__last_name__icontains=q) | Q(licence_number__icontains=q.upper()))
    return qs.order_by("submitted_at", "pk")
