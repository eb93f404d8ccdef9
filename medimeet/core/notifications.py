"""Outgoing messages. Step 1 ships email; Step 6 grows this into ``notify(user, event, context)``
with preferences, SMS and delivery tracking.

Messages are rendered in the request (templates need the request's context) and sent by a
Celery task after commit, with retries, so a failed SMTP server never fails a request.
"""

from __future__ import annotations

import base64

from django.conf import settings
from django.template import TemplateDoesNotExist
from django.template.loader import render_to_string

from .events import enqueue_on_commit


def email_send(*, to: list[str], subject: str, text_body: str, html_body: str | None = None, attachments: list[tuple[str, bytes, str]] | None = None) -> None:
    """``attachments``: (filename, content, MIME type) — e.g. the receipt PDF or an .ics event."""
    from .tasks import deliver_email

    encoded = [(name, base64.b64encode(content).decode(), mimetype) for name, content, mimetype in attachments or []]
    enqueue_on_commit(deliver_email, to=to, subject=subject, text_body=text_body, html_body=html_body, attachments=encoded)


def email_send_template(*, to: list[str], template: str, context: dict, attachments: list[tuple[str, bytes, str]] | None = None) -> None:
    """Render ``<template>_subject.txt``, ``<template>_message.txt`` and, when present,
    ``<template>_message.html`` and queue the message."""
    context = {"SITE_NAME": settings.SITE_NAME, "SITE_URL": settings.SITE_URL, **context}
    subject = " ".join(render_to_string(f"{template}_subject.txt", context).split())
    text_body = render_to_string(f"{template}_message.txt", context)
    try:
        html_body = render_to_string(f"{template}_message.html", context)
    except TemplateDoesNotExist:  # an HTML part is optional
        html_body = None
    email_send(to=to, subject=subject, text_body=text_body, html_body=html_body, attachments=attachments)
