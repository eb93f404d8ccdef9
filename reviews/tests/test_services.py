"""Submitting, editing, moderating and appealing reviews; eligibility; photos without EXIF."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
from django.core import mail
from PIL import Image

from medimeet.core.errors import ApplicationError
from medimeet.core.models import AuditEvent
from reviews import services
from reviews.models import DoctorRating, ModerationDecision, Review, ReviewAppeal, ReviewFlag, ReviewVersion

from .conftest import GOOD_TEXT, consultation, jpeg_with_exif

pytestmark = pytest.mark.django_db


def create(cast, appointment=None, author=None, text=GOOD_TEXT, scores=None, **kwargs) -> Review:
    return services.review_create(
        appointment=appointment or cast["visit"], author=author or cast["patient"], scores=scores or {"overall": 5, "punctuality": 4}, text=text, **kwargs
    )


@pytest.mark.parametrize(
    ("situation", "code"),
    [
        ("someone_elses_appointment", "REV_001"),
        ("cancelled", "REV_002"),
        ("no_show", "REV_002"),
        ("confirmed", "REV_002"),
        ("second_review", "REV_003"),
        ("outside_window", "REV_004"),
    ],
)
def test_only_the_patient_of_a_completed_consultation_reviews_it_once_inside_the_window(cast, situation, code, django_capture_on_commit_callbacks):
    appointment, author = cast["visit"], cast["patient"]
    if situation == "someone_elses_appointment":
        author = cast["other_patient"]
    elif situation in ("cancelled", "no_show", "confirmed"):
        appointment = consultation(doctor=cast["doctor"], patient=cast["patient"], status=situation, days_ago=3)
    elif situation == "second_review":
        create(cast)
    else:
        appointment = consultation(doctor=cast["doctor"], patient=cast["patient"], days_ago=61)
    before = (Review.objects.count(), ModerationDecision.objects.count(), AuditEvent.objects.count())

    with django_capture_on_commit_callbacks() as callbacks, pytest.raises(ApplicationError) as error:
        create(cast, appointment=appointment, author=author)

    assert error.value.code == code
    assert (Review.objects.count(), ModerationDecision.objects.count(), AuditEvent.objects.count()) == before
    assert callbacks == []


def test_day_sixty_is_still_inside_the_window(cast):
    appointment = consultation(doctor=cast["doctor"], patient=cast["patient"], days_ago=59.9)
    assert create(cast, appointment=appointment).status == "published"


def test_a_clean_review_is_published_scored_logged_and_rated_after_commit(cast, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        review = create(cast, scores={"overall": 5, "punctuality": 4, "value": 3})

    assert review.status == "published"
    assert {s.category.code: s.score for s in review.scores.select_related("category")} == {"punctuality": 4, "value": 3}
    assert list(review.decisions.values_list("action", "by", "to_status")) == [("auto_approve", None, "published")]
    assert AuditEvent.objects.filter(action="review.created", target_id=str(review.pk)).count() == 1
    cast["doctor"].refresh_from_db()
    # One 5 against the prior (no other reviews: the platform mean is this review's 5).
    assert (cast["doctor"].rating_count, cast["doctor"].rating_average) == (1, Decimal("5.000"))


@pytest.mark.parametrize(
    ("text", "status", "rules"),
    [
        ("The doctor was a complete bastard to me and my mother during the call.", "rejected", ["abusive_language"]),
        ("Call me on +91 98765 43210 and I will tell you everything about it.", "rejected", ["personal_data", "spam"]),
        ("Good advice, you can write to me at asha.verma@example.com for details.", "held", ["personal_data"]),
        ("Read my full story at www.myhealthblog.com, the doctor was thorough.", "held", ["link"]),
        ("डॉक्टर साहब ने बहुत अच्छे से समझाया, धन्यवाद। इलाज से आराम मिला।", "published", []),
        ("यह डॉक्टर बिल्कुल बेवकूफ है, मेरी बात ही नहीं सुनी, बहुत बुरा अनुभव।", "held", ["profanity"]),
    ],
)
def test_the_filter_publishes_holds_or_rejects_with_a_reason(cast, text, status, rules):
    review = create(cast, text=text)

    assert (review.status, review.screening) == (status, rules)
    assert bool(review.moderation_reason) is (status != "published")


def test_photos_are_re_encoded_without_exif_and_turned_upright(cast):
    review = create(cast, photos=[jpeg_with_exif(size=(64, 48))])

    photo = review.photos.get()
    with Image.open(photo.image) as stored:
        assert (stored.format, stored.size, dict(stored.getexif())) == ("JPEG", (48, 64), {})
    assert (photo.width, photo.height) == (48, 64)


def test_a_file_that_is_not_an_image_is_refused_and_nothing_is_stored(cast):
    from django.core.files.uploadedfile import SimpleUploadedFile

    with pytest.raises(ApplicationError) as error:
        create(cast, photos=[SimpleUploadedFile("x.jpg", b"<script>alert(1)</script>", content_type="image/jpeg")])

    assert (error.value.code, list(error.value.fields)) == ("REV_006", ["photos"])
    assert Review.objects.count() == 0


def test_the_author_edits_inside_the_window_and_versions_are_kept(cast, frozen_time):
    review = create(cast)
    frozen_time.shift(timedelta(days=10))

    review = services.review_edit(review=review, author=cast["patient"], scores={"overall": 4}, text=GOOD_TEXT + " Follow-up was quick too.")

    assert (review.overall, review.version, review.status) == (4, 2, "published")
    assert list(ReviewVersion.objects.filter(review=review).values_list("number", "overall", "text", "scores")) == [(1, 5, GOOD_TEXT, {"punctuality": 4})]
    frozen_time.shift(timedelta(days=21))
    with pytest.raises(ApplicationError) as error:
        services.review_edit(review=review, author=cast["patient"], scores={"overall": 1}, text=GOOD_TEXT)
    assert error.value.code == "REV_008"
    review.refresh_from_db()
    assert (review.overall, review.version) == (4, 2)


def test_rejection_appeal_once_and_upheld_publishes_with_every_decision_logged(cast, django_capture_on_commit_callbacks):
    review = create(cast)
    with django_capture_on_commit_callbacks(execute=True):
        services.review_moderate(review=review, by=cast["staff"], action="reject", reason="Describes another patient.")
    assert [m.subject for m in mail.outbox] == ["Your review of Dr. Priya Raman was not published"]
    cast["doctor"].refresh_from_db()
    assert cast["doctor"].rating_count == 0

    appeal = services.review_appeal(review=Review.objects.get(pk=review.pk), author=cast["patient"], statement="It only describes my own visit.")
    with pytest.raises(ApplicationError) as error:
        services.review_appeal(review=Review.objects.get(pk=review.pk), author=cast["patient"], statement="Second try at the appeal.")
    assert error.value.code == "REV_009"
    assert ReviewAppeal.objects.count() == 1

    with django_capture_on_commit_callbacks(execute=True):
        services.appeal_decide(appeal=appeal, by=cast["staff"], uphold=True, reason="The review is about the author's own visit.")

    review.refresh_from_db()
    cast["doctor"].refresh_from_db()
    assert (review.status, cast["doctor"].rating_count) == ("published", 1)
    assert list(review.decisions.values_list("action", "from_status", "to_status")) == [
        ("auto_approve", "", "published"), ("reject", "published", "rejected"), ("appeal_upheld", "rejected", "published"),
    ]
    assert mail.outbox[-1].subject == "Your review of Dr. Priya Raman is now published"


def test_only_a_rejected_review_of_ones_own_can_be_appealed(cast):
    review = create(cast)
    for author, code in ((cast["patient"], "REV_009"), (cast["other_patient"], "REV_007")):
        with pytest.raises(ApplicationError) as error:
            services.review_appeal(review=review, author=author, statement="Please look at this again.")
        assert error.value.code == code
    assert ReviewAppeal.objects.count() == 0


def test_a_flag_queues_the_review_and_approval_closes_the_reports(cast):
    review = create(cast)
    services.review_flag(review=review, reporter=cast["other_patient"], reason="false")
    with pytest.raises(ApplicationError) as error:
        services.review_flag(review=review, reporter=cast["other_patient"], reason="spam")
    assert error.value.code == "REV_011"
    with pytest.raises(ApplicationError) as error:
        services.review_flag(review=review, reporter=cast["patient"], reason="spam")
    assert error.value.code == "REV_012"
    review.refresh_from_db()
    assert review.open_flag_count == 1

    services.review_moderate(review=review, by=cast["staff"], action="approve", reason="Nothing false in it.")

    review.refresh_from_db()
    assert (review.status, review.open_flag_count, ReviewFlag.objects.filter(resolved_at__isnull=True).count()) == ("published", 0, 0)


def test_redaction_replaces_the_text_and_keeps_the_original_as_a_version(cast):
    review = create(cast, text="Good advice. My neighbour Sunil Kumar from flat 4B had the same problem.")

    services.review_moderate(review=review, by=cast["staff"], action="redact", reason="Names a third person.", text="Good advice. [removed by a moderator]")

    review.refresh_from_db()
    assert (review.text, review.version) == ("Good advice. [removed by a moderator]", 2)
    assert ReviewVersion.objects.get(review=review).text.startswith("Good advice. My neighbour")


def test_doctors_cannot_moderate_or_delete(cast):
    review = create(cast)
    with pytest.raises(ApplicationError) as error:
        services.review_moderate(review=review, by=cast["doctor"].user, action="reject", reason="I disagree.")
    assert error.value.code == "AUTH_010"
    review.refresh_from_db()
    assert review.status == "published"


def test_the_reply_is_the_doctors_and_must_pass_the_filter(cast):
    review = create(cast)
    for by, text, code in ((cast["other_doctor"].user, "Thank you!", "REV_010"), (cast["doctor"].user, "Call my clinic on 98765 43210 to rebook.", "REV_013")):
        with pytest.raises(ApplicationError) as error:
            services.review_reply(review=review, by=by, text=text)
        assert error.value.code == code
    review.refresh_from_db()
    assert review.reply_text == ""

    services.review_reply(review=review, by=cast["doctor"].user, text="Thank you, glad the readings are better.")

    review.refresh_from_db()
    assert review.reply_text == "Thank you, glad the readings are better."


def test_helpful_is_one_vote_per_person_and_idempotent(cast):
    review = create(cast)
    assert services.review_helpful_set(review=review, user=cast["other_patient"], helpful=True) == 1
    assert services.review_helpful_set(review=review, user=cast["other_patient"], helpful=True) == 1
    assert services.review_helpful_set(review=review, user=cast["staff"], helpful=True) == 2
    assert services.review_helpful_set(review=review, user=cast["other_patient"], helpful=False) == 1
    with pytest.raises(ApplicationError) as error:
        services.review_helpful_set(review=review, user=cast["patient"], helpful=True)
    assert error.value.code == "REV_012"


def test_the_rating_row_holds_categories_and_histogram(cast, django_capture_on_commit_callbacks):
    second = consultation(doctor=cast["doctor"], patient=cast["other_patient"])
    with django_capture_on_commit_callbacks(execute=True):
        create(cast, scores={"overall": 5, "punctuality": 4})
    with django_capture_on_commit_callbacks(execute=True):
        create(cast, appointment=second, author=cast["other_patient"], scores={"overall": 3, "punctuality": 2, "value": 4})

    rating = DoctorRating.objects.get(doctor=cast["doctor"])
    assert rating.histogram == {"1": 0, "2": 0, "3": 1, "4": 0, "5": 1}
    assert rating.categories == {"overall": {"average": 4.0, "count": 2}, "punctuality": {"average": 3.0, "count": 2}, "value": {"average": 4.0, "count": 1}}


def test_patients_are_asked_for_a_review_once_after_a_completed_consultation(cast, django_capture_on_commit_callbacks):
    recent = consultation(doctor=cast["doctor"], patient=cast["other_patient"], days_ago=0.1)  # ended ~2 h ago
    consultation(doctor=cast["doctor"], patient=cast["other_patient"], days_ago=0.01)  # ended a few minutes ago: not yet
    consultation(doctor=cast["doctor"], patient=cast["other_patient"], status="cancelled", days_ago=0.1)
    consultation(doctor=cast["doctor"], patient=cast["other_patient"], days_ago=5)  # long ago: left alone

    with django_capture_on_commit_callbacks(execute=True):
        first = services.reviews_request_due()
    with django_capture_on_commit_callbacks(execute=True):
        again = services.reviews_request_due()

    assert first == 2  # the cast's own visit (a day ago) and the recent one
    assert again == 0 and len(mail.outbox) == 2  # the dedupe key: once per appointment
    assert f"/appointments/{recent.public_id}/review/" in "".join(m.body for m in mail.outbox)
