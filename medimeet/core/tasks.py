from __future__ import annotations

import base64

from celery import shared_task
from django.conf import settings
from django.core.mail import EmailMultiAlternatives


@shared_task(bind=True, autoretry_for=(OSError,), retry_backoff=30, retry_backoff_max=1800, max_retries=8, acks_late=True)
def deliver_email(self, *, to: list[str], subject: str, text_body: str, html_body: str | None = None, attachments: list | None = None) -> None:
    """Send one rendered message; SMTP failures retry with exponential backoff. Attachments
    arrive base64-encoded (the broker carries JSON)."""
    message = EmailMultiAlternatives(subject=subject, body=text_body, from_email=settings.DEFAULT_FROM_EMAIL, to=to)
    if html_body:
        message.attach_alternative(html_body, "text/html")
    for name, content, mimetype in attachments or []:
        message.attach(name, base64.b64decode(content), mimetype)
    message.send()
