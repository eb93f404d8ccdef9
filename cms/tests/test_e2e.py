"""Step 9 in a real browser: a content editor signs in (password and authenticator code), writes a
post in the admin with the rich-text editor and publishes it; the post then appears on the blog
with its title, description, canonical link, Open Graph and Twitter cards and JSON-LD Article.

Writes docs/screenshots/step9-blog*.png for reviewing the look, and fails on any browser console
error (a CSP violation, a missing file).
"""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from allauth.mfa.totp.internal.auth import TOTP, generate_totp_secret
from django.conf import settings
from django.utils import timezone
from playwright.sync_api import Page, expect

from cms.models import Post
from medimeet.core.tests.browser import screenshot, sign_in_with_code

from .factories import CategoryFactory, PostFactory, TagFactory, author
from .factories import editor as content_editor

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

PASSWORD = "Quiet-Meadow-Lantern-77"


def shot(page: Page, name: str) -> None:
    screenshot(page, f"step9-{name}")


def library():
    """A blog that already has articles in three categories, by two doctors of the clinical team."""
    heart = CategoryFactory(name="Heart health", slug="heart-health", description="Blood pressure, cholesterol and looking after your heart.")
    skin = CategoryFactory(name="Skin care", slug="skin-care")
    consult = CategoryFactory(name="Video consultations", slug="video-consultations")
    anjali = {"author": author(first_name="Anjali", last_name="Mehta", email="anjali.mehta@medimeet.local")}
    chidi = {"author": author(first_name="Chidi", last_name="Okafor", email="chidi.okafor@medimeet.local")}
    now = timezone.now()
    PostFactory(title="Getting ready for your first video consultation", slug="first-video-consultation", category=consult, publish_at=now - timedelta(days=2),
                summary="Test your camera, find a quiet room and write down your questions: five minutes of preparation make the most of your time with the doctor.", **chidi)
    PostFactory(title="Sun protection that actually works", slug="sun-protection", category=skin, publish_at=now - timedelta(days=5),
                summary="Which SPF to choose, how much to apply and why reapplying matters more than the number on the bottle.", **anjali)
    PostFactory(title="Cholesterol numbers explained", slug="cholesterol-numbers", category=heart, publish_at=now - timedelta(days=9),
                summary="LDL, HDL and triglycerides: what your lipid report means and which results are worth a conversation with a doctor.", **anjali)
    TagFactory(name="Blood pressure", slug="blood-pressure")


