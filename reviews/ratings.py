"""The rating formula (docs/ratings.md), as a pure function of plain values so that it can be
tested on fixed data and by property-based tests without a database.

    r_i = 0.5 ** (age_days_i / half_life)                      recency weight
    M0  = (C·m + Σ r_i·x_i) / (C + Σ r_i)                      reference: shrunk recency mean
    d_i = |x_i − M0|
    o_i = 1 if d_i ≤ D else max(floor, 1 − (d_i − D)·(1 − floor)/(4 − D))   outlier weight
    a_i = suspect_factor if the author's account is suspect else 1
    w_i = r_i · o_i · a_i
    R   = (C·m + Σ w_i·x_i) / (C + Σ w_i)                      the rating shown and sorted on

``C`` (prior weight) pulls doctors with few reviews towards the platform mean ``m``. Every
weight is bounded below (``floor · suspect_factor · r_i``), and ``o_i`` moves smoothly with
``M0``; so one more review moves ``R`` by at most ``(16·L + 4) / (C + f·Σ r_i)`` (L the
outlier slope, f = floor · suspect_factor; 10 / (C + Σ r_i / 8) by default), a bound that
shrinks as reviews accumulate (reviews/tests/test_ratings.py checks it with hypothesis).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal

THREE_PLACES = Decimal("0.001")
MAX_SPREAD = 4.0  # the farthest a 1–5 score can be from any mean in [1, 5]


@dataclass(frozen=True)
class RatedReview:
    overall: int
    age_days: int
    suspect_author: bool = False
    scores: dict[str, int] = field(default_factory=dict)


@dataclass(frozen=True)
class RatingParameters:
    prior_mean: float
    prior_weight: float = 5.0
    half_life_days: float = 365.0
    outlier_distance: float = 2.0
    outlier_floor: float = 0.25
    suspect_factor: float = 0.5

    @property
    def weight_floor(self) -> float:
        """The smallest share of its recency weight a review keeps (f in the bound)."""
        return self.outlier_floor * self.suspect_factor


@dataclass(frozen=True)
class RatingResult:
    average: Decimal
    exact: float
    count: int
    weighted_sum: float
    weight_total: float
    reduced_weight_count: int
    categories: dict[str, dict]
    histogram: dict[str, int]


def recency_weight(age_days: int, half_life_days: float) -> float:
    return 0.5 ** (max(age_days, 0) / half_life_days)


def outlier_weight(distance: float, params: RatingParameters) -> float:
    if distance <= params.outlier_distance:
        return 1.0
    slope = (1.0 - params.outlier_floor) / (MAX_SPREAD - params.outlier_distance)
    return max(params.outlier_floor, 1.0 - (distance - params.outlier_distance) * slope)


def shrunk_mean(values: Sequence[float], weights: Sequence[float], params: RatingParameters) -> float:
    total = sum(weights)
    return (params.prior_weight * params.prior_mean + sum(w * x for w, x in zip(weights, values, strict=True))) / (params.prior_weight + total)


def rating_compute(reviews: Sequence[RatedReview], params: RatingParameters) -> RatingResult:
    """The rating of one doctor from their published reviews."""
    values = [float(review.overall) for review in reviews]
    recency = [recency_weight(review.age_days, params.half_life_days) for review in reviews]
    reference = shrunk_mean(values, recency, params)
    weights = []
    reduced = 0
    for review, value, r in zip(reviews, values, recency, strict=True):
        o = outlier_weight(abs(value - reference), params)
        a = params.suspect_factor if review.suspect_author else 1.0
        reduced += o < 1.0 or a < 1.0
        weights.append(r * o * a)
    exact = shrunk_mean(values, weights, params)
    categories: dict[str, dict] = {}
    for code in sorted({code for review in reviews for code in review.scores}):
        pairs = [(w, review.scores[code]) for review, w in zip(reviews, weights, strict=True) if code in review.scores]
        total = sum(w for w, _ in pairs)
        categories[code] = {"average": round(sum(w * s for w, s in pairs) / total, 2) if total else 0.0, "count": len(pairs)}
    histogram = {str(stars): 0 for stars in range(1, 6)}
    for review in reviews:
        histogram[str(review.overall)] += 1
    return RatingResult(
        average=Decimal(repr(exact)).quantize(THREE_PLACES, rounding=ROUND_HALF_UP) if reviews else Decimal("0.000"),
        exact=exact,
        count=len(reviews),
        weighted_sum=sum(w * x for w, x in zip(weights, values, strict=True)),
        weight_total=sum(weights),
        reduced_weight_count=reduced,
        categories=categories,
        histogram=histogram,
    )


def change_bound(reviews: Sequence[RatedReview], params: RatingParameters) -> float:
    """How far one more review can move the displayed rating of a doctor with ``reviews``
    (derivation in docs/ratings.md), plus the rounding of the displayed value."""
    effective = sum(recency_weight(review.age_days, params.half_life_days) for review in reviews)
    slope = (1.0 - params.outlier_floor) / (MAX_SPREAD - params.outlier_distance)
    numerator = MAX_SPREAD * MAX_SPREAD * slope + MAX_SPREAD  # 10 with the default parameters
    return numerator / (params.prior_weight + params.weight_floor * effective) + float(THREE_PLACES)
