from django.urls import path

from . import api, views

page_patterns = [
    path("appointments/<uuid:appointment_id>/review/", views.write, name="write"),
    path("reviews/<uuid:review_id>/appeal/", views.appeal, name="appeal"),
    path("reviews/<uuid:review_id>/flag/", views.flag, name="flag"),
    path("reviews/<uuid:review_id>/helpful/", views.helpful, name="helpful"),
    path("reviews/<uuid:review_id>/reply/", views.reply, name="reply"),
    path("reviews/photos/<uuid:photo_id>.jpg", views.photo, name="photo"),
]

api_patterns = [
    path("reviews/", api.ReviewsView.as_view(), name="reviews"),
    path("reviews/categories/", api.CategoriesView.as_view(), name="review-categories"),
    path("reviews/rating/", api.RatingView.as_view(), name="review-rating"),
    path("reviews/<uuid:review_id>/", api.ReviewDetailView.as_view(), name="review"),
    path("reviews/<uuid:review_id>/flag/", api.ReviewFlagView.as_view(), name="review-flag"),
    path("reviews/<uuid:review_id>/appeal/", api.ReviewAppealView.as_view(), name="review-appeal"),
    path("reviews/<uuid:review_id>/reply/", api.ReviewReplyView.as_view(), name="review-reply"),
    path("reviews/<uuid:review_id>/helpful/", api.ReviewHelpfulView.as_view(), name="review-helpful"),
]