def test_editor_publishes_a_post_that_appears_with_its_meta_tags(live_server, page: Page):
    errors: list[str] = []
    page.on("console", lambda message: errors.append(f"{page.url}: {message.text}") if message.type == "error" else None)
    page.emulate_media(reduced_motion="reduce")
    library()
    secret = generate_totp_secret()
    editor = content_editor(email="editor@medimeet.local", first_name="Priya", last_name="Raman", password=PASSWORD)
    TOTP.activate(editor, secret)

    # Given a content editor signed in with their password and an authenticator code
    sign_in_with_code(page, live_server.url, email="editor@medimeet.local", password=PASSWORD, secret=secret)

    # When they write a post in the admin with the rich-text editor
    page.set_viewport_size({"width": 1440, "height": 1000})
    page.goto(f"{live_server.url}/admin/cms/post/add/")
    page.get_by_label("Title:", exact=True).fill("High blood pressure: the five signs to watch for")
    page.get_by_label("Category:", exact=True).select_option(label="Heart health")
    page.get_by_label("Tags:", exact=True).select_option(label="Blood pressure")
    page.get_by_label("Summary:", exact=True).fill("High blood pressure rarely causes symptoms until it is serious. These five signs are a reason to measure it and talk to a doctor.")
    body = page.get_by_role("textbox", name="Body")
    body.click()
    toolbar = page.get_by_role("toolbar", name="Body formatting")
    page.keyboard.type("Most people with high blood pressure feel perfectly well. That is why it is called a silent condition, and why a home reading is worth more than a guess.")
    page.keyboard.press("Enter")
    toolbar.get_by_role("button", name="Heading", exact=True).click()
    page.keyboard.type("Five signs to take seriously")
    page.keyboard.press("Enter")
    toolbar.get_by_role("button", name="Bulleted list").click()
    for line in ["Morning headaches at the back of the head", "Nosebleeds that are hard to stop", "Blurred vision or seeing spots", "Shortness of breath on light effort", "A pounding feeling in the chest or neck"]:
        page.keyboard.type(line)
        page.keyboard.press("Enter")
    page.keyboard.press("Enter")  # leaves the list
    toolbar.get_by_role("button", name="Bold").click()
    page.keyboard.type("If your reading is above 180/120 mmHg with chest pain or confusion, call emergency services.")
    toolbar.get_by_role("button", name="Bold").click()
    page.keyboard.type(" Otherwise, book a consultation to talk about your numbers.")
    page.locator("fieldset", has_text="Search and sharing").get_by_label("Meta description:").fill("Five warning signs of high blood pressure, what a dangerous reading looks like and when to see a doctor.")
    shot(page, "blog-admin")
    # ... and publish it
    page.get_by_role("button", name="Save and publish").click()
    expect(page.locator(".messagelist")).to_contain_text("is published.")

    post = Post.objects.get(slug="high-blood-pressure-the-five-signs-to-watch-for")
    assert (post.status, post.published_by, post.author) == ("published", editor, editor)
    assert "<h2>Five signs to take seriously</h2>" in post.body
    assert "<li>Nosebleeds that are hard to stop</li>" in post.body
    assert post.body.startswith("<p>Most people with high blood pressure feel perfectly well.")
    assert "<b>If your reading is above 180/120 mmHg" in post.body
    assert not post.body.endswith("<p></p>")

    # Then, for a visitor who is not signed in, the post leads the blog
    editor_page = page
    page = page.context.browser.new_page(viewport={"width": 1280, "height": 800}, locale="en-GB", timezone_id="Europe/London", reduced_motion="reduce")
    page.on("console", lambda message: errors.append(f"{page.url}: {message.text}") if message.type == "error" else None)
    page.goto(f"{live_server.url}/blog/")
    expect(page.locator(".mm-post-card").first).to_contain_text("High blood pressure: the five signs to watch for")
    expect(page.locator(".mm-post-card")).to_have_count(4)
    shot(page, "blog")

    # ... and its page has the right title, description, canonical link, social cards and JSON-LD
    page.get_by_role("link", name="High blood pressure: the five signs to watch for").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("High blood pressure: the five signs to watch for")
    url = f"{settings.SITE_URL}/blog/high-blood-pressure-the-five-signs-to-watch-for/"
    description = "Five warning signs of high blood pressure, what a dangerous reading looks like and when to see a doctor."

    def content(selector: str) -> str | None:
        return page.locator(selector).get_attribute("content")

    assert page.title() == "High blood pressure: the five signs to watch for · MediMeet"
    assert content('meta[name="description"]') == description
    assert page.locator('link[rel="canonical"]').get_attribute("href") == url
    assert [content(f'meta[property="og:{name}"]') for name in ("type", "title", "description", "url", "site_name")] == ["article", "High blood pressure: the five signs to watch for", description, url, "MediMeet"]
    assert [content(f'meta[name="twitter:{name}"]') for name in ("card", "title", "description")] == ["summary", "High blood pressure: the five signs to watch for", description]
    article = json.loads(page.locator('script[type="application/ld+json"]').text_content())
    assert (article["@type"], article["headline"], article["author"]["name"], article["mainEntityOfPage"]["@id"]) == ("Article", "High blood pressure: the five signs to watch for", "Priya Raman", url)
    assert article["keywords"] == ["Blood pressure"]
    shot(page, "blog-post")

    # ... on a phone too
    page.set_viewport_size({"width": 390, "height": 844})
    shot(page, "blog-post-mobile")
    page.goto(f"{live_server.url}/blog/category/heart-health/")
    expect(page.get_by_role("heading", level=1)).to_have_text("Heart health")
    expect(page.locator(".mm-post-card")).to_have_count(2)

    page.context.close()
    editor_page.close()
    assert errors == [], errors
