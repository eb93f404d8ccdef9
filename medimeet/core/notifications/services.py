"""Writes of the notification layer: queue a message, deliver it, resend it, preferences.

``notify`` renders one message per channel in the recipient's language and time zone, stores
it as a ``Notification`` (the delivery log) and queues ``core.tasks.deliver_notification``
after commit. The task claims the row with a conditional update, so a message is sent at most
once per row however often the task runs; failures retry with exponential backoff and end as
``failed`` with the last error, never silently dropped.
"""

from __future__ import annotations

import base64
import json
import logging
from datetime import timedelta
from typing import Any, NamedTuple
from urllib.parse import urlsplit

from django.conf import settings
from django.core import signing
from django.core.mail import EmailMultiAlternatives, get_connection
from django.core.mail.message import make_msgid
from django.db import IntegrityError, transaction
from django.db.models import F, Q
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext
from waffle import switch_is_active

from medimeet.core.audit import audit_record
from medimeet.core.errors import ApplicationError
from medimeet.core.events import enqueue_on_commit, task_enqueue
from medimeet.core.flags import SMS_REMINDERS
from medimeet.core.models import Notification, NotificationPreference
from medimeet.core.sms import sms_backend

from .catalogue import CATEGORIES, EMAIL, EVENTS, SMS, Event
from .rendering import html_from_text, language_of, recipient_locale, render_email, render_sms

logger = logging.getLogger(__name__)

UNSUBSCRIBE_SALT = "medimeet.notifications.unsubscribe"


def claim_lease() -> timedelta:
    """A worker that died while sending leaves its row "sending"; after this long another may retry it."""
    return timedelta(seconds=settings.NOTIFICATION_CLAIM_LEASE_SECONDS)


class Attachment(NamedTuple):
    name: str
    content: bytes
    mimetype: str


# --- Preferences ---------------------------------------------------------------------------


def preferences_for(user) -> NotificationPreference:
    """The stored preferences, or the defaults (unsaved) for someone who never chose."""
    return NotificationPreference.objects.filter(user=user).first() or NotificationPreference(user=user)


def channels_for(*, user, event: Event, preference: NotificationPreference | None = None) -> list[str]:
    """Channels this event goes out on for this person. Essential mail always goes by email;
    text messages only to a verified number, and only while the ``sms-reminders`` switch is on."""
    category = CATEGORIES[event.category]
    preference = preference or preferences_for(user)
    chosen = preference.channels.get(event.category, list(category.default_channels))
    if SMS in chosen and not (preference.verified_sms_number and switch_is_active(SMS_REMINDERS)):
        chosen = [c for c in chosen if c != SMS]
    channels = [c for c in event.channels if c in chosen and c in category.channels]
    if category.essential and EMAIL in event.channels and EMAIL not in channels:
        channels.insert(0, EMAIL)
    return channels


def preferences_update(*, user, channels: dict[str, list[str]] | None = None, reminder_offsets: list[int] | None = None, language: str | None = None) -> NotificationPreference:
    """Store what the person chose. Unknown categories or channels, and offsets outside one
    week, are refused (REQ_001); essential categories always keep email."""
    errors: dict[str, list[str]] = {}
    if channels is not None:
        for name, chosen in channels.items():
            category = CATEGORIES.get(name)
            if category is None or not set(chosen) <= set(category.channels):
                errors.setdefault("channels", []).append(f"Unknown category or channel: {name}.")
            elif SMS in chosen and not preferences_for(user).verified_sms_number:
                errors.setdefault("channels", []).append(gettext("Verify a phone number before choosing text messages."))
    if reminder_offsets is not None and (len(reminder_offsets) > 6 or any(not isinstance(m, int) or not 5 <= m <= 7 * 24 * 60 for m in reminder_offsets)):
        errors["reminder_offsets"] = [gettext("Choose up to six reminders, each from 5 minutes to 7 days before.")]
    if language is not None and language not in {code for code, _ in settings.LANGUAGES}:
        errors["language"] = [gettext("Choose one of the offered languages.")]
    if errors:
        raise ApplicationError("REQ_001", fields=errors)
    with transaction.atomic():
        preference, _ = NotificationPreference.objects.select_for_update().get_or_create(user=user)
        if channels is not None:
            preference.channels = {**preference.channels, **{name: [c for c in CATEGORIES[name].channels if c in chosen] for name, chosen in channels.items()}}
        if reminder_offsets is not None:
            preference.reminder_offsets = sorted(set(reminder_offsets), reverse=True)
        preference.save()
        if language is not None and user.language != language:
            user.language = language
            user.save(update_fields=["language"])
    return preference


