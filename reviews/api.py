"""The reviews API (/api/v1/reviews/…): thin views over services and selectors with explicit
input and output serializers. No answer names who reported a review."""

from __future__ import annotations

from django.urls import reverse
from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.parsers import FormParser, JSONParser, MultiPartParser
from rest_framework.permissions import AllowAny
from rest_framework.response import Response
from rest_framework.views import APIView

from appointments.models import Appointment
from doctors.models import DoctorProfile
from medimeet.core.api import StandardPagination, error_responses, valid_input
from medimeet.core.errors import ApplicationError

from . import selectors, services
from .models import RatingCategory, Review, ReviewFlag

# --- Output ------------------------------------------------------------------------------------


class PhotoOutput(serializers.Serializer):
    id = serializers.UUIDField()
    url = serializers.CharField()
    width = serializers.IntegerField()
    height = serializers.IntegerField()


class ReplyOutput(serializers.Serializer):
    text = serializers.CharField()
    replied_at = serializers.DateTimeField()


class ReviewOutput(serializers.Serializer):
    id = serializers.UUIDField()
    doctor = serializers.SlugField(help_text="The doctor's slug.")
    author = serializers.CharField(help_text='First name and initial, e.g. "Asha V.".')
    verified_consultation = serializers.BooleanField(help_text="Always true: every review comes from a completed consultation.")
    consultation_date = serializers.DateField()
    overall = serializers.IntegerField(min_value=1, max_value=5)
    scores = serializers.DictField(child=serializers.IntegerField(), help_text='{"overall": 5, "punctuality": 4, ...}')
    text = serializers.CharField()
    photos = PhotoOutput(many=True)
    helpful_count = serializers.IntegerField()
    reply = ReplyOutput(allow_null=True)
    created_at = serializers.DateTimeField()
    edited_at = serializers.DateTimeField(allow_null=True)


class AppealOutput(serializers.Serializer):
    status = serializers.CharField()
    decision_reason = serializers.CharField()


class OwnReviewOutput(ReviewOutput):
    """The author's view: the moderation state and what they may still do."""

    status = serializers.ChoiceField(choices=Review.Status.choices)
    moderation_reason = serializers.CharField()
    can_edit = serializers.BooleanField()
    can_appeal = serializers.BooleanField()
    appeal = AppealOutput(allow_null=True)


def _review_data(review: Review, request, *, own: bool = False) -> dict:
    scores = {"overall": review.overall, **{score.category.code: score.score for score in review.scores.all()}}
    data = {
        "id": review.public_id,
        "doctor": getattr(review, "doctor_slug", None) or review.doctor.slug,
        "author": review.author_display,
        "verified_consultation": True,
        "consultation_date": review.appointment.start.date(),
        "overall": review.overall,
        "scores": scores,
        "text": review.text,
        "photos": [{"id": photo.public_id, "url": request.build_absolute_uri(reverse("reviews:photo", args=[photo.public_id])), "width": photo.width, "height": photo.height} for photo in review.photos.all()],
        "helpful_count": review.helpful_count,
        "reply": {"text": review.reply_text, "replied_at": review.replied_at} if review.reply_text else None,
        "created_at": review.created_at,
        "edited_at": review.edited_at,
    }
    if not own:
        return ReviewOutput(data).data
    appeal = review.appeal if hasattr(review, "appeal") else None
    data.update(
        status=review.status, moderation_reason=review.moderation_reason, can_edit=review.can_edit(), can_appeal=review.can_appeal(),
        appeal={"status": appeal.status, "decision_reason": appeal.decision_reason} if appeal else None,
    )
    return OwnReviewOutput(data).data


class BarOutput(serializers.Serializer):
    label = serializers.CharField()
    value = serializers.FloatField()
    count = serializers.IntegerField()
    percent = serializers.IntegerField()


class RatingOutput(serializers.Serializer):
    average = serializers.FloatField(help_text="The shrunk, weighted average (docs/ratings.md); 0 before the first review.")
    count = serializers.IntegerField()
    categories = BarOutput(many=True)
    histogram = BarOutput(many=True, help_text="Five stars first; value = number of reviews.")


class RatingCategoryOutput(serializers.Serializer):
    code = serializers.SlugField()
    name = serializers.CharField()
    question = serializers.CharField()


