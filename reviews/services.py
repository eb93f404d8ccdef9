"""Writes for reviews: submit, edit, flag, helpful votes, doctor replies, appeals, staff
moderation, and the rating recomputation (formula in reviews/ratings.py, docs/ratings.md).

Every change that can move a rating queues ``tasks.recompute_doctor_rating`` after commit;
``ratings_recompute_all`` (nightly, and ``manage.py reviews_recompute_ratings``) redoes every
doctor and re-estimates the platform prior.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta

from django.conf import settings
from django.core.files.uploadedfile import UploadedFile
from django.db import IntegrityError, transaction
from django.db.models import Avg, Count, F
from django.http import HttpRequest
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext

from appointments.models import Appointment
from doctors.models import DoctorProfile
from medimeet.core.audit import audit_record
from medimeet.core.errors import ApplicationError
from medimeet.core.events import enqueue_on_commit
from medimeet.core.notifications import notify
from medimeet.core.roles import staff_can
from medimeet.core.uploads import ReencodedImage, image_reencode

from . import selectors
from .models import (
    OVERALL,
    DoctorRating,
    HelpfulVote,
    ModerationDecision,
    PlatformRating,
    RatingCategory,
    Review,
    ReviewAppeal,
    ReviewFlag,
    ReviewPhoto,
    ReviewScore,
    ReviewVersion,
)
from .moderation import APPROVE, HOLD, REJECT, review_screen
from .ratings import RatingParameters, rating_compute

TEXT_MIN, TEXT_MAX = 20, 5000
STATEMENT_MAX = 2000
PHOTO_MAX_SIDE = 1600
SCREENING_STATUS = {APPROVE: Review.Status.PUBLISHED, HOLD: Review.Status.HELD, REJECT: Review.Status.REJECTED}
SCREENING_ACTION = {APPROVE: ModerationDecision.Action.AUTO_APPROVE, HOLD: ModerationDecision.Action.AUTO_HOLD, REJECT: ModerationDecision.Action.AUTO_REJECT}


def review_notify(*, user, event: str, context: dict, dedupe_key: str | None = None) -> int:
    """The one place reviews send a message: ``event`` is ``review.<event>`` of the notification
    catalogue (templates/reviews/email/<event>_*). Returns the messages queued."""
    return len(notify(user=user, event=f"review.{event}", context=context, dedupe_key=dedupe_key))


REQUEST_AFTER = timedelta(hours=1)  # give the patient a moment after the call before asking
REQUEST_WITHIN = timedelta(days=2)  # a scan that was down catches up; older ones are left alone


def reviews_request_due(*, now: datetime | None = None) -> int:
    """Hourly (beat): ask each patient whose consultation was completed an hour or more ago (and
    less than two days) for a review, unless they wrote one. Idempotent: one request per
    appointment (the notification's dedupe key). Returns how many were queued."""
    now = now or timezone.now()
    due = Appointment.objects.filter(
        status=Appointment.Status.COMPLETED, end__lte=now - REQUEST_AFTER, end__gt=now - REQUEST_WITHIN, review__isnull=True
    ).select_related("patient", "doctor__user")
    queued = 0
    for appointment in due:
        url = settings.SITE_URL + reverse("reviews:write", args=[appointment.public_id])
        context = {"appointment": appointment, "doctor": appointment.doctor, "url": url, "days": settings.REVIEWS_WINDOW_DAYS}
        with transaction.atomic():
            queued += review_notify(user=appointment.patient, event="request", context=context, dedupe_key=f"review-request:{appointment.pk}")
    return queued


# --- Submitting and editing ---------------------------------------------------------------------


def review_check_eligible(*, appointment: Appointment, patient) -> None:
    """Raise the REV_ code that stops ``patient`` reviewing ``appointment``, if any."""
    if appointment.patient_id != patient.pk:
        raise ApplicationError("REV_001")
    if appointment.status != Appointment.Status.COMPLETED:
        raise ApplicationError("REV_002", gettext("Only a completed consultation can be reviewed; this one is %(status)s.") % {"status": appointment.get_status_display().lower()})
    if Review.objects.filter(appointment=appointment).exists():
        raise ApplicationError("REV_003")
    if timezone.now() > appointment.end + timedelta(days=settings.REVIEWS_WINDOW_DAYS):
        raise ApplicationError("REV_004", gettext("Reviews can be written up to %(days)d days after the consultation.") % {"days": settings.REVIEWS_WINDOW_DAYS})


def _clean_scores(scores: dict[str, int]) -> tuple[int, dict[RatingCategory, int]]:
    """The overall score and the other scores by active category; REV_005 naming the field."""
    if scores.get(OVERALL) not in range(1, 6):
        raise ApplicationError("REV_005", gettext("Give an overall rating from 1 to 5 stars."), fields={"scores.overall": [gettext("Choose 1 to 5 stars.")]})
    categories = {category.code: category for category in RatingCategory.objects.filter(is_active=True)}
    cleaned: dict[RatingCategory, int] = {}
    for code, value in scores.items():
        if code == OVERALL:
            continue
        if code not in categories:
            raise ApplicationError("REV_005", f"There is no rating category {code!r}.", fields={f"scores.{code}": [gettext("Unknown category.")]})
        if value not in range(1, 6):
            raise ApplicationError("REV_005", gettext("Ratings go from 1 to 5 stars."), fields={f"scores.{code}": [gettext("Choose 1 to 5 stars.")]})
        cleaned[categories[code]] = value
    return scores[OVERALL], cleaned


def _clean_text(text: str) -> str:
    text = text.strip()
    if not TEXT_MIN <= len(text) <= TEXT_MAX:
        message = f"Write between {TEXT_MIN} and {TEXT_MAX} characters."
        raise ApplicationError("REV_005", message, fields={"text": [message]})
    return text


def _clean_photos(photos: Sequence[UploadedFile]) -> list[ReencodedImage]:
    if len(photos) > settings.REVIEWS_MAX_PHOTOS:
        message = f"Attach at most {settings.REVIEWS_MAX_PHOTOS} photos."
        raise ApplicationError("REV_006", message, fields={"photos": [message]})
    return [image_reencode(photo, max_bytes=settings.REVIEWS_PHOTO_MAX_BYTES, max_side=PHOTO_MAX_SIDE, code="REV_006", field="photos") for photo in photos]


def _decide(review: Review, *, action: str, by=None, reason: str = "", from_status: str) -> None:
    ModerationDecision.objects.create(review=review, action=action, by=by, reason=reason, from_status=from_status, to_status=review.status)


def _apply_screening(review: Review, text: str) -> str:
    """Set the review's status from the automated filter; returns the filter's outcome."""
    screening = review_screen(text)
    review.status = SCREENING_STATUS[screening.outcome]
    review.screening = list(screening.rules)
    review.moderation_reason = screening.reason
    if review.status == Review.Status.PUBLISHED and review.published_at is None:
        review.published_at = timezone.now()
    return screening.outcome


def review_create(*, appointment: Appointment, author, scores: dict[str, int], text: str, photos: Sequence[UploadedFile] = (), request: HttpRequest | None = None) -> Review:
    """Review a completed consultation: checked for eligibility, screened (published, held or
    rejected with a reason), photos re-encoded without EXIF; the rating follows after commit."""
    review_check_eligible(appointment=appointment, patient=author)
    overall, category_scores = _clean_scores(scores)
    text = _clean_text(text)
    images = _clean_photos(photos)
    saved: list[str] = []
    try:
        with transaction.atomic():
            Appointment.objects.select_for_update().filter(pk=appointment.pk).first()  # one review decision per appointment at a time
            review = Review(appointment=appointment, doctor_id=appointment.doctor_id, author=author, overall=overall, text=text)
            outcome = _apply_screening(review, text)
            review.save()
            ReviewScore.objects.bulk_create([ReviewScore(review=review, category=category, score=value) for category, value in category_scores.items()])
            for image in images:
                photo = ReviewPhoto(review=review, width=image.width, height=image.height)
                photo.image.save(f"{photo.public_id.hex}.jpg", image.content, save=True)
                saved.append(photo.image.name)
            _decide(review, action=SCREENING_ACTION[outcome], reason=review.moderation_reason, from_status="")
            audit_record(action="review.created", actor=author, target=review, subject_user=author, request=request, metadata={"doctor": appointment.doctor_id, "status": review.status, "rules": review.screening})
            enqueue_on_commit(_recompute_task(), review.doctor_id)
    except IntegrityError as exc:  # the same appointment reviewed twice at once
        _delete_files(saved)
        raise ApplicationError("REV_003") from exc
    except BaseException:
        _delete_files(saved)
        raise
    return review


def _delete_files(names: list[str]) -> None:
    from django.core.files.storage import default_storage

    for name in names:
        default_storage.delete(name)


def _version_save(review: Review, *, by) -> None:
    scores = {score.category.code: score.score for score in review.scores.select_related("category")}
    ReviewVersion.objects.create(review=review, number=review.version, overall=review.overall, text=review.text, scores=scores, replaced_by=by)
    review.version += 1


def review_edit(*, review: Review, author, scores: dict[str, int], text: str, request: HttpRequest | None = None) -> Review:
    """The author changes their review inside the edit window; the old one is kept as a
    version and the new text is screened again."""
    if review.author_id != author.pk:
        raise ApplicationError("REV_007")
    if not review.can_edit():
        raise ApplicationError("REV_008", gettext("Reviews can be edited for %(days)d days after they are written, and not after a rejection.") % {"days": settings.REVIEWS_EDIT_WINDOW_DAYS})
    overall, category_scores = _clean_scores(scores)
    text = _clean_text(text)
    with transaction.atomic():
        review = Review.objects.select_for_update().get(pk=review.pk)
        if not review.can_edit():  # rejected meanwhile
            raise ApplicationError("REV_008")
        before = review.status
        _version_save(review, by=author)
        review.overall, review.text, review.edited_at = overall, text, timezone.now()
        outcome = _apply_screening(review, text)
        review.save()
        review.scores.all().delete()
        ReviewScore.objects.bulk_create([ReviewScore(review=review, category=category, score=value) for category, value in category_scores.items()])
        _decide(review, action=SCREENING_ACTION[outcome], reason=review.moderation_reason, from_status=before)
        audit_record(action="review.edited", actor=author, target=review, subject_user=author, request=request, metadata={"version": review.version, "status": review.status})
        enqueue_on_commit(_recompute_task(), review.doctor_id)
    return review


# --- Flags, votes, replies, appeals ----------------------------------------------------------------


def review_flag(*, review: Review, reporter, reason: str, note: str = "", request: HttpRequest | None = None) -> ReviewFlag:
    """Anyone signed in reports a published review to the moderators. Who reported it is
    recorded for staff only: no page or API answer to the doctor or the author names them."""
    if review.status != Review.Status.PUBLISHED:
        raise ApplicationError("REV_007")
    if review.author_id == reporter.pk:
        raise ApplicationError("REV_012")
    try:
        with transaction.atomic():
            flag = ReviewFlag.objects.create(review=review, reporter=reporter, reason=reason, note=note.strip()[:STATEMENT_MAX])
            Review.objects.filter(pk=review.pk).update(open_flag_count=F("open_flag_count") + 1)
            audit_record(action="review.flagged", actor=reporter, target=review, request=request, metadata={"reason": reason})
    except IntegrityError as exc:
        raise ApplicationError("REV_011") from exc
    return flag


def review_helpful_set(*, review: Review, user, helpful: bool) -> int:
    """Mark (or unmark) a published review as helpful: one vote per person; idempotent.
    Returns the new count."""
    if review.status != Review.Status.PUBLISHED:
        raise ApplicationError("REV_007")
    if review.author_id == user.pk:
        raise ApplicationError("REV_012")
    with transaction.atomic():
        if helpful:
            _, created = HelpfulVote.objects.get_or_create(review=review, user=user)
            if created:
                Review.objects.filter(pk=review.pk).update(helpful_count=F("helpful_count") + 1)
        elif HelpfulVote.objects.filter(review=review, user=user).delete()[0]:
            Review.objects.filter(pk=review.pk).update(helpful_count=F("helpful_count") - 1)
    return Review.objects.values_list("helpful_count", flat=True).get(pk=review.pk)


def review_reply(*, review: Review, by, text: str, request: HttpRequest | None = None) -> Review:
    """The reviewed doctor's public answer (one, which they may rewrite). It is published at
    once, so the filter must approve it outright."""
    if review.doctor.user_id != by.pk:
        raise ApplicationError("REV_010")
    if review.status != Review.Status.PUBLISHED:
        raise ApplicationError("REV_007")
    text = text.strip()
    if not 2 <= len(text) <= TEXT_MAX:
        raise ApplicationError("REV_013", gettext("Write a reply of up to 5000 characters."), fields={"text": [gettext("Write a reply of up to 5000 characters.")]})
    screening = review_screen(text)
    if screening.outcome != APPROVE:
        raise ApplicationError("REV_013", screening.reason.replace(gettext("The review"), gettext("The reply")), fields={"text": [screening.reason.replace(gettext("The review"), gettext("The reply"))]})
    review.reply_text, review.replied_at = text, timezone.now()
    review.save(update_fields=["reply_text", "replied_at", "updated_at"])
    audit_record(action="review.replied", actor=by, target=review, request=request)
    return review


def review_appeal(*, review: Review, author, statement: str, request: HttpRequest | None = None) -> ReviewAppeal:
    """The author asks once for a rejection to be looked at again."""
    if review.author_id != author.pk:
        raise ApplicationError("REV_007")
    statement = statement.strip()
    if not 10 <= len(statement) <= STATEMENT_MAX:
        raise ApplicationError("REV_005", gettext("Explain your appeal in 10 to 2000 characters."), fields={"statement": [gettext("Explain your appeal in 10 to 2000 characters.")]})
    if review.status != Review.Status.REJECTED:
        raise ApplicationError("REV_009", gettext("Only a rejected review can be appealed."))
    try:
        with transaction.atomic():
            appeal = ReviewAppeal.objects.create(review=review, statement=statement)
            audit_record(action="review.appealed", actor=author, target=review, subject_user=author, request=request)
    except IntegrityError as exc:
        raise ApplicationError("REV_009", gettext("A review can be appealed once.")) from exc
    return appeal


# --- Staff moderation ----------------------------------------------------------------------------


MODERATION_ACTIONS = ("approve", "reject", "redact")


def review_moderate(*, review: Review, by, action: str, reason: str, text: str | None = None, request: HttpRequest | None = None) -> Review:
    """Staff decide on a held or reported review: ``approve`` (publish; reports closed),
    ``reject`` (with a reason the author sees, and may appeal once) or ``redact`` (replace the
    text, the original kept as a version). Logged, audited, rating refreshed."""
    if not staff_can(by, "reviews.change_review"):
        raise ApplicationError("AUTH_010")
    if action not in MODERATION_ACTIONS or not reason.strip():
        raise ApplicationError("REV_005", gettext("Choose a decision and give a reason."), fields={"reason": [gettext("Give a reason.")]})
    with transaction.atomic():
        review = Review.objects.select_for_update().get(pk=review.pk)
        before = review.status
        if action == "approve":
            if before == Review.Status.PUBLISHED and not review.open_flag_count:
                raise ApplicationError("REV_014", gettext("The review is already published and nobody has reported it."))
            review.status = Review.Status.PUBLISHED
            review.published_at = review.published_at or timezone.now()
            review.moderation_reason = ""
        elif action == "reject":
            if before == Review.Status.REJECTED:
                raise ApplicationError("REV_014", gettext("The review is already rejected."))
            review.status, review.moderation_reason = Review.Status.REJECTED, reason.strip()
        else:
            new_text = (text or "").strip()
            if not new_text or new_text == review.text:
                raise ApplicationError("REV_005", gettext("Give the redacted text."), fields={"text": [gettext("Give the redacted text.")]})
            _version_save(review, by=by)
            review.text = new_text
        review.save()
        ReviewFlag.objects.filter(review=review, resolved_at__isnull=True).update(resolved_at=timezone.now())
        Review.objects.filter(pk=review.pk).update(open_flag_count=0)
        review.open_flag_count = 0
        _decide(review, action=action, by=by, reason=reason.strip(), from_status=before)
        audit_record(action=f"review.{action}", actor=by, target=review, subject_user=review.author, request=request, metadata={"from": before, "to": review.status})
        _recompute_after_author_change(review)
        if action == "reject":
            review_notify(user=review.author, event="review_rejected", context={"review": review, "doctor": review.doctor, "reason": review.moderation_reason, "url": settings.SITE_URL + reverse("reviews:write", args=[review.appointment.public_id])})
    return review


def appeal_decide(*, appeal: ReviewAppeal, by, uphold: bool, reason: str, request: HttpRequest | None = None) -> ReviewAppeal:
    """Staff decide an appeal: upheld publishes the review, denied leaves it rejected."""
    if not staff_can(by, "reviews.change_reviewappeal"):
        raise ApplicationError("AUTH_010")
    if not reason.strip():
        raise ApplicationError("REV_005", gettext("Give a reason."), fields={"reason": [gettext("Give a reason.")]})
    with transaction.atomic():
        appeal = ReviewAppeal.objects.select_for_update().select_related("review").get(pk=appeal.pk)
        if appeal.status != ReviewAppeal.Status.OPEN:
            raise ApplicationError("REV_014", gettext("This appeal has already been decided."))
        review = appeal.review
        appeal.status = ReviewAppeal.Status.UPHELD if uphold else ReviewAppeal.Status.DENIED
        appeal.decided_by, appeal.decided_at, appeal.decision_reason = by, timezone.now(), reason.strip()
        appeal.save()
        if uphold:
            review.status, review.moderation_reason = Review.Status.PUBLISHED, ""
            review.published_at = review.published_at or timezone.now()
            review.save()
        _decide(review, action=ModerationDecision.Action.APPEAL_UPHELD if uphold else ModerationDecision.Action.APPEAL_DENIED, by=by, reason=appeal.decision_reason, from_status=Review.Status.REJECTED)
        audit_record(action="review.appeal_" + ("upheld" if uphold else "denied"), actor=by, target=review, subject_user=review.author, request=request)
        _recompute_after_author_change(review)
        url = settings.SITE_URL + reverse("reviews:write", args=[review.appointment.public_id])
        review_notify(user=review.author, event="appeal_decided", context={"review": review, "doctor": review.doctor, "upheld": uphold, "reason": appeal.decision_reason, "url": url})
    return appeal


def _recompute_after_author_change(review: Review) -> None:
    """A decision changes this doctor's rating and may change whether the author's account is
    suspect, which weighs their reviews of other doctors too."""
    for doctor_id in sorted(set(Review.objects.filter(author_id=review.author_id).values_list("doctor_id", flat=True))):
        enqueue_on_commit(_recompute_task(), doctor_id)


def _recompute_task():
    from .tasks import recompute_doctor_rating

    return recompute_doctor_rating


# --- Ratings -----------------------------------------------------------------------------------


def rating_parameters(prior_mean: float) -> RatingParameters:
    return RatingParameters(prior_mean=prior_mean, prior_weight=settings.REVIEWS_RATING_PRIOR_WEIGHT, half_life_days=settings.REVIEWS_RATING_HALF_LIFE_DAYS)


def platform_prior_refresh() -> PlatformRating:
    """Re-estimate the platform mean (every published review's overall score, unweighted)."""
    totals = Review.objects.published().aggregate(mean=Avg("overall"), count=Count("pk"))
    mean = float(totals["mean"]) if totals["count"] else settings.REVIEWS_RATING_DEFAULT_MEAN
    prior, _ = PlatformRating.objects.update_or_create(pk=1, defaults={"mean": mean, "review_count": totals["count"], "computed_at": timezone.now()})
    return prior


def platform_prior() -> float:
    prior = PlatformRating.objects.filter(pk=1).first()
    return prior.mean if prior is not None else platform_prior_refresh().mean


def doctor_rating_refresh(*, doctor_id: int, prior_mean: float | None = None) -> DoctorRating:
    """Recompute one doctor's rating from their published reviews and store it on the doctor
    (the search sorts on it). Idempotent: the same reviews on the same day give the same row."""
    today = timezone.now().date()
    prior_mean = platform_prior() if prior_mean is None else prior_mean
    result = rating_compute(selectors.rated_reviews(doctor_id=doctor_id, today=today), rating_parameters(prior_mean))
    with transaction.atomic():
        rating, _ = DoctorRating.objects.update_or_create(
            doctor_id=doctor_id,
            defaults={
                "average": result.average, "count": result.count, "weighted_sum": result.weighted_sum, "weight_total": result.weight_total,
                "prior_mean": prior_mean,
                "categories": result.categories, "histogram": result.histogram, "reduced_weight_count": result.reduced_weight_count, "computed_at": timezone.now(),
            },
        )
        DoctorProfile.objects.filter(pk=doctor_id).update(rating_average=result.average, rating_count=result.count)
    return rating


def ratings_recompute_all(*, refresh_prior: bool = True) -> int:
    """Every doctor with reviews or a stored rating, from scratch (nightly and the management
    command); with ``refresh_prior`` the platform mean is re-estimated first. Returns how many."""
    prior = platform_prior_refresh().mean if refresh_prior else platform_prior()
    doctor_ids = set(Review.objects.values_list("doctor_id", flat=True)) | set(DoctorRating.objects.values_list("doctor_id", flat=True))
    for doctor_id in sorted(doctor_ids):
        doctor_rating_refresh(doctor_id=doctor_id, prior_mean=prior)
    return len(doctor_ids)