def unsubscribe_url(*, user, category: str) -> str:
    token = signing.dumps({"u": str(user.public_id), "c": category}, salt=UNSUBSCRIBE_SALT, compress=True)
    return settings.SITE_URL + reverse("notifications:unsubscribe", args=[token])


def unsubscribe(*, token: str):
    """One-click unsubscribe from a non-essential category (the signed link in the footer).
    Returns (user, category). Raises AUTH_011 for a link that is not ours."""
    from accounts.models import User

    try:
        data = signing.loads(token, salt=UNSUBSCRIBE_SALT)
        user = User.objects.get(public_id=data["u"])
        category = CATEGORIES[data["c"]]
    except (signing.BadSignature, User.DoesNotExist, KeyError, ValueError) as exc:
        raise ApplicationError("AUTH_011") from exc
    if category.essential:
        raise ApplicationError("AUTH_011")
    preferences_update(user=user, channels={category.name: []})
    audit_record(action="notifications.unsubscribed", actor=None, target=user, subject_user=user, metadata={"category": category.name})
    return user, category


# --- Queueing ------------------------------------------------------------------------------


def notify(*, user, event: str, context: dict[str, Any], attachments: list[Attachment] | None = None, dedupe_key: str | None = None) -> list[Notification]:
    """Render ``event`` for ``user`` on each channel their preferences allow and queue it.

    ``context`` holds model instances and datetimes; templates format times with the
    ``zoned_time`` tag (recipient's zone, zone named) and money with ``money``. With
    ``dedupe_key`` a message is queued at most once per key and channel (reminders)."""
    definition = EVENTS[event]
    preference = preferences_for(user)
    queued = []
    with recipient_locale(user):
        for channel in channels_for(user=user, event=definition, preference=preference):
            key = f"{dedupe_key}:{channel}" if dedupe_key else None
            if key and Notification.objects.filter(dedupe_key=key).exists():
                continue
            if channel == SMS:
                text = render_sms(event=definition, user=user, context=context)
                row = notification_queue(user=user, to=preference.verified_sms_number, channel=SMS, event=event, template=definition.template, subject="", text_body=text, dedupe_key=key)
            else:
                email = render_email(event=definition, user=user, context=context)
                row = notification_queue(
                    user=user, to=user.email, channel=channel, event=event, template=definition.template, subject=email.subject, text_body=email.text, html_body=email.html, attachments=attachments, dedupe_key=key
                )
            if row is not None:
                queued.append(row)
    return queued


def notify_sms(*, user, to: str, event: str, context: dict[str, Any]) -> Notification | None:
    """A text message to a number that is not (yet) the person's verified one: the code that
    verifies it. Logged and delivered like every other message."""
    definition = EVENTS[event]
    with recipient_locale(user):
        text = render_sms(event=definition, user=user, context=context)
    return notification_queue(user=user, to=to, channel=SMS, event=event, template=definition.template, subject="", text_body=text)


