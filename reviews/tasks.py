"""Celery tasks: thin wrappers over services, idempotent (a rerun computes the same rating)."""

from __future__ import annotations

from celery import shared_task

from . import services


@shared_task(acks_late=True)
def recompute_doctor_rating(doctor_id: int) -> None:
    services.doctor_rating_refresh(doctor_id=doctor_id)


@shared_task
def request_reviews() -> int:
    """Hourly (beat): ask patients for a review after a completed consultation. Idempotent."""
    return services.reviews_request_due()


@shared_task(acks_late=True)
def recompute_all_ratings() -> int:
    return services.ratings_recompute_all(refresh_prior=True)
