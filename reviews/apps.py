from django.apps import AppConfig


class ReviewsConfig(AppConfig):
    """Verified reviews and ratings (Step 8)."""

    name = "reviews"
    verbose_name = "Reviews"