def notification_queue(
    *,
    user,
    to: str,
    channel: str,
    event: str,
    subject: str,
    text_body: str,
    html_body: str = "",
    template: str = "",
    language: str | None = None,
    attachments: list[Attachment] | None = None,
    dedupe_key: str | None = None,
    resent_from: Notification | None = None,
) -> Notification | None:
    """Store a rendered message and queue its delivery after commit. Returns None when
    ``dedupe_key`` was already used (another scan or worker queued it first)."""
    definition = EVENTS[event]
    headers = {}
    if channel == EMAIL and not definition.essential and user is not None:
        # RFC 8058 one-click unsubscribe: mail clients show an "Unsubscribe" button.
        headers = {"List-Unsubscribe": f"<{unsubscribe_url(user=user, category=definition.category)}>", "List-Unsubscribe-Post": "List-Unsubscribe=One-Click"}
    encoded = json.dumps([{"name": a.name, "mimetype": a.mimetype, "content": base64.b64encode(a.content).decode()} for a in attachments or []]) if attachments else ""
    fields = dict(
        user=user,
        to=to,
        channel=channel,
        event=event,
        template=template,
        language=language or language_of(user),
        subject=subject[:300],
        text_body=text_body,
        html_body=html_body,
        attachments=encoded,
        headers=headers,
        dedupe_key=dedupe_key,
        resent_from=resent_from,
        status_changed_at=timezone.now(),
    )
    if dedupe_key:
        try:
            with transaction.atomic():  # a savepoint: losing the race must not end the caller's transaction
                row = Notification.objects.create(**fields)
        except IntegrityError:
            return None
    else:
        row = Notification.objects.create(**fields)
    from medimeet.core.tasks import deliver_notification

    enqueue_on_commit(deliver_notification, notification_id=row.pk)
    return row


def notification_resend(*, notification: Notification, by, request=None) -> Notification:
    """Staff: send a stored message again, as a new log row pointing at the original."""
    copy = notification_queue(
        user=notification.user,
        to=notification.to,
        channel=notification.channel,
        event=notification.event,
        template=notification.template,
        language=notification.language,
        subject=notification.subject,
        text_body=notification.text_body,
        html_body=notification.html_body,
        attachments=attachments_of(notification),
        resent_from=notification,
    )
    audit_record(action="notification.resent", actor=by, target=notification, subject_user=notification.user, request=request, metadata={"copy": copy.pk, "event": notification.event})
    return copy


def attachments_of(notification: Notification) -> list[Attachment]:
    if not notification.attachments:
        return []
    return [Attachment(a["name"], base64.b64decode(a["content"]), a["mimetype"]) for a in json.loads(notification.attachments)]


# --- Delivery -------------------------------------------------------------------------------

SENT, RETRY, SKIPPED, FAILED = "sent", "retry", "skipped", "failed"


def notification_deliver(*, notification_id: int, final_attempt: bool) -> str:
    """Hand one queued message to the mail server. Claimed first by a conditional update (queued,
    or "sending" past its lease after a worker died), so concurrent or repeated runs send it
    once. Returns "sent", "retry" (the caller retries with backoff), "failed" or "skipped"."""
    now = timezone.now()
    claimed = Notification.objects.filter(Q(status=Notification.Status.QUEUED) | Q(status=Notification.Status.SENDING, claimed_at__lt=now - claim_lease()), pk=notification_id).update(
        status=Notification.Status.SENDING, claimed_at=now, attempts=F("attempts") + 1
    )
    if not claimed:
        return SKIPPED
    notification = Notification.objects.get(pk=notification_id)
    try:
        provider_id = _send_sms(notification) if notification.channel == SMS else _send_email(notification)
    except OSError as exc:  # smtplib.SMTPException is an OSError
        error = f"{type(exc).__name__}: {exc}"[:500]
        status = Notification.Status.FAILED if final_attempt else Notification.Status.QUEUED
        Notification.objects.filter(pk=notification_id).update(status=status, last_error=error, status_changed_at=timezone.now())
        # Ids and codes only: the address and bodies never enter a log line.
        logger.warning("notification delivery failed", extra={"notification_id": notification_id, "attempt": notification.attempts, "final": final_attempt})
        return FAILED if final_attempt else RETRY
    Notification.objects.filter(pk=notification_id).update(status=Notification.Status.SENT, sent_at=timezone.now(), status_changed_at=timezone.now(), provider_message_id=provider_id[:255], last_error="")
    return SENT


MAX_BACKOFF_SECONDS = 1800  # the retry countdown's cap (tasks.deliver_notification)


