"""Moderation in the admin, by support (the role that owns it): approve, reject and redact from
the review list and from the moderation queue, upholding and denying appeals. Each asks for a
reason first (the page changes nothing), then decides, logs, tells the author where the service
does, and is audited; roles outside support get 403."""

from __future__ import annotations

import pytest
from django.contrib.messages import get_messages

from accounts.tests.factories import staff_member
from medimeet.core import roles
from medimeet.core.models import AuditEvent, Notification
from medimeet.core.tests.admin_actions import ask_then_apply, audited_actions, changelist, ids, run_action
from reviews import services
from reviews.admin import ModerationQueue
from reviews.models import Review, ReviewAppeal, ReviewVersion

from .conftest import GOOD_TEXT, consultation

pytestmark = pytest.mark.django_db
HELD_TEXT = "Good advice, you can write to me at asha.verma@example.com for details."
REDACTED = "Good advice, you can write to me at [removed by a moderator] for details."
REVIEW_ADMINS = pytest.mark.parametrize("model", [Review, ModerationQueue], ids=["reviews", "moderation queue"])
APPEALS = changelist(ReviewAppeal)


def held(cast, patient=None) -> Review:
    """Held by the filter (an email address in the text): in the moderation queue."""
    patient = patient or cast["patient"]
    visit = cast["visit"] if patient == cast["patient"] else consultation(doctor=cast["doctor"], patient=patient)
    review = services.review_create(appointment=visit, author=patient, scores={"overall": 4}, text=HELD_TEXT)
    assert review.status == "held"
    return review


def appealed(cast) -> ReviewAppeal:
    review = services.review_create(appointment=cast["visit"], author=cast["patient"], scores={"overall": 5}, text=GOOD_TEXT)
    services.review_moderate(review=review, by=cast["staff"], action="reject", reason="Describes another patient.")
    return services.review_appeal(review=Review.objects.get(pk=review.pk), author=cast["patient"], statement="It only describes my own visit.")


def state(review: Review) -> tuple[str, str, str, int]:
    review.refresh_from_db()
    return review.status, review.moderation_reason, review.text, review.version


def decisions(review: Review) -> list[tuple[str, str, str]]:
    return list(review.decisions.filter(by__isnull=False).values_list("action", "from_status", "to_status"))


@REVIEW_ADMINS
def test_support_approves_a_held_review_after_giving_a_reason(client, cast, model):
    review = held(cast)
    client.force_login(cast["staff"])

    asked, done = ask_then_apply(client, changelist(model), "approve", [review], reason="An email address is fine here.")

    assert asked.status_code == 200 and HELD_TEXT in asked.content.decode()
    assert done.status_code == 302
    assert state(review)[:2] == ("published", "")
    assert decisions(review) == [("approve", "held", "published")]
    assert AuditEvent.objects.filter(action="review.approve", actor=cast["staff"], subject_user=cast["patient"]).count() == 1
    assert audited_actions() == [(cast["staff"].pk, model._meta.label_lower, "approve", ids(review), 1)]


@REVIEW_ADMINS
def test_support_rejects_a_review_with_a_reason_and_the_author_is_told(client, cast, model):
    review = held(cast)
    client.force_login(cast["staff"])

    asked, done = ask_then_apply(client, changelist(model), "reject", [review], reason="Contains contact details.")

    assert asked.status_code == 200 and done.status_code == 302
    assert state(review)[:2] == ("rejected", "Contains contact details.")
    assert decisions(review) == [("reject", "held", "rejected")]
    assert list(Notification.objects.filter(event="review.review_rejected").values_list("to", flat=True)) == ["asha@example.com"]
    assert audited_actions() == [(cast["staff"].pk, model._meta.label_lower, "reject", ids(review), 1)]


@REVIEW_ADMINS
def test_support_redacts_the_text_and_the_original_is_kept_as_a_version(client, cast, model):
    review = held(cast)
    client.force_login(cast["staff"])

    asked, done = ask_then_apply(client, changelist(model), "redact", [review], reason="Personal data.", text=REDACTED)

    assert asked.status_code == 200 and asked.context["form"].initial == {"text": HELD_TEXT}
    assert done.status_code == 302
    status, _, text, version = state(review)
    assert (status, text, version) == ("held", REDACTED, 2)
    assert list(ReviewVersion.objects.filter(review=review).values_list("number", "text")) == [(1, HELD_TEXT)]
    assert audited_actions() == [(cast["staff"].pk, model._meta.label_lower, "redact", ids(review), 1)]


