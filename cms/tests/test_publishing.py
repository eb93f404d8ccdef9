"""Scheduled publishing: a scheduled post is invisible until its time, then visible everywhere
at once (query-time rule); the beat task only brings the stored status in line."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
import time_machine

from cms import services, tasks
from cms.models import Content, Post
from cms.tests.factories import PostFactory, editor

pytestmark = pytest.mark.django_db

PUBLISH_AT = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)


@pytest.fixture
def scheduled_post():
    with time_machine.travel(datetime(2026, 11, 30, 12, 0, tzinfo=UTC), tick=False):
        post = PostFactory(slug="flu-season", status=Content.Status.REVIEW, publish_at=None)
        return services.content_publish(content=post, by=editor(), publish_at=PUBLISH_AT)


def visible(client) -> tuple[int, int, int, bool]:
    return (
        client.get("/blog/flu-season/").status_code,
        client.get("/api/v1/cms/posts/flu-season/").status_code,
        client.get("/api/v1/cms/posts/").json()["count"],
        b"/blog/flu-season/" in client.get("/sitemap.xml").content,
    )


def test_a_scheduled_post_is_hidden_until_its_publish_time(client, scheduled_post):
    with time_machine.travel(datetime(2026, 12, 1, 8, 59, 59, tzinfo=UTC), tick=False):
        before = visible(client)
    with time_machine.travel(PUBLISH_AT, tick=False):
        at = visible(client)

    assert scheduled_post.status == "scheduled"
    assert before == (404, 404, 0, False)
    assert at == (200, 200, 1, True)


def test_the_beat_task_marks_due_posts_published_once(scheduled_post):
    with time_machine.travel(datetime(2026, 12, 1, 8, 59, tzinfo=UTC), tick=False):
        early = tasks.publish_due.delay().get()
    with time_machine.travel(datetime(2026, 12, 1, 9, 1, tzinfo=UTC), tick=False):
        first = tasks.publish_due.delay().get()
        second = tasks.publish_due.delay().get()

    assert (early, first, second) == (0, 1, 0)
    assert Post.objects.get().status == "published"


def test_a_draft_and_a_submitted_post_are_never_public(client):
    PostFactory(slug="draft", status=Content.Status.DRAFT, publish_at=None)
    PostFactory(slug="submitted", status=Content.Status.REVIEW, publish_at=None)

    pages = [client.get(f"/blog/{slug}/").status_code for slug in ("draft", "submitted")]

    assert pages == [404, 404]
    assert Post.objects.live().count() == 0