def notifications_requeue_stalled(*, limit: int = 500) -> int:
    """Every minute (beat): queue the delivery again of messages whose task is gone: never tried
    long after they were stored (the broker was down at commit), waiting for a retry longer
    than any backoff (the retry was lost), or "sending" past the claim lease (the worker was
    killed). Delivery claims the row, so a message whose task was only slow is still sent once."""
    from medimeet.core.tasks import deliver_notification

    now = timezone.now()
    late = now - timedelta(seconds=settings.NOTIFICATION_REQUEUE_AFTER_SECONDS)
    stalled = (
        Q(status=Notification.Status.QUEUED, attempts=0, created_at__lt=late)
        | Q(status=Notification.Status.QUEUED, attempts__gt=0, status_changed_at__lt=late - timedelta(seconds=MAX_BACKOFF_SECONDS))
        | Q(status=Notification.Status.SENDING, claimed_at__lt=now - claim_lease())
    )
    ids = list(Notification.objects.filter(stalled).order_by("created_at").values_list("pk", flat=True)[:limit])
    queued = 0
    for pk in ids:
        if not task_enqueue(deliver_notification, notification_id=pk):
            break  # the broker is still down: the next scan tries again
        queued += 1
    if queued:
        logger.info("stalled notifications queued again", extra={"count": queued})
    return queued


def _send_sms(notification: Notification) -> str:
    callback = settings.SITE_URL + reverse("api-v1:notifications:sms-status")
    return sms_backend().send(to=notification.to, body=notification.text_body, status_callback=callback)


def notification_status_update(*, provider_message_id: str, status: str, error: str = "") -> int:
    """A provider's delivery report (Twilio's status callback): sent → delivered, bounced or
    failed. Reports for unknown ids change nothing. Returns the rows changed."""
    if status not in (Notification.Status.DELIVERED, Notification.Status.BOUNCED, Notification.Status.FAILED) or not provider_message_id:
        return 0
    changes = {"status": status, "status_changed_at": timezone.now()}
    if error:
        changes["last_error"] = error[:500]
    return Notification.objects.filter(provider_message_id=provider_message_id, channel=SMS).exclude(status=status).update(**changes)


def _send_email(notification: Notification) -> str:
    message_id = make_msgid(domain=urlsplit(settings.SITE_URL).hostname or "medimeet.local")
    message = EmailMultiAlternatives(
        subject=notification.subject,
        body=notification.text_body,
        from_email=settings.DEFAULT_FROM_EMAIL,
        to=[notification.to],
        headers={**notification.headers, "Message-ID": message_id, "X-MediMeet-Notification": str(notification.public_id)},
        connection=get_connection(fail_silently=False),
    )
    if notification.html_body:
        message.attach_alternative(notification.html_body, "text/html")
    for attachment in attachments_of(notification):
        message.attach(attachment.name, attachment.content, attachment.mimetype)
    message.send()
    return message_id


def notify_address(*, to: str, event: str, context: dict[str, Any], language: str | None = None) -> Notification | None:
    """A message to someone without an account (a guest invited to a consultation), in the
    language of whoever caused it: logged and delivered like every other."""
    definition = EVENTS[event]
    with recipient_locale(None, language):
        email = render_email(event=definition, user=None, context=context)
    return notification_queue(
        user=None, to=to, channel=EMAIL, event=event, template=definition.template, subject=email.subject, text_body=email.text, html_body=email.html, language=language
    )


def email_with_html(*, user, to: str, event: str, subject: str, text_body: str, html_body: str | None, language: str | None = None) -> Notification | None:
    """Queue an email rendered elsewhere (allauth renders its own templates); a text-only one
    gets the branded HTML layout around its text."""
    definition = EVENTS[event]
    with recipient_locale(user, language):
        html = html_body or html_from_text(subject=subject, text=text_body, user=user, event=definition)
    return notification_queue(user=user, to=to, channel=EMAIL, event=event, subject=subject, text_body=text_body, html_body=html, language=language)