@REVIEW_ADMINS
@pytest.mark.parametrize("action", ["approve", "reject", "redact"])
def test_the_reason_page_and_an_empty_reason_change_no_review(client, cast, model, action):
    review = held(cast)
    before = state(review)
    client.force_login(cast["staff"])

    asked, empty = ask_then_apply(client, changelist(model), action, [review], reason="", text=REDACTED)

    assert (asked.status_code, empty.status_code) == (200, 200)
    assert "reason" in empty.context["form"].errors
    assert state(review) == before
    assert decisions(review) == [] and not Notification.objects.filter(event="review.review_rejected").exists()
    assert audited_actions() == []


def test_redacting_two_reviews_at_once_is_refused_and_changes_neither(client, cast):
    reviews = [held(cast), held(cast, patient=cast["other_patient"])]
    client.force_login(cast["staff"])

    response = run_action(client, changelist(ModerationQueue), "redact", reviews, apply="1", reason="Personal data.", text=REDACTED)

    assert [str(m) for m in get_messages(response.wsgi_request)] == ["Redact one review at a time."]
    assert [state(review)[2:] for review in reviews] == [(HELD_TEXT, 1)] * 2


@pytest.mark.parametrize(("action", "appeal_status", "review_status"), [("uphold", "upheld", "published"), ("deny", "denied", "rejected")])
def test_support_decides_an_appeal_with_a_reason_and_the_author_is_told(client, cast, action, appeal_status, review_status):
    appeal = appealed(cast)
    client.force_login(cast["staff"])

    asked, done = ask_then_apply(client, APPEALS, action, [appeal], reason="Checked against the appointment notes.")

    appeal.refresh_from_db()
    assert asked.status_code == 200 and "It only describes my own visit." in asked.content.decode()
    assert done.status_code == 302
    assert (appeal.status, appeal.decided_by, appeal.decision_reason) == (appeal_status, cast["staff"], "Checked against the appointment notes.")
    assert state(appeal.review)[0] == review_status
    assert decisions(appeal.review)[-1] == (f"appeal_{appeal_status}", "rejected", review_status)
    assert list(Notification.objects.filter(event="review.appeal_decided").values_list("to", flat=True)) == ["asha@example.com"]
    assert AuditEvent.objects.filter(action=f"review.appeal_{appeal_status}", actor=cast["staff"]).count() == 1
    assert audited_actions() == [(cast["staff"].pk, "reviews.reviewappeal", action, ids(appeal), 1)]


@pytest.mark.parametrize("action", ["uphold", "deny"])
def test_the_appeal_reason_page_changes_nothing(client, cast, action):
    appeal = appealed(cast)
    client.force_login(cast["staff"])

    asked = run_action(client, APPEALS, action, [appeal])

    appeal.refresh_from_db()
    assert asked.status_code == 200
    assert (appeal.status, appeal.decided_by, state(appeal.review)[0]) == ("open", None, "rejected")
    assert not Notification.objects.filter(event="review.appeal_decided").exists()
    assert audited_actions() == []


@pytest.mark.parametrize("role", [roles.VERIFICATION, roles.FINANCE, roles.CONTENT_EDITOR, roles.COMPLIANCE])
def test_roles_outside_support_get_403_on_moderation_and_appeals(client, cast, role):
    review, appeal = held(cast, patient=cast["other_patient"]), appealed(cast)
    before = state(review)
    client.force_login(staff_member(role))

    responses = [
        run_action(client, changelist(Review), "reject", [review], apply="1", reason="Spam."),
        run_action(client, changelist(ModerationQueue), "approve", [review], apply="1", reason="Fine."),
        run_action(client, APPEALS, "uphold", [appeal], apply="1", reason="Fine."),
    ]

    appeal.refresh_from_db()
    assert [r.status_code for r in responses] == [403, 403, 403]
    assert state(review) == before and appeal.status == "open"
    assert audited_actions() == []
