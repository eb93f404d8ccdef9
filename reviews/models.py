"""Verified reviews and ratings (Step 8).

A ``Review`` belongs to one completed appointment (unique), so every review is a verified
consultation. Scores per ``RatingCategory`` (staff-configurable; "overall" always exists and is
kept on the review itself for fast aggregates), earlier versions in ``ReviewVersion``, photos in
``ReviewPhoto`` (re-encoded, EXIF dropped). Moderation: automated screening on submit, ``ReviewFlag``
from anyone (the reporter is never shown), ``ReviewAppeal`` once per rejection, and every decision in
``ModerationDecision``. ``DoctorRating`` holds the computed aggregates (docs/ratings.md).
"""

from __future__ import annotations

import uuid

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from medimeet.core.models import TimeStampedModel

OVERALL = "overall"


class RatingCategory(models.Model):
    """A score patients give besides "overall" (punctuality, bedside manner, ...). Staff add,
    rename, reorder or retire categories in the admin; retired ones keep their old scores."""

    code = models.SlugField(max_length=40, unique=True)
    name = models.CharField(max_length=80)
    question = models.CharField(max_length=200, blank=True, help_text=_("Shown on the review form, e.g. 'Did the consultation start on time?'"))
    position = models.PositiveSmallIntegerField(default=0)
    is_active = models.BooleanField(default=True)

    class Meta:
        ordering = ["position", "pk"]
        verbose_name_plural = _("rating categories")

    def __str__(self) -> str:
        return self.name


class ReviewQuerySet(models.QuerySet):
    def published(self) -> ReviewQuerySet:
        return self.filter(status=Review.Status.PUBLISHED)


class Review(TimeStampedModel):
    class Status(models.TextChoices):
        HELD = "held", _("Held for moderation")
        PUBLISHED = "published", _("Published")
        REJECTED = "rejected", _("Rejected")

    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    # One review per appointment: the database's word on "once per completed consultation".
    appointment = models.OneToOneField("appointments.Appointment", on_delete=models.PROTECT, related_name="review")
    doctor = models.ForeignKey("doctors.DoctorProfile", on_delete=models.PROTECT, related_name="reviews")
    author = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="reviews")
    overall = models.PositiveSmallIntegerField()
    text = models.TextField()
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.HELD)
    moderation_reason = models.TextField(blank=True, help_text=_("Why the review is held or was rejected; shown to the author."))
    screening = models.JSONField(default=list, blank=True, help_text=_("Rules the automated filter matched (codes)."))
    published_at = models.DateTimeField(null=True, blank=True)
    edited_at = models.DateTimeField(null=True, blank=True)
    version = models.PositiveSmallIntegerField(default=1)
    helpful_count = models.PositiveIntegerField(default=0)
    open_flag_count = models.PositiveIntegerField(default=0)
    reply_text = models.TextField(blank=True)
    replied_at = models.DateTimeField(null=True, blank=True)

    objects = ReviewQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at", "-pk"]
        indexes = [
            models.Index(fields=["doctor", "status", "-created_at"], name="review_doctor_recent_idx"),
            models.Index(fields=["doctor", "status", "-helpful_count", "-created_at"], name="review_doctor_helpful_idx"),
            models.Index(fields=["doctor", "status", "overall"], name="review_doctor_overall_idx"),
            models.Index(fields=["status", "created_at"], name="review_status_created_idx"),
            models.Index(fields=["author", "status"], name="review_author_status_idx"),
        ]
        constraints = [
            models.CheckConstraint(condition=Q(overall__gte=1, overall__lte=5), name="review_overall_1_to_5"),
            models.CheckConstraint(condition=~Q(status="published") | Q(published_at__isnull=False), name="review_published_has_time"),
            models.CheckConstraint(condition=Q(reply_text="", replied_at__isnull=True) | (~Q(reply_text="") & Q(replied_at__isnull=False)), name="review_reply_has_time"),
        ]

    def __str__(self) -> str:
        return f"{self.overall}★ for {self.doctor_id} ({self.status})"

    @property
    def author_display(self) -> str:
        """"Asha V.": the first name and an initial, never the full name or email."""
        first = (self.author.first_name or "").strip() or "Patient"
        last = (self.author.last_name or "").strip()
        return f"{first} {last[:1]}." if last else first

    def editable_until(self):
        from datetime import timedelta

        return self.created_at + timedelta(days=settings.REVIEWS_EDIT_WINDOW_DAYS)

    def can_edit(self) -> bool:
        return self.status != self.Status.REJECTED and timezone.now() <= self.editable_until()

    def can_appeal(self) -> bool:
        return self.status == self.Status.REJECTED and not hasattr(self, "appeal")


class ReviewScore(models.Model):
    review = models.ForeignKey(Review, on_delete=models.CASCADE, related_name="scores")
    category = models.ForeignKey(RatingCategory, on_delete=models.PROTECT, related_name="scores")
    score = models.PositiveSmallIntegerField()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["review", "category"], name="review_score_once_per_category"),
            models.CheckConstraint(condition=Q(score__gte=1, score__lte=5), name="review_score_1_to_5"),
        ]

    def __str__(self) -> str:
        return f"{self.category_id}: {self.score}"


class ReviewVersion(models.Model):
    """What a review said before an edit or a redaction (the review row holds the current one)."""

    review = models.ForeignKey(Review, on_delete=models.CASCADE, related_name="versions")
    number = models.PositiveSmallIntegerField()
    overall = models.PositiveSmallIntegerField()
    text = models.TextField()
    scores = models.JSONField(default=dict)
    replaced_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+", help_text=_("The author (edit) or staff (redaction)."))
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["review", "number"]
        constraints = [models.UniqueConstraint(fields=["review", "number"], name="review_version_unique_number")]

    def __str__(self) -> str:
        return f"Version {self.number} of review {self.review_id}"


