"""sitemap.xml, robots.txt and the RSS/Atom feeds: parsed as XML, with the required elements."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from datetime import UTC, datetime, timedelta

import pytest
from django.conf import settings
from django.utils import timezone

from cms.models import Content
from doctors.models import DoctorProfile
from doctors.tests.factories import DoctorProfileFactory

from .factories import CategoryFactory, PageFactory, PostFactory, TagFactory

pytestmark = pytest.mark.django_db

SM = "{http://www.sitemaps.org/schemas/sitemap/0.9}"
ATOM = "{http://www.w3.org/2005/Atom}"


@pytest.fixture
def content():
    heart = CategoryFactory(name="Heart health", slug="heart-health")
    post = PostFactory(
        title="Five signs of high blood pressure", slug="high-blood-pressure", category=heart,
        author__first_name="Priya", author__last_name="Raman",
        publish_at=datetime(2026, 10, 1, 8, 0, tzinfo=UTC),
    )  # fmt: skip
    post.tags.set([TagFactory(name="Hypertension", slug="hypertension")])
    PostFactory(slug="a-draft", status=Content.Status.DRAFT, publish_at=None)
    PostFactory(slug="scheduled-later", status=Content.Status.SCHEDULED, publish_at=timezone.now() + timedelta(days=1))
    PageFactory(slug="about-us", title="About us")
    PageFactory(slug="draft-page", status=Content.Status.DRAFT, publish_at=None)
    return post


def test_sitemap_lists_live_posts_pages_and_listed_doctors_only(client, content):
    listed = DoctorProfileFactory(slug="dr-listed")
    DoctorProfileFactory(slug="dr-pending", verification_status=DoctorProfile.Status.SUBMITTED)

    response = client.get("/sitemap.xml")

    root = ET.fromstring(response.content)
    urls = {url.findtext(f"{SM}loc"): url for url in root.findall(f"{SM}url")}
    assert response.status_code == 200 and response["Content-Type"] == "application/xml"
    assert root.tag == f"{SM}urlset"
    assert sorted(urls) == sorted(
        f"{settings.SITE_URL}{path}"
        for path in ["/", "/doctors/", "/blog/", "/blog/high-blood-pressure/", "/pages/about-us/", f"/doctors/{listed.slug}/"]
    )
    post_entry = urls[f"{settings.SITE_URL}/blog/high-blood-pressure/"]
    assert post_entry.findtext(f"{SM}lastmod") == max(content.updated_at, content.publish_at).date().isoformat()
    assert post_entry.findtext(f"{SM}changefreq") == "weekly"


def test_robots_txt_points_at_the_sitemap_and_keeps_private_areas_out(client):
    response = client.get("/robots.txt")

    lines = response.content.decode().splitlines()
    assert response.status_code == 200 and response["Content-Type"] == "text/plain; charset=utf-8"
    assert lines[0] == "User-agent: *"
    assert {"Disallow: /admin/", "Disallow: /api/", "Disallow: /account/", "Disallow: /portal/"} <= set(lines)
    assert f"Sitemap: {settings.SITE_URL}/sitemap.xml" in lines


def test_a_hindi_reader_gets_the_feeds_own_words_in_hindi(client, content):
    rss = ET.fromstring(client.get("/blog/feed/", HTTP_ACCEPT_LANGUAGE="hi").content).find("channel")

    assert rss.findtext("title") == "MediMeet स्वास्थ्य लेख"
    assert rss.findtext("description").startswith("हमारी क्लिनिकल टीम")


def test_rss_feed_has_the_channel_and_live_items_only(client, content):
    response = client.get("/blog/feed/")

    channel = ET.fromstring(response.content).find("channel")
    items = channel.findall("item")
    assert response["Content-Type"].startswith("application/rss+xml")
    assert channel.findtext("title") == "MediMeet health articles"
    assert channel.findtext("link") == f"{settings.SITE_URL}/blog/"
    assert channel.findtext("description")
    assert [item.findtext("title") for item in items] == ["Five signs of high blood pressure"]
    item = items[0]
    assert item.findtext("link") == f"{settings.SITE_URL}/blog/high-blood-pressure/"
    assert item.findtext("guid") == f"{settings.SITE_URL}/blog/high-blood-pressure/"
    assert item.findtext("pubDate") == "Thu, 01 Oct 2026 08:00:00 +0000"
    assert item.findtext("description") == "A short summary for lists."
    assert [c.text for c in item.findall("category")] == ["Heart health", "Hypertension"]


def test_atom_feed_has_the_required_elements(client, content):
    response = client.get("/blog/feed/atom/")

    feed = ET.fromstring(response.content)
    entries = feed.findall(f"{ATOM}entry")
    assert response["Content-Type"].startswith("application/atom+xml")
    assert feed.tag == f"{ATOM}feed"
    assert feed.findtext(f"{ATOM}title") == "MediMeet health articles"
    assert feed.findtext(f"{ATOM}id") == f"{settings.SITE_URL}/blog/"
    assert feed.findtext(f"{ATOM}updated")
    assert feed.find(f"{ATOM}link[@rel='self']").get("href") == f"{settings.SITE_URL}/blog/feed/atom/"
    assert len(entries) == 1
    entry = entries[0]
    assert entry.findtext(f"{ATOM}title") == "Five signs of high blood pressure"
    assert entry.findtext(f"{ATOM}id") == f"{settings.SITE_URL}/blog/high-blood-pressure/"
    assert entry.findtext(f"{ATOM}published") == "2026-10-01T08:00:00+00:00"
    assert entry.findtext(f"{ATOM}updated")
    assert entry.find(f"{ATOM}author").findtext(f"{ATOM}name") == "Priya Raman"
    assert entry.find(f"{ATOM}link").get("href") == f"{settings.SITE_URL}/blog/high-blood-pressure/"
