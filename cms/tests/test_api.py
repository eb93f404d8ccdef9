"""The read API for mobile: live content only; drafts, submitted and future posts are 404."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.conf import settings
from django.utils import timezone

from cms.models import Content

from .factories import CategoryFactory, PageFactory, PostFactory, TagFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def posts():
    heart = CategoryFactory(name="Heart health", slug="heart-health")
    skin = CategoryFactory(name="Skin", slug="skin")
    older = PostFactory(slug="older", title="Older", category=heart, publish_at=timezone.now() - timedelta(days=2), author__first_name="Priya", author__last_name="Raman")
    newer = PostFactory(slug="newer", title="Newer", category=skin, body='<h2>Sun</h2><p>Use <a href="/doctors/">sunscreen</a>.</p>')
    newer.tags.set([TagFactory(name="Sun", slug="sun")])
    PostFactory(slug="draft", status=Content.Status.DRAFT, publish_at=None)
    PostFactory(slug="submitted", status=Content.Status.REVIEW, publish_at=None)
    PostFactory(slug="future", status=Content.Status.SCHEDULED, publish_at=timezone.now() + timedelta(hours=1))
    return older, newer


def test_post_list_has_live_posts_newest_first(client, posts):
    response = client.get("/api/v1/cms/posts/")

    body = response.json()
    assert response.status_code == 200
    assert body["count"] == 2
    assert [p["slug"] for p in body["results"]] == ["newer", "older"]
    older = body["results"][1]
    assert older == {
        "slug": "older",
        "title": "Older",
        "summary": "A short summary for lists.",
        "url": f"{settings.SITE_URL}/blog/older/",
        "category": {"slug": "heart-health", "name": "Heart health", "description": ""},
        "tags": [],
        "author_name": "Priya Raman",
        "published_at": older["published_at"],
        "updated_at": older["updated_at"],
        "reading_minutes": 1,
        "cover_image": None,
    }


@pytest.mark.parametrize(("query", "slugs"), [("category=skin", ["newer"]), ("tag=sun", ["newer"]), ("category=heart-health&tag=sun", []), ("category=unknown", [])])
def test_post_list_filters_by_category_and_tag(client, posts, query, slugs):
    response = client.get(f"/api/v1/cms/posts/?{query}")

    assert [p["slug"] for p in response.json()["results"]] == slugs


def test_post_detail_has_the_sanitised_body_and_seo(client, posts):
    response = client.get("/api/v1/cms/posts/newer/")

    body = response.json()
    assert response.status_code == 200
    assert body["body"] == '<h2>Sun</h2><p>Use <a href="/doctors/" rel="noopener noreferrer">sunscreen</a>.</p>'
    assert body["seo"] == {"title": "Newer", "description": "A short summary for lists.", "canonical": f"{settings.SITE_URL}/blog/newer/", "image": ""}
    assert body["tags"] == [{"slug": "sun", "name": "Sun"}]


@pytest.mark.parametrize("slug", ["draft", "submitted", "future", "missing"])
def test_unpublished_posts_are_not_found(client, posts, slug):
    response = client.get(f"/api/v1/cms/posts/{slug}/")

    assert response.status_code == 404
    assert response.json()["error"]["code"] == "CMS_001"


def test_pages_live_only(client):
    PageFactory(slug="about-us", title="About us", body="<p>We connect you with verified doctors.</p>", summary="")
    PageFactory(slug="draft-page", status=Content.Status.DRAFT, publish_at=None)

    live = client.get("/api/v1/cms/pages/about-us/")
    draft = client.get("/api/v1/cms/pages/draft-page/")

    assert live.status_code == 200
    assert (live.json()["title"], live.json()["summary"], live.json()["body"]) == ("About us", "We connect you with verified doctors.", "<p>We connect you with verified doctors.</p>")
    assert draft.status_code == 404 and draft.json()["error"]["code"] == "CMS_002"


def test_categories_and_tags(client, posts):
    categories = client.get("/api/v1/cms/categories/").json()
    tags = client.get("/api/v1/cms/tags/").json()

    assert [c["slug"] for c in categories] == ["heart-health", "skin"]
    assert tags == [{"slug": "sun", "name": "Sun"}]


def test_post_list_query_count_does_not_grow_with_the_page(client, django_assert_max_num_queries):
    for _ in range(12):
        PostFactory().tags.set([TagFactory(), TagFactory()])

    with django_assert_max_num_queries(3):  # count, posts with author/category/cover, tags
        response = client.get("/api/v1/cms/posts/?page_size=12")

    assert len(response.json()["results"]) == 12
