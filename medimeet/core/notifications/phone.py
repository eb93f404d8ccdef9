"""The phone number text messages go to: a person enters it, we text a six-digit code, they type
it back; only then may reminders go by SMS (``NotificationPreference.verified_sms_number``).

Codes are stored as an HMAC (never in clear), expire after ``SMS_CODE_TTL_MINUTES``, may be
asked for once per ``SMS_CODE_RESEND_SECONDS`` and tried ``SMS_CODE_MAX_ATTEMPTS`` times.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from datetime import timedelta

import phonenumbers
from django.conf import settings
from django.db import transaction
from django.db.models import F
from django.utils import timezone
from django.utils.translation import gettext

from medimeet.core.audit import audit_record
from medimeet.core.errors import ApplicationError
from medimeet.core.models import NotificationPreference

from .catalogue import SMS
from .services import notify_sms


def _code_hash(user, code: str) -> str:
    return hmac.new(settings.SECRET_KEY.encode(), f"sms-code:{user.pk}:{code}".encode(), hashlib.sha256).hexdigest()


def masked(number: str) -> str:
    """+44 7700 900123 → +44••••••••23 (pages and answers never show the whole number)."""
    return f"{number[:3]}{'•' * max(0, len(number) - 5)}{number[-2:]}" if number else ""


def sms_number_normalise(raw: str) -> str:
    """The number in E.164 (+447911123456), if it is a real, dialable number for its country
    (libphonenumber's rules: length and ranges per country); NTF_001 otherwise. It must start
    with its country code (+ or 00): we text people in many countries."""
    text = (raw or "").strip()
    if text.startswith("00"):
        text = "+" + text[2:]
    try:
        number = phonenumbers.parse(text, None)
    except phonenumbers.NumberParseException:
        number = None
    if number is None or not phonenumbers.is_valid_number(number):
        raise ApplicationError("NTF_001", fields={"number": [gettext("Enter the number with its country code, e.g. +44 7700 900123.")]})
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def sms_number_start(*, user, number: str, request=None) -> NotificationPreference:
    """Text a verification code to ``number``; until it is confirmed, no message but the code
    goes there (a previously verified number stops receiving texts too)."""
    number = sms_number_normalise(number)
    now = timezone.now()
    with transaction.atomic():
        preference, _ = NotificationPreference.objects.select_for_update().get_or_create(user=user)
        if preference.sms_code_sent_at and now - preference.sms_code_sent_at < timedelta(seconds=settings.SMS_CODE_RESEND_SECONDS):
            wait = settings.SMS_CODE_RESEND_SECONDS - int((now - preference.sms_code_sent_at).total_seconds())
            raise ApplicationError("NTF_002", gettext("A code was just sent. Ask again in %(seconds)d seconds.") % {"seconds": wait}, extra={"retry_after": wait})
        code = f"{secrets.randbelow(10**6):06d}"
        preference.sms_number, preference.sms_verified_at = number, None
        preference.sms_code_hash, preference.sms_code_sent_at, preference.sms_code_attempts = _code_hash(user, code), now, 0
        preference.save()
        notify_sms(user=user, to=number, event="account.phone_code", context={"code": code, "minutes": settings.SMS_CODE_TTL_MINUTES})
        audit_record(action="notifications.sms_code_sent", actor=user, target=preference, subject_user=user, request=request)
    return preference


def sms_number_confirm(*, user, code: str, request=None) -> NotificationPreference:
    """The code typed back: the number is verified. Wrong codes count against the limit."""
    preference = NotificationPreference.objects.filter(user=user).first()
    if preference is None or not preference.sms_code_hash:
        raise ApplicationError("NTF_003", gettext("Ask for a code first."))
    if preference.sms_code_sent_at + timedelta(minutes=settings.SMS_CODE_TTL_MINUTES) < timezone.now():
        raise ApplicationError("NTF_003", gettext("The code has expired. Ask for a new one."))
    if preference.sms_code_attempts >= settings.SMS_CODE_MAX_ATTEMPTS:
        raise ApplicationError("NTF_004")
    if not hmac.compare_digest(preference.sms_code_hash, _code_hash(user, (code or "").strip())):
        NotificationPreference.objects.filter(pk=preference.pk).update(sms_code_attempts=F("sms_code_attempts") + 1)
        raise ApplicationError("NTF_003", gettext("That code is not right."), fields={"code": [gettext("That code is not right.")]})
    with transaction.atomic():
        updated = NotificationPreference.objects.filter(pk=preference.pk, sms_code_hash=preference.sms_code_hash).update(
            sms_verified_at=timezone.now(), sms_code_hash="", sms_code_attempts=0
        )
        if not updated:  # the same code confirmed twice at once, or a new one asked for meanwhile
            raise ApplicationError("NTF_003", gettext("Ask for a code first."))
        audit_record(action="notifications.sms_number_verified", actor=user, target=preference, subject_user=user, request=request)
    preference.refresh_from_db()
    return preference


def sms_number_remove(*, user, request=None) -> None:
    """No more text messages: the number is forgotten and SMS unticked everywhere."""
    with transaction.atomic():
        preference = NotificationPreference.objects.select_for_update().filter(user=user).first()
        if preference is None or not preference.sms_number:
            return
        preference.channels = {name: [c for c in chosen if c != SMS] for name, chosen in preference.channels.items()}
        preference.sms_number, preference.sms_verified_at, preference.sms_code_hash, preference.sms_code_sent_at = "", None, "", None
        preference.save()
        audit_record(action="notifications.sms_number_removed", actor=user, target=preference, subject_user=user, request=request)
