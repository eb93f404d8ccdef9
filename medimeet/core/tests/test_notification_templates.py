"""Every message of the catalogue renders in every language, as HTML and text, in the branded
layout, with working links and nothing left unrendered."""

from __future__ import annotations

import re

import pytest
from django.conf import settings
from django.test import Client

from appointments.services import HEADLINES
from medimeet.core.notifications.catalogue import EMAIL, EVENTS, SMS
from medimeet.core.notifications.rendering import recipient_locale, render_email, render_sms

from .notification_samples import cast, context_for

pytestmark = pytest.mark.django_db

RENDERED_BY_US = sorted(name for name, event in EVENTS.items() if EMAIL in event.channels and (not name.startswith("account.") or name == "account.new_device_sign_in"))
TEXT_MESSAGES = sorted(name for name, event in EVENTS.items() if SMS in event.channels)
LINK = re.compile(r'href="([^"]+)"')
DEVANAGARI = re.compile("[\u0900-\u097F]")


def render(event_name: str, language: str):
    people = cast()
    user, context = context_for(event_name, people)
    user.language = language
    with recipient_locale(user):
        return render_email(event=EVENTS[event_name], user=user, context=context), user


@pytest.mark.parametrize("language", [code for code, _ in settings.LANGUAGES])
@pytest.mark.parametrize("event_name", RENDERED_BY_US)
def test_every_message_renders_as_html_and_text_in_the_layout(event_name, language):
    email, user = render(event_name, language)

    for part in (email.subject, email.text, email.html):
        assert "{{" not in part and "{%" not in part and "None" not in part
    assert email.subject and "\n" not in email.subject
    if language == "hi":  # the words are Hindi, not English left untranslated
        for part in (email.subject, email.text, email.html):
            assert DEVANAGARI.search(part), part[:200]
        assert "Dear " not in email.text and "You received this" not in email.text
    assert email.html.startswith("\n<!doctype html>") or email.html.lstrip().startswith("<!doctype html>")
    assert f'<html lang="{language}">' in email.html
    assert "/notifications/preferences/" in email.html and "/notifications/preferences/" in email.text
    links = set(LINK.findall(email.html))
    assert links, "every message links somewhere"
    for link in links:
        assert link == settings.SITE_URL or link.startswith(settings.SITE_URL + "/"), link
        assert link in email.text, f"{link} is in the HTML part but not in the text part"
    if EVENTS[event_name].essential:
        assert "/notifications/unsubscribe/" not in email.text
    else:
        [unsubscribe] = [link for link in links if "/notifications/unsubscribe/" in link]
        assert Client().get(unsubscribe.removeprefix(settings.SITE_URL)).status_code == 200


@pytest.mark.parametrize("language", [code for code, _ in settings.LANGUAGES])
@pytest.mark.parametrize("event_name", TEXT_MESSAGES)
def test_every_text_message_renders_as_one_short_paragraph(event_name, language):
    people = cast()
    user, context = context_for(event_name, people)
    user.language = language
    with recipient_locale(user):
        text = render_sms(event=EVENTS[event_name], user=user, context=context)

    assert text and "\n" not in text and "{" not in text and "None" not in text
    assert len(text) <= 320  # two SMS segments at most (GSM-7) or five in Unicode
    if language == "hi":
        assert DEVANAGARI.search(text), text
    for link in re.findall(r"https?://\S+", text):
        assert link.startswith(settings.SITE_URL + "/") or link.startswith("http://127.0.0.1:8000/"), link


def test_a_hindi_booking_email_names_the_time_zone_and_writes_money_the_indian_way():
    people = cast()
    user, context = context_for("appointment.update", people)
    user.language = "hi"
    context = {**context, "headline": HEADLINES["cancelled"], "refund_minor": 10000000}
    with recipient_locale(user):
        email = render_email(event=EVENTS["appointment.update"], user=user, context=context)

    assert email.subject == "MediMeet: आपका अपॉइंटमेंट रद्द हो गया है"
    assert "प्रिय Asha Verma," in email.text
    assert "कब: सोम‌वार 2 नवमबर 2026, 14:30 (Asia/Kolkata) (डॉक्टर के लिए Europe/London में 09:00)" in email.text
    assert "(₹1,00,000.00)" in email.text