class ReviewPhoto(models.Model):
    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    review = models.ForeignKey(Review, on_delete=models.CASCADE, related_name="photos")
    image = models.ImageField(upload_to="review-photos/%Y/%m/")
    width = models.PositiveIntegerField()
    height = models.PositiveIntegerField()
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["pk"]

    def __str__(self) -> str:
        return f"Photo {self.public_id}"


class ReviewFlag(models.Model):
    """Someone's report of a review. Only staff ever see who reported it."""

    class Reason(models.TextChoices):
        ABUSIVE = "abusive", _("Abusive or offensive")
        PERSONAL_DATA = "personal_data", _("Contains personal information")
        SPAM = "spam", _("Spam or advertising")
        FALSE = "false", _("False or misleading")
        OTHER = "other", _("Something else")

    review = models.ForeignKey(Review, on_delete=models.CASCADE, related_name="flags")
    reporter = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    reason = models.CharField(max_length=20, choices=Reason.choices)
    note = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    resolved_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["created_at", "pk"]
        indexes = [models.Index(fields=["review", "resolved_at"], name="review_flag_open_idx")]
        constraints = [models.UniqueConstraint(fields=["review", "reporter"], name="review_flag_once_per_reporter")]

    def __str__(self) -> str:
        return f"Flag on review {self.review_id}: {self.reason}"


class HelpfulVote(models.Model):
    review = models.ForeignKey(Review, on_delete=models.CASCADE, related_name="helpful_votes")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["review", "user"], name="helpful_vote_once_per_user")]

    def __str__(self) -> str:
        return f"{self.user_id} found {self.review_id} helpful"


class ReviewAppeal(models.Model):
    """The author's one appeal against a rejection (one-to-one: a second is impossible)."""

    class Status(models.TextChoices):
        OPEN = "open", _("Open")
        UPHELD = "upheld", _("Upheld (review published)")
        DENIED = "denied", _("Denied")

    review = models.OneToOneField(Review, on_delete=models.CASCADE, related_name="appeal")
    statement = models.TextField()
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.OPEN, db_index=True)
    decided_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    decided_at = models.DateTimeField(null=True, blank=True)
    decision_reason = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["created_at", "pk"]
        constraints = [
            models.CheckConstraint(condition=Q(status="open", decided_at__isnull=True) | (~Q(status="open") & Q(decided_at__isnull=False)), name="appeal_decided_has_time"),
        ]

    def __str__(self) -> str:
        return f"Appeal on review {self.review_id} ({self.status})"


class ModerationDecision(models.Model):
    """Every moderation decision, automated or by staff, in order: the review's history."""

    class Action(models.TextChoices):
        AUTO_APPROVE = "auto_approve", _("Approved by the filter")
        AUTO_HOLD = "auto_hold", _("Held by the filter")
        AUTO_REJECT = "auto_reject", _("Rejected by the filter")
        APPROVE = "approve", _("Approved")
        REJECT = "reject", _("Rejected")
        REDACT = "redact", _("Edited / redacted")
        APPEAL_UPHELD = "appeal_upheld", _("Appeal upheld")
        APPEAL_DENIED = "appeal_denied", _("Appeal denied")

    review = models.ForeignKey(Review, on_delete=models.CASCADE, related_name="decisions")
    action = models.CharField(max_length=20, choices=Action.choices)
    by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+", help_text=_("Empty: the automated filter."))
    reason = models.TextField(blank=True)
    from_status = models.CharField(max_length=10)
    to_status = models.CharField(max_length=10)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["created_at", "pk"]

    def __str__(self) -> str:
        return f"{self.get_action_display()} ({self.from_status} → {self.to_status})"


class DoctorRating(models.Model):
    """A doctor's computed rating (docs/ratings.md). ``DoctorProfile.rating_average`` and
    ``rating_count`` are copied from here for search; this row adds what the profile shows."""

    doctor = models.OneToOneField("doctors.DoctorProfile", on_delete=models.CASCADE, related_name="rating")
    average = models.DecimalField(max_digits=4, decimal_places=3, default=0, help_text=_("Shrunk, weighted average; 0 with no reviews."))
    count = models.PositiveIntegerField(default=0)
    weighted_sum = models.FloatField(default=0)
    weight_total = models.FloatField(default=0)
    prior_mean = models.FloatField(default=0)
    categories = models.JSONField(default=dict, help_text=_('{"punctuality": {"average": 4.5, "count": 12}, ...}'))
    histogram = models.JSONField(default=dict, help_text=_('{"1": 0, ..., "5": 12}: published reviews by overall stars.'))
    reduced_weight_count = models.PositiveIntegerField(default=0, help_text=_("Reviews counted with reduced weight (outliers, suspect accounts)."))
    computed_at = models.DateTimeField(default=timezone.now)

    def __str__(self) -> str:
        return f"{self.average} ({self.count})"


class PlatformRating(models.Model):
    """The platform's mean rating: the prior every doctor is shrunk towards. One row (pk=1),
    re-estimated by the full recomputation (nightly), so all doctors share the same prior."""

    mean = models.FloatField()
    review_count = models.PositiveIntegerField(default=0)
    computed_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [models.CheckConstraint(condition=Q(pk=1), name="platform_rating_single_row")]

    def __str__(self) -> str:
        return f"Platform mean {self.mean:.3f} ({self.review_count})"
