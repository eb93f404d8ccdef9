"""The rating formula on fixed data (expected values worked out by hand, as in
docs/ratings.md), its bounded sensitivity (hypothesis), and incremental = full recomputation."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
from django.core.management import call_command
from hypothesis import given, settings
from hypothesis import strategies as st

from accounts.tests.factories import UserFactory
from doctors import selectors as doctor_selectors
from reviews import services
from reviews.models import DoctorRating, PlatformRating
from reviews.ratings import RatedReview, RatingParameters, change_bound, rating_compute

from .conftest import GOOD_TEXT, consultation

PARAMS = RatingParameters(prior_mean=4.0, prior_weight=5.0, half_life_days=365.0)


def fives_and_fours(fives: int, fours: int) -> list[RatedReview]:
    return [RatedReview(overall=5, age_days=0)] * fives + [RatedReview(overall=4, age_days=0)] * fours


def test_two_five_star_reviews_are_shrunk_towards_the_platform_mean():
    # (5·4.0 + 5 + 5) / (5 + 2) = 30 / 7 = 4.285714…
    assert rating_compute(fives_and_fours(2, 0), PARAMS).average == Decimal("4.286")


def test_two_hundred_reviews_averaging_4_8_outrank_two_fives():
    # 160 fives and 40 fours: (20 + 800 + 160) / 205 = 4.780487…
    many = rating_compute(fives_and_fours(160, 40), PARAMS)
    assert many.average == Decimal("4.780")
    assert many.average > rating_compute(fives_and_fours(2, 0), PARAMS).average


def test_a_year_old_review_weighs_half():
    # r = 0.5 for the 5 (365 days, one half-life), 1 for the 3: (20 + 2.5 + 3) / (5 + 1.5) = 3.923076…
    result = rating_compute([RatedReview(overall=5, age_days=365), RatedReview(overall=3, age_days=0)], PARAMS)
    assert (result.average, result.weight_total, result.reduced_weight_count) == (Decimal("3.923"), 1.5, 0)


def test_a_rating_far_outside_the_distribution_gets_reduced_weight_not_deletion():
    # M0 = (20 + 45 + 1) / 15 = 4.4; the 1 is 3.4 away: o = 1 − (3.4 − 2) · 0.375 = 0.475.
    # R = (20 + 45 + 0.475) / (5 + 9 + 0.475) = 65.475 / 14.475 = 4.523316…
    result = rating_compute(fives_and_fours(9, 0) + [RatedReview(overall=1, age_days=0)], PARAMS)
    assert (result.average, result.count, result.reduced_weight_count) == (Decimal("4.523"), 10, 1)
    assert result.histogram == {"1": 1, "2": 0, "3": 0, "4": 0, "5": 9}


def test_a_suspect_accounts_review_counts_half():
    # w = 0.5 for the suspect 5, 1 for the 4: (20 + 2.5 + 4) / (5 + 1.5) = 4.076923…
    result = rating_compute([RatedReview(overall=5, age_days=0, suspect_author=True), RatedReview(overall=4, age_days=0)], PARAMS)
    assert (result.average, result.reduced_weight_count) == (Decimal("4.077"), 1)


def test_category_averages_use_the_same_weights():
    result = rating_compute(
        [RatedReview(overall=5, age_days=365, scores={"punctuality": 2}), RatedReview(overall=4, age_days=0, scores={"punctuality": 5, "value": 4})], PARAMS
    )
    # punctuality: (0.5·2 + 1·5) / 1.5 = 4.0
    assert result.categories == {"punctuality": {"average": 4.0, "count": 2}, "value": {"average": 4.0, "count": 1}}


def test_no_reviews_means_no_rating():
    result = rating_compute([], PARAMS)
    assert (result.average, result.count) == (Decimal("0.000"), 0)


reviews_strategy = st.lists(
    st.builds(RatedReview, overall=st.integers(1, 5), age_days=st.integers(0, 2000), suspect_author=st.booleans()), max_size=80
)


@settings(max_examples=200, deadline=None)
@given(reviews=reviews_strategy, added=st.builds(RatedReview, overall=st.integers(1, 5), age_days=st.integers(0, 2000), suspect_author=st.booleans()), prior=st.floats(1, 5))
def test_one_more_review_moves_the_displayed_rating_by_a_bounded_amount_that_shrinks_with_more_reviews(reviews, added, prior):
    params = RatingParameters(prior_mean=prior)
    before = rating_compute(reviews, params).average if reviews else Decimal(str(round(prior, 3)))
    after = rating_compute([*reviews, added], params).average

    assert abs(float(after - before)) <= change_bound(reviews, params)
    assert change_bound([*reviews, added], params) < change_bound(reviews, params)


def test_the_largest_move_of_one_review_shrinks_as_reviews_accumulate():
    moves = []
    for count in (1, 10, 100, 1000):
        reviews = [RatedReview(overall=4, age_days=0)] * count
        moves.append(abs(rating_compute([*reviews, RatedReview(overall=1, age_days=0)], PARAMS).exact - rating_compute(reviews, PARAMS).exact))
    assert moves == sorted(moves, reverse=True) and len(set(moves)) == 4
    assert moves[-1] < 0.002  # 0.625 · 3 / 1005.6: the 1-star counts 0.625 (3 away from 4)


# --- Stored ratings ------------------------------------------------------------------------------


def snapshot() -> list[tuple]:
    return sorted(
        (r.doctor_id, r.average, r.count, round(r.weighted_sum, 9), round(r.weight_total, 9), r.categories, r.histogram, r.reduced_weight_count, r.doctor.rating_average, r.doctor.rating_count)
        for r in DoctorRating.objects.select_related("doctor")
    )


@pytest.mark.django_db
def test_incremental_recomputation_equals_the_full_command(cast, django_capture_on_commit_callbacks, frozen_time):
    doctor, other = cast["doctor"], cast["other_doctor"]
    patients = [cast["patient"], cast["other_patient"], *[UserFactory() for _ in range(4)]]
    reviews = []
    with django_capture_on_commit_callbacks(execute=True):
        for index, (who, target, overall) in enumerate(zip(patients, [doctor, doctor, doctor, other, other, doctor], [5, 4, 1, 3, 5, 5], strict=True)):
            appointment = cast["visit"] if index == 0 else consultation(doctor=target, patient=who, days_ago=2)
            reviews.append(services.review_create(appointment=appointment, author=who, scores={"overall": overall, "bedside_manner": overall}, text=GOOD_TEXT))
            frozen_time.shift(timedelta(days=3))
    with django_capture_on_commit_callbacks(execute=True):
        services.review_moderate(review=reviews[1], by=cast["staff"], action="reject", reason="Off topic.")
    with django_capture_on_commit_callbacks(execute=True):
        services.review_edit(review=reviews[0], author=cast["patient"], scores={"overall": 4}, text=GOOD_TEXT + " Edited.")
    with django_capture_on_commit_callbacks(execute=True):
        services.review_helpful_set(review=reviews[2], user=cast["staff"], helpful=True)
    incremental = snapshot()
    assert [row[2] for row in incremental] == [3, 2]  # doctor: 3 published (one rejected); other doctor: 2

    call_command("reviews_recompute_ratings", "--keep-prior")

    assert snapshot() == incremental


@pytest.mark.django_db
def test_the_nightly_run_re_estimates_the_prior_for_every_doctor(cast, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        services.review_create(appointment=cast["visit"], author=cast["patient"], scores={"overall": 5}, text=GOOD_TEXT)
    assert PlatformRating.objects.get().mean == 5.0  # bootstrapped from the first review
    appointment = consultation(doctor=cast["other_doctor"], patient=cast["other_patient"])
    with django_capture_on_commit_callbacks(execute=True):
        services.review_create(appointment=appointment, author=cast["other_patient"], scores={"overall": 2}, text=GOOD_TEXT)
    assert PlatformRating.objects.get().mean == 5.0  # the day's prior stays

    call_command("reviews_recompute_ratings")

    # Prior (5 + 2) / 2 = 3.5; doctor: (5·3.5 + 5) / 6 = 3.75; other doctor: (17.5 + 2) / 6 = 3.25.
    assert PlatformRating.objects.get().mean == 3.5
    assert sorted(DoctorRating.objects.values_list("average", flat=True)) == [Decimal("3.250"), Decimal("3.750")]


@pytest.mark.django_db
def test_search_sorts_and_filters_on_the_stored_rating(cast, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        services.review_create(appointment=cast["visit"], author=cast["patient"], scores={"overall": 5}, text=GOOD_TEXT)
    cast["other_doctor"].primary_specialization = cast["doctor"].primary_specialization
    cast["other_doctor"].save()

    ordered = list(doctor_selectors.doctor_search(doctor_selectors.DoctorSearch(sort="rating")).values_list("slug", flat=True))
    filtered = list(doctor_selectors.doctor_search(doctor_selectors.DoctorSearch(rating_min=Decimal("4.5"))).values_list("slug", flat=True))

    assert ordered[0] == "dr-priya-raman"
    assert filtered == ["dr-priya-raman"]
