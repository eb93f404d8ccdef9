"""Rendering a message for one person: in their language and time zone, in the branded layout.

Templates of an event ``<t>`` (see catalogue.py): ``<t>_subject.txt``, ``<t>_message.txt``
(extends ``email/base.txt``) and ``<t>_message.html`` (extends ``email/base.html``).
"""

from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone, translation
from django.utils.html import linebreaks, urlize

from .catalogue import CATEGORIES, Event


@dataclass(frozen=True)
class RenderedEmail:
    subject: str
    text: str
    html: str


def language_of(user) -> str:
    codes = {code for code, _ in settings.LANGUAGES}
    language = getattr(user, "language", "") or settings.LANGUAGE_CODE
    return language if language in codes else settings.LANGUAGE_CODE


@contextmanager
def recipient_locale(user, language: str | None = None):
    """Language and time zone of the recipient for everything rendered inside."""
    with translation.override(language or language_of(user)), timezone.override(getattr(user, "timezone", "") or "UTC"):
        yield


def base_context(*, user, event: Event | None) -> dict[str, Any]:
    from ..platform import site_notice
    from .services import unsubscribe_url

    essential = event is None or event.essential
    return {
        "site_notice": site_notice(),  # the support contact in the footer
        "SITE_NAME": settings.SITE_NAME,
        "SITE_URL": settings.SITE_URL,
        "recipient": user,
        "essential": essential,
        "category_label": CATEGORIES[event.category].label if event else "",
        "preferences_url": settings.SITE_URL + reverse("notifications:preferences"),
        "unsubscribe_url": "" if essential or user is None else unsubscribe_url(user=user, category=event.category),
    }


def render_email(*, event: Event, user, context: dict[str, Any], template: str | None = None) -> RenderedEmail:
    """Call inside ``recipient_locale``."""
    name = template or event.template
    ctx = {**base_context(user=user, event=event), **context}
    subject = " ".join(render_to_string(f"{name}_subject.txt", ctx).split())
    return RenderedEmail(subject=subject, text=render_to_string(f"{name}_message.txt", ctx).strip() + "\n", html=render_to_string(f"{name}_message.html", ctx))


def render_sms(*, event: Event, user, context: dict[str, Any]) -> str:
    """``<template>_sms.txt`` as one short paragraph (call inside ``recipient_locale``)."""
    ctx = {**base_context(user=user, event=event), **context}
    return " ".join(render_to_string(f"{event.template}_sms.txt", ctx).split())


def html_from_text(*, subject: str, text: str, user, event: Event | None) -> str:
    """The branded HTML part for a message that only has a text template (allauth's less
    common mails): the text, with links made clickable, inside the base layout."""
    ctx = {**base_context(user=user, event=event), "subject": subject, "body_html": linebreaks(urlize(text, autoescape=True), autoescape=False)}
    return render_to_string("email/plain_message.html", ctx)
