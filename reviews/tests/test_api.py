"""The reviews API and pages: create with a photo, list with filters and sorts in constant
queries, flag, appeal, reply, helpful; the reporter is never named to anyone but staff."""

from __future__ import annotations

import pytest
from django.test import Client

from accounts.tests.factories import UserFactory
from reviews import services
from reviews.models import Review, ReviewFlag

from .conftest import GOOD_TEXT, as_user, consultation, jpeg_with_exif

pytestmark = pytest.mark.django_db


def publish(cast, patient=None, overall=5, text=GOOD_TEXT, photos=(), days_ago=1) -> Review:
    patient = patient or UserFactory()
    appointment = cast["visit"] if patient == cast["patient"] else consultation(doctor=cast["doctor"], patient=patient, days_ago=days_ago)
    return services.review_create(appointment=appointment, author=patient, scores={"overall": overall, "punctuality": overall}, text=text, photos=list(photos))


def test_patient_creates_a_review_with_a_photo_in_multipart(cast, django_capture_on_commit_callbacks):
    body = {"appointment": str(cast["visit"].public_id), "scores.overall": "5", "scores.bedside_manner": "4", "text": GOOD_TEXT, "photos": [jpeg_with_exif()]}
    with django_capture_on_commit_callbacks(execute=True):
        response = as_user(cast["patient"]).post("/api/v1/reviews/", body, format="multipart")

    assert response.status_code == 201, response.json()
    data = response.json()
    assert (data["status"], data["author"], data["verified_consultation"], data["scores"], data["can_edit"], data["can_appeal"]) == ("published", "Asha V.", True, {"overall": 5, "bedside_manner": 4}, True, False)
    assert len(data["photos"]) == 1 and data["photos"][0]["url"].endswith(".jpg")
    assert Client().get(data["photos"][0]["url"]).status_code == 200
    assert as_user().get("/api/v1/reviews/rating/", {"doctor": "dr-priya-raman"}).json()["count"] == 1


@pytest.mark.parametrize(
    ("who", "status", "code"),
    [("other_patient", 404, "REV_001"), ("doctor", 404, "REV_001"), ("staff", 404, "REV_001"), (None, 401, "AUTH_001")],
)
def test_nobody_but_the_patient_reviews_the_consultation(cast, who, status, code, django_capture_on_commit_callbacks):
    user = {"doctor": cast["doctor"].user}.get(who, cast.get(who)) if who else None
    with django_capture_on_commit_callbacks() as callbacks:
        response = as_user(user).post("/api/v1/reviews/", {"appointment": str(cast["visit"].public_id), "scores": {"overall": 1}, "text": GOOD_TEXT}, format="json")

    assert (response.status_code, response.json()["error"]["code"]) == (status, code)
    assert (Review.objects.count(), callbacks) == (0, [])


def test_list_filters_and_sorts(cast):
    five = publish(cast, cast["patient"], overall=5, photos=[jpeg_with_exif()])
    four = publish(cast, overall=4, days_ago=2)
    helpful = publish(cast, overall=4, days_ago=3)
    services.review_helpful_set(review=helpful, user=cast["staff"], helpful=True)
    services.review_reply(review=four, by=cast["doctor"].user, text="Thank you for coming.")
    publish(cast, overall=2, text="The doctor was an idiot and did not listen at all.")  # held: not listed

    def ids(**params):
        response = as_user().get("/api/v1/reviews/", {"doctor": "dr-priya-raman", **params})
        assert response.status_code == 200
        return [row["id"] for row in response.json()["results"]]

    by_creation = [str(r.public_id) for r in Review.objects.published().order_by("-created_at", "-pk")]
    assert ids() == by_creation
    assert ids(sort="helpful")[0] == str(helpful.public_id)
    assert ids(stars=4) == [r for r in by_creation if r in (str(four.public_id), str(helpful.public_id))]
    assert ids(with_photos="true") == [str(five.public_id)]
    assert ids(with_reply="true") == [str(four.public_id)]
    assert as_user().get("/api/v1/reviews/", {"doctor": "nobody"}).json()["error"]["code"] == "DOC_001"


def test_the_list_costs_the_same_queries_for_3_or_15_reviews(cast, django_assert_max_num_queries):
    for index in range(3):
        publish(cast, cast["patient"] if index == 0 else None, photos=[jpeg_with_exif()] if index == 0 else ())
    with django_assert_max_num_queries(5):  # doctor, count, page, scores, photos
        assert len(as_user().get("/api/v1/reviews/", {"doctor": "dr-priya-raman"}).json()["results"]) == 3
    for _ in range(12):
        publish(cast, photos=[jpeg_with_exif()])
    with django_assert_max_num_queries(5):
        assert len(as_user().get("/api/v1/reviews/", {"doctor": "dr-priya-raman"}).json()["results"]) == 15


def test_the_doctor_page_costs_the_same_queries_for_3_or_15_reviews(cast, django_assert_max_num_queries, django_capture_on_commit_callbacks):
    client = Client()
    client.force_login(cast["other_patient"])
    with django_capture_on_commit_callbacks(execute=True):
        for index in range(3):
            publish(cast, cast["patient"] if index == 0 else None)
    client.get("/doctors/dr-priya-raman/")
    with django_assert_max_num_queries(30) as few:
        client.get("/doctors/dr-priya-raman/")
    with django_capture_on_commit_callbacks(execute=True):
        for _ in range(12):
            publish(cast, photos=[jpeg_with_exif()])
    with django_assert_max_num_queries(len(few.captured_queries)):
        page = client.get("/doctors/dr-priya-raman/").content.decode()
    assert page.count('data-testid="review"') == 10  # first page of ten