# --- Input -------------------------------------------------------------------------------------


class ReviewListQuery(serializers.Serializer):
    doctor = serializers.SlugField(help_text="The doctor's slug.")
    sort = serializers.ChoiceField(choices=["recent", "helpful"], default="recent")
    stars = serializers.IntegerField(min_value=1, max_value=5, required=False, allow_null=True, default=None)
    with_photos = serializers.BooleanField(default=False)
    with_reply = serializers.BooleanField(required=False, allow_null=True, default=None)


class DoctorQuery(serializers.Serializer):
    doctor = serializers.SlugField()


class ScoresField(serializers.DictField):
    child = serializers.IntegerField()


class ReviewCreateInput(serializers.Serializer):
    appointment = serializers.UUIDField()
    scores = ScoresField(help_text='{"overall": 5, "punctuality": 4, ...}; in multipart: scores.overall=5, scores.punctuality=4.')
    text = serializers.CharField(max_length=services.TEXT_MAX, trim_whitespace=True)
    photos = serializers.ListField(child=serializers.FileField(), required=False, default=list, help_text="JPEG or PNG; re-encoded without EXIF.")


class ReviewEditInput(serializers.Serializer):
    scores = ScoresField()
    text = serializers.CharField(max_length=services.TEXT_MAX, trim_whitespace=True)


class FlagInput(serializers.Serializer):
    reason = serializers.ChoiceField(choices=ReviewFlag.Reason.choices)
    note = serializers.CharField(max_length=services.STATEMENT_MAX, required=False, allow_blank=True, default="")


class AppealInput(serializers.Serializer):
    statement = serializers.CharField(max_length=services.STATEMENT_MAX)


class ReplyInput(serializers.Serializer):
    text = serializers.CharField(max_length=services.TEXT_MAX)


class HelpfulOutput(serializers.Serializer):
    helpful_count = serializers.IntegerField()
    helpful = serializers.BooleanField()


# --- Views -------------------------------------------------------------------------------------


def _listed_doctor(slug: str) -> DoctorProfile:
    doctor = DoctorProfile.objects.listed().filter(slug=slug).first()
    if doctor is None:
        raise ApplicationError("DOC_001")
    return doctor


def _visible_review(request, review_id) -> Review:
    """A published review, or any review of the author's own; REV_007 otherwise."""
    review = Review.objects.select_related("author", "appointment", "doctor__user").filter(public_id=review_id).first()
    if review is None or (review.status != Review.Status.PUBLISHED and review.author_id != getattr(request.user, "pk", None)):
        raise ApplicationError("REV_007")
    return review


class ReviewsView(APIView):
    pagination_class = StandardPagination  # what drf-spectacular documents the 200 as: one page
    parser_classes = [JSONParser, MultiPartParser, FormParser]

    def get_permissions(self):
        return [AllowAny()] if self.request.method == "GET" else super().get_permissions()

    @extend_schema(tags=["reviews"], parameters=[ReviewListQuery], responses={200: ReviewOutput(many=True), **error_responses(400, 404)}, auth=[])
    def get(self, request):
        params = valid_input(ReviewListQuery, request.query_params)
        doctor = _listed_doctor(params["doctor"])
        queryset = selectors.doctor_reviews(doctor_id=doctor.pk, sort=params["sort"], stars=params["stars"], with_photos=params["with_photos"], with_reply=params["with_reply"])
        paginator = self.pagination_class()
        page = paginator.paginate_queryset(queryset, request, view=self)
        for review in page:
            review.doctor_slug = doctor.slug  # one doctor: no join per review
        return paginator.get_paginated_response([_review_data(review, request) for review in page])

    @extend_schema(tags=["reviews"], request={"application/json": ReviewCreateInput, "multipart/form-data": ReviewCreateInput}, responses={201: OwnReviewOutput, **error_responses(400, 401, 404, 409)})
    def post(self, request):
        data = valid_input(ReviewCreateInput, request.data)
        appointment = Appointment.objects.filter(public_id=data["appointment"], patient=request.user).first()
        if appointment is None:
            raise ApplicationError("REV_001")
        review = services.review_create(appointment=appointment, author=request.user, scores=data["scores"], text=data["text"], photos=data["photos"], request=request._request)
        return Response(_review_data(review, request, own=True), status=status.HTTP_201_CREATED)


