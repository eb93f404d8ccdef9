"""Public blog pages: listing with pagination, category and tag pages, a post with its search and
sharing metadata (JSON-LD Article), information pages, and doctors' profiles as Physician."""

from __future__ import annotations

import json
import re
from datetime import timedelta
from decimal import Decimal

import pytest
from django.conf import settings
from django.utils import timezone

from cms.models import Content
from doctors.tests.factories import DoctorProfileFactory

from .factories import CategoryFactory, PageFactory, PostFactory, TagFactory

pytestmark = pytest.mark.django_db


def meta(html: str, attribute: str, name: str) -> str:
    match = re.search(rf'<meta {attribute}="{re.escape(name)}" content="([^"]*)">', html)
    assert match, f"no {name} meta tag"
    return match.group(1)


def json_ld(html: str) -> dict:
    blocks = re.findall(r'<script type="application/ld\+json" nonce="[^"]+">(.*?)</script>', html, re.S)
    assert len(blocks) == 1
    return json.loads(blocks[0])


def test_post_page_has_title_description_canonical_social_cards_and_article_json_ld(client):
    post = PostFactory(
        title="Five signs of high blood pressure", slug="high-blood-pressure", seo_title="High blood pressure: five signs",
        meta_description="How to spot high blood pressure early.", category=CategoryFactory(name="Heart health", slug="heart-health"),
        author__first_name="Priya", author__last_name="Raman", body="<p>Headaches & </script><script>alert(1)</script> nosebleeds.</p>",
    )  # fmt: skip
    post.tags.set([TagFactory(name="Hypertension", slug="hypertension")])

    response = client.get("/blog/high-blood-pressure/")

    html = response.content.decode()
    url = f"{settings.SITE_URL}/blog/high-blood-pressure/"
    assert response.status_code == 200
    assert "<title>High blood pressure: five signs · MediMeet</title>" in html
    assert meta(html, "name", "description") == "How to spot high blood pressure early."
    assert f'<link rel="canonical" href="{url}">' in html
    assert [meta(html, "property", p) for p in ("og:type", "og:title", "og:description", "og:url", "og:site_name")] == ["article", "High blood pressure: five signs", "How to spot high blood pressure early.", url, "MediMeet"]
    assert [meta(html, "name", n) for n in ("twitter:card", "twitter:title", "twitter:description")] == ["summary", "High blood pressure: five signs", "How to spot high blood pressure early."]
    assert meta(html, "property", "article:tag") == "Hypertension"
    data = json_ld(html)
    assert data["@type"] == "Article"
    assert (data["headline"], data["description"], data["articleSection"], data["keywords"]) == ("Five signs of high blood pressure", "How to spot high blood pressure early.", "Heart health", ["Hypertension"])
    assert data["author"] == {"@type": "Person", "name": "Priya Raman"}
    assert data["mainEntityOfPage"] == {"@type": "WebPage", "@id": url}
    assert data["datePublished"] == post.publish_at.isoformat()
    assert "<script>alert(1)</script>" not in html
    # The nonce on the JSON-LD is the one the Content-Security-Policy header announces.
    nonce = re.search(r'nonce="([^"]+)"', html).group(1)
    assert f"'nonce-{nonce}'" in response["Content-Security-Policy"]


def test_a_canonical_url_set_by_the_editor_wins(client):
    PostFactory(slug="syndicated", canonical_url="https://journal.example/original")

    html = client.get("/blog/syndicated/").content.decode()

    assert '<link rel="canonical" href="https://journal.example/original">' in html
    assert meta(html, "property", "og:url") == "https://journal.example/original"


def test_blog_index_paginates_nine_a_page_and_a_page_past_the_end_is_404(client):
    for n in range(10):
        PostFactory(title=f"Article {n}", publish_at=timezone.now() - timedelta(hours=n + 1))

    first = client.get("/blog/")
    second = client.get("/blog/?page=2")
    beyond = client.get("/blog/?page=3")

    assert first.content.decode().count('class="mm-post-card"') == 9
    assert "Page 1 of 2" in first.content.decode()
    assert second.content.decode().count('class="mm-post-card"') == 1
    assert f'<link rel="canonical" href="{settings.SITE_URL}/blog/?page=2">' in second.content.decode()
    assert beyond.status_code == 404