def test_the_reporter_is_never_shown_to_the_doctor_the_author_or_anyone_else(cast, django_capture_on_commit_callbacks):
    review = publish(cast, cast["patient"])
    reporter = cast["other_patient"]
    response = as_user(reporter).post(f"/api/v1/reviews/{review.public_id}/flag/", {"reason": "false", "note": "Rohan here: this did not happen."}, format="json")
    assert response.status_code == 202
    assert ReviewFlag.objects.get().reporter == reporter

    traces = [reporter.email, reporter.first_name, reporter.last_name, str(reporter.public_id), "Rohan here"]
    answers = []
    # Every API answer, even to the reporter; pages to everyone else (the reporter's own pages
    # carry their name in the menu).
    for user in (cast["doctor"].user, cast["patient"], cast["other_doctor"].user, reporter, None):
        client = as_user(user)
        answers += [
            client.get("/api/v1/reviews/", {"doctor": "dr-priya-raman"}).content.decode(),
            client.get(f"/api/v1/reviews/{review.public_id}/").content.decode(),
        ]
        if user == reporter:
            continue
        page_client = Client()
        if user is not None:
            page_client.force_login(user)
        answers.append(page_client.get("/doctors/dr-priya-raman/").content.decode())
    answers.append(Client().get("/api/v1/reviews/rating/?doctor=dr-priya-raman").content.decode())
    author_client = Client()
    author_client.force_login(cast["patient"])
    answers.append(author_client.get(f"/appointments/{cast['visit'].public_id}/review/").content.decode())
    assert [trace for trace in traces for answer in answers if trace in answer] == []


def test_flagging_twice_or_ones_own_review_is_refused_and_changes_nothing(cast):
    review = publish(cast, cast["patient"])
    as_user(cast["other_patient"]).post(f"/api/v1/reviews/{review.public_id}/flag/", {"reason": "spam"}, format="json")
    for user, code in ((cast["other_patient"], "REV_011"), (cast["patient"], "REV_012")):
        response = as_user(user).post(f"/api/v1/reviews/{review.public_id}/flag/", {"reason": "spam"}, format="json")
        assert response.json()["error"]["code"] == code
    review.refresh_from_db()
    assert (ReviewFlag.objects.count(), review.open_flag_count) == (1, 1)


def test_appeal_through_the_api_once(cast):
    review = publish(cast, cast["patient"], text="The doctor was a complete bastard to me, terrible experience.")
    assert review.status == "rejected"
    url = f"/api/v1/reviews/{review.public_id}/appeal/"

    first = as_user(cast["patient"]).post(url, {"statement": "I was upset; I will rephrase it."}, format="json")
    second = as_user(cast["patient"]).post(url, {"statement": "Please look again at it."}, format="json")
    stranger = as_user(cast["other_patient"]).post(url, {"statement": "Please look again at it."}, format="json")

    assert (first.status_code, first.json()["appeal"], first.json()["can_appeal"]) == (201, {"status": "open", "decision_reason": ""}, False)
    assert second.json()["error"]["code"] == "REV_009"
    assert (stranger.status_code, stranger.json()["error"]["code"]) == (404, "REV_007")  # a rejected review is not public


def test_reply_helpful_and_edit_through_the_api(cast):
    review = publish(cast, cast["patient"])
    url = f"/api/v1/reviews/{review.public_id}/"

    assert as_user(cast["other_doctor"].user).put(url + "reply/", {"text": "Thanks"}, format="json").json()["error"]["code"] == "REV_010"
    reply = as_user(cast["doctor"].user).put(url + "reply/", {"text": "Thank you, Asha."}, format="json").json()
    assert reply["reply"]["text"] == "Thank you, Asha."
    assert as_user(cast["other_patient"]).post(url + "helpful/").json() == {"helpful_count": 1, "helpful": True}
    assert as_user(cast["other_patient"]).delete(url + "helpful/").json() == {"helpful_count": 0, "helpful": False}
    edited = as_user(cast["patient"]).patch(url, {"scores": {"overall": 4}, "text": GOOD_TEXT + " Edited."}, format="json").json()
    assert (edited["overall"], edited["edited_at"] is not None) == (4, True)
    assert as_user(cast["other_patient"]).patch(url, {"scores": {"overall": 1}, "text": GOOD_TEXT}, format="json").json()["error"]["code"] == "REV_007"


def test_the_completed_appointment_page_links_to_the_review_form_and_the_form_publishes(cast):
    client = Client()
    client.force_login(cast["patient"])
    detail = client.get(f"/appointments/{cast['visit'].public_id}/").content.decode()
    assert f'href="/appointments/{cast["visit"].public_id}/review/"' in detail and "Write a review" in detail

    response = client.post(f"/appointments/{cast['visit'].public_id}/review/", {"overall": "5", "score_punctuality": "4", "text": GOOD_TEXT, "photos": [jpeg_with_exif()]})

    assert response.status_code == 302
    review = Review.objects.get()
    assert (review.status, review.photos.count(), review.scores.get().score) == ("published", 1, 4)
    doctor_client = Client()
    doctor_client.force_login(cast["doctor"].user)
    assert "Write a review" not in doctor_client.get(f"/appointments/{cast['visit'].public_id}/").content.decode()
