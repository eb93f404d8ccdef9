"""Staff moderation: the queue (held or reported reviews) with approve / reject / redact
actions that each need a reason, the appeals queue, rating categories, and the decision log.
Reviews are never deleted here: rejecting removes one from the public."""

from __future__ import annotations

from django.contrib import admin, messages
from django.urls import reverse
from django.utils.html import format_html
from django.utils.translation import gettext_lazy as _

from medimeet.core.admin import ReadOnlyAdmin, ReadOnlyInline, action_with_reason

from . import selectors, services
from .forms import ModerationForm
from .models import (
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


class FlagInline(ReadOnlyInline):
    model = ReviewFlag
    fields = readonly_fields = ("created_at", "reason", "note", "reporter", "resolved_at")


class ScoreInline(ReadOnlyInline):
    model = ReviewScore
    fields = readonly_fields = ("category", "score")


class VersionInline(ReadOnlyInline):
    model = ReviewVersion
    fields = readonly_fields = ("number", "overall", "text", "scores", "replaced_by", "created_at")


class PhotoInline(ReadOnlyInline):
    """Photos as published (re-encoded without EXIF when uploaded)."""

    model = ReviewPhoto
    fields = readonly_fields = ("thumbnail", "width", "height", "created_at")

    @admin.display(description=_("Photo"))
    def thumbnail(self, photo: ReviewPhoto):
        return format_html('<img src="{}" alt="" style="max-height:6rem">', reverse("reviews:photo", args=[photo.public_id]))


class DecisionInline(ReadOnlyInline):
    model = ModerationDecision
    fields = readonly_fields = ("created_at", "action", "by", "from_status", "to_status", "reason")


class ModerationQueue(Review):
    class Meta:
        proxy = True
        verbose_name = _("review to moderate")
        verbose_name_plural = _("moderation queue")


class ReviewAdminBase(admin.ModelAdmin):
    list_display = ("created_at", "doctor", "overall", "status", "open_flag_count", "screening", "short_text")
    list_filter = ("status", "overall")
    date_hierarchy = "created_at"
    search_fields = ("doctor__slug", "author__email", "text")
    list_select_related = ("doctor__user",)
    readonly_fields = ("public_id", "appointment", "doctor", "author", "overall", "text", "status", "moderation_reason", "screening", "published_at", "edited_at", "version", "helpful_count", "open_flag_count", "reply_text", "replied_at", "created_at")
    inlines = [ScoreInline, PhotoInline, FlagInline, DecisionInline, VersionInline]
    actions = ["approve", "reject", "redact"]

    def has_add_permission(self, request):
        return False

    def has_delete_permission(self, request, obj=None):
        return False  # a review leaves the public by rejection, never by deletion

    @admin.display(description=_("Text"))
    def short_text(self, review: Review) -> str:
        return review.text[:80] + ("…" if len(review.text) > 80 else "")

    def _moderate(self, request, queryset, action: str, title: str):
        if action == "redact" and queryset.count() != 1:
            self.message_user(request, _("Redact one review at a time."), messages.ERROR)
            return None
        form = ModerationForm(request.POST if "apply" in request.POST else None, initial={"text": queryset.first().text} if action == "redact" else None)
        return action_with_reason(
            self, request, queryset, form, title=title,
            lines=lambda: [f"{review.overall}★ {review.doctor} — {review.get_status_display()} — {review.text[:120]}" for review in queryset.select_related("doctor__user")],
            apply=lambda review, data: services.review_moderate(review=review, by=request.user, action=action, reason=data["reason"], text=data["text"], request=request),
            label=lambda review: review.public_id,
            done=f"{action} done",
        )  # fmt: skip

    @admin.action(description=_("Approve (publish, close reports)"), permissions=["change"])
    def approve(self, request, queryset):
        return self._moderate(request, queryset, "approve", _("Approve reviews"))

    @admin.action(description=_("Reject with a reason"), permissions=["change"])
    def reject(self, request, queryset):
        return self._moderate(request, queryset, "reject", _("Reject reviews"))

    @admin.action(description=_("Edit / redact the text"), permissions=["change"])
    def redact(self, request, queryset):
        return self._moderate(request, queryset, "redact", _("Redact review"))


@admin.register(Review)
class ReviewAdmin(ReviewAdminBase):
    pass


@admin.register(ModerationQueue)
class ModerationQueueAdmin(ReviewAdminBase):
    """Held by the filter or reported: oldest first."""

    def get_queryset(self, request):
        return selectors.moderation_queue().select_related("doctor__user")


@admin.register(ReviewAppeal)
class ReviewAppealAdmin(admin.ModelAdmin):
    list_display = ("created_at", "review", "status", "decided_by", "decided_at")
    list_filter = ("status",)
    search_fields = ("review__public_id", "review__author__email")
    date_hierarchy = "created_at"
    readonly_fields = ("review", "statement", "status", "decided_by", "decided_at", "decision_reason", "created_at", "rejection_reason", "review_text")
    actions = ["uphold", "deny"]

    def has_add_permission(self, request):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    @admin.display(description=_("Why it was rejected"))
    def rejection_reason(self, appeal: ReviewAppeal) -> str:
        return appeal.review.moderation_reason

    @admin.display(description=_("Review text"))
    def review_text(self, appeal: ReviewAppeal) -> str:
        return appeal.review.text

    def _decide(self, request, queryset, uphold: bool):
        return action_with_reason(
            self, request, queryset, ModerationForm(request.POST if "apply" in request.POST else None),
            title=_("Uphold appeals") if uphold else _("Deny appeals"),
            lines=lambda: [f"{appeal.review.text[:100]} — appeal: {appeal.statement[:100]}" for appeal in queryset.select_related("review")],
            apply=lambda appeal, data: services.appeal_decide(appeal=appeal, by=request.user, uphold=uphold, reason=data["reason"], request=request),
            label=lambda appeal: f"Appeal {appeal.pk}",
            done="upheld" if uphold else "denied",
        )  # fmt: skip

    @admin.action(description=_("Uphold (publish the review)"), permissions=["change"])
    def uphold(self, request, queryset):
        return self._decide(request, queryset, True)

    @admin.action(description=_("Deny (the review stays rejected)"), permissions=["change"])
    def deny(self, request, queryset):
        return self._decide(request, queryset, False)


@admin.register(RatingCategory)
class RatingCategoryAdmin(admin.ModelAdmin):
    list_display = ("name", "code", "position", "is_active")
    list_editable = ("position", "is_active")

    def has_delete_permission(self, request, obj=None):
        return False  # retire a category (inactive); its scores stay

    def get_readonly_fields(self, request, obj=None):
        return ("code",) if obj else ()


@admin.register(ModerationDecision)
class ModerationDecisionAdmin(admin.ModelAdmin):
    list_display = ("created_at", "review", "action", "by", "from_status", "to_status")
    list_filter = ("action",)
    search_fields = ("review__public_id", "by__email")
    date_hierarchy = "created_at"

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(HelpfulVote)
class HelpfulVoteAdmin(ReadOnlyAdmin):
    list_display = ("created_at", "review", "user")
    search_fields = ("user__email", "review__public_id")
    date_hierarchy = "created_at"
    list_select_related = ("review", "user")


@admin.register(DoctorRating)
class DoctorRatingAdmin(ReadOnlyAdmin):
    """Computed by the rating service (docs/ratings.md); shown to answer "why this number"."""

    list_display = ("doctor", "average", "count", "reduced_weight_count", "computed_at")
    search_fields = ("doctor__slug", "doctor__user__last_name")
    list_select_related = ("doctor__user",)
    ordering = ("-count",)


@admin.register(PlatformRating)
class PlatformRatingAdmin(ReadOnlyAdmin):
    list_display = ("mean", "review_count", "computed_at")