class ReviewDetailView(APIView):
    def get_permissions(self):
        return [AllowAny()] if self.request.method == "GET" else super().get_permissions()

    @extend_schema(tags=["reviews"], responses={200: ReviewOutput, **error_responses(404)}, description="A published review; the author also sees their own held or rejected review with its moderation state (OwnReviewOutput).")
    def get(self, request, review_id):
        review = _visible_review(request, review_id)
        return Response(_review_data(review, request, own=review.author_id == getattr(request.user, "pk", None)))

    @extend_schema(tags=["reviews"], request=ReviewEditInput, responses={200: OwnReviewOutput, **error_responses(400, 401, 404, 409)})
    def patch(self, request, review_id):
        review = _visible_review(request, review_id)
        data = valid_input(ReviewEditInput, request.data)
        review = services.review_edit(review=review, author=request.user, scores=data["scores"], text=data["text"], request=request._request)
        return Response(_review_data(review, request, own=True))


class ReviewFlagView(APIView):
    @extend_schema(tags=["reviews"], request=FlagInput, responses={202: None, **error_responses(400, 401, 404, 409)}, description="Report a review to the moderators. Nobody but staff learns who reported it.")
    def post(self, request, review_id):
        review = _visible_review(request, review_id)
        data = valid_input(FlagInput, request.data)
        services.review_flag(review=review, reporter=request.user, reason=data["reason"], note=data["note"], request=request._request)
        return Response(status=status.HTTP_202_ACCEPTED)


class ReviewAppealView(APIView):
    @extend_schema(tags=["reviews"], request=AppealInput, responses={201: OwnReviewOutput, **error_responses(400, 401, 404, 409)})
    def post(self, request, review_id):
        review = _visible_review(request, review_id)
        data = valid_input(AppealInput, request.data)
        services.review_appeal(review=review, author=request.user, statement=data["statement"], request=request._request)
        review = Review.objects.select_related("appeal", "author", "appointment", "doctor").get(pk=review.pk)
        return Response(_review_data(review, request, own=True), status=status.HTTP_201_CREATED)


class ReviewReplyView(APIView):
    @extend_schema(tags=["reviews"], request=ReplyInput, responses={200: ReviewOutput, **error_responses(400, 401, 403, 404)})
    def put(self, request, review_id):
        review = _visible_review(request, review_id)
        data = valid_input(ReplyInput, request.data)
        review = services.review_reply(review=review, by=request.user, text=data["text"], request=request._request)
        return Response(_review_data(review, request))


class ReviewHelpfulView(APIView):
    @extend_schema(tags=["reviews"], request=None, responses={200: HelpfulOutput, **error_responses(401, 404, 409)})
    def post(self, request, review_id):
        count = services.review_helpful_set(review=_visible_review(request, review_id), user=request.user, helpful=True)
        return Response(HelpfulOutput({"helpful_count": count, "helpful": True}).data)

    @extend_schema(tags=["reviews"], request=None, responses={200: HelpfulOutput, **error_responses(401, 404, 409)})
    def delete(self, request, review_id):
        count = services.review_helpful_set(review=_visible_review(request, review_id), user=request.user, helpful=False)
        return Response(HelpfulOutput({"helpful_count": count, "helpful": False}).data)


class RatingView(APIView):
    permission_classes = [AllowAny]

    @extend_schema(tags=["reviews"], parameters=[DoctorQuery], responses={200: RatingOutput, **error_responses(400, 404)}, auth=[])
    def get(self, request):
        doctor = _listed_doctor(valid_input(DoctorQuery, request.query_params)["doctor"])
        summary = selectors.rating_summary(doctor=doctor)
        if summary is None:
            return Response(RatingOutput({"average": 0, "count": 0, "categories": [], "histogram": []}).data)
        return Response(RatingOutput(summary).data)


class CategoriesView(APIView):
    permission_classes = [AllowAny]

    @extend_schema(tags=["reviews"], responses={200: RatingCategoryOutput(many=True)}, auth=[])
    def get(self, request):
        return Response(RatingCategoryOutput(RatingCategory.objects.filter(is_active=True), many=True).data)