def test_category_and_tag_pages_list_only_their_posts(client):
    heart, skin = CategoryFactory(name="Heart health", slug="heart"), CategoryFactory(name="Skin", slug="skin")
    PostFactory(title="About the heart", category=heart).tags.set([TagFactory(name="Exercise", slug="exercise")])
    PostFactory(title="About the skin", category=skin)
    PostFactory(title="A heart draft", category=heart, status=Content.Status.DRAFT, publish_at=None)

    category = client.get("/blog/category/heart/").content.decode()
    tag = client.get("/blog/tag/exercise/").content.decode()
    missing = client.get("/blog/category/nothing/")

    assert ("About the heart" in category, "About the skin" in category, "A heart draft" in category) == (True, False, False)
    assert ("About the heart" in tag, "About the skin" in tag) == (True, False)
    assert missing.status_code == 404


def test_blog_list_query_count_does_not_grow_with_the_number_of_posts(client, django_assert_max_num_queries):
    for _ in range(9):
        PostFactory().tags.set([TagFactory()])

    with django_assert_max_num_queries(5):  # count, posts, their tags, categories in use; the layout's platform settings (banner, support contact)
        response = client.get("/blog/")

    assert response.content.decode().count('class="mm-post-card"') == 9


def test_information_page_is_public_once_published(client):
    PageFactory(slug="how-it-works", title="How video consultations work", body="<h2>Before</h2><p>Test your camera.</p>")
    PageFactory(slug="unfinished", status=Content.Status.REVIEW, publish_at=None)

    live = client.get("/pages/how-it-works/")
    hidden = client.get("/pages/unfinished/")

    assert live.status_code == 200
    assert "<h2>Before</h2><p>Test your camera.</p>" in live.content.decode()
    assert json_ld(live.content.decode())["@type"] == "WebPage"
    assert hidden.status_code == 404


def test_doctor_profile_has_physician_json_ld_and_social_cards(client):
    doctor = DoctorProfileFactory(
        slug="dr-priya-raman", user__first_name="Priya", user__last_name="Raman", city="Bengaluru", country="IN",
        clinic_address="14 Residency Road", rating_average=Decimal("4.8"), rating_count=37,
    )  # fmt: skip

    response = client.get("/doctors/dr-priya-raman/")

    html = response.content.decode()
    url = f"{settings.SITE_URL}/doctors/dr-priya-raman/"
    data = json_ld(html)
    assert response.status_code == 200
    assert f'<link rel="canonical" href="{url}">' in html
    assert (meta(html, "property", "og:type"), meta(html, "property", "og:url")) == ("profile", url)
    assert data == {
        "@context": "https://schema.org",
        "@type": "Physician",
        "name": "Dr. Priya Raman",
        "url": url,
        "description": f"Dr. Priya Raman, {doctor.primary_specialization.name} in Bengaluru. Licence verified by MediMeet.",
        "knowsAbout": [doctor.primary_specialization.name],
        "knowsLanguage": [],
        "address": {"@type": "PostalAddress", "streetAddress": "14 Residency Road", "addressLocality": "Bengaluru", "addressCountry": "IN"},
        "aggregateRating": {"@type": "AggregateRating", "ratingValue": "4.8", "reviewCount": 37, "bestRating": "5", "worstRating": "1"},
    }


def test_public_navigation_links_to_the_blog(client):
    html = client.get("/").content.decode()

    assert 'href="/blog/"' in html


def test_json_ld_cannot_close_its_script_element(client):
    PostFactory(slug="tricky", title='Fever </script><script>alert("x")</script> & chills')

    html = client.get("/blog/tricky/").content.decode()

    raw = re.search(r'<script type="application/ld\+json" nonce="[^"]+">(.*?)</script>', html, re.S).group(1)
    assert "<" not in raw and ">" not in raw
    assert json.loads(raw)["headline"] == 'Fever </script><script>alert("x")</script> & chills'
