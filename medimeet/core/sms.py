"""Text messages: one small backend interface, the local outbox of the embedded default and
Twilio's REST API for production (``SMS_BACKEND``; Twilio when its account is configured).

The notification layer (notifications/services.py) is the only caller: it stores each message
as a ``Notification`` and hands it to ``sms_backend().send()``; Twilio's status callbacks
(``twilio_signature_valid``) then move it to delivered or failed.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from datetime import datetime
from functools import lru_cache
from pathlib import Path

import requests
from django.conf import settings
from django.utils.module_loading import import_string


class SmsError(OSError):
    """The provider did not take the message. An OSError, like SMTP's errors, so the delivery
    task retries it with backoff and finally marks it failed."""


class SmsBackend:
    def send(self, *, to: str, body: str, status_callback: str = "") -> str:
        """Send ``body`` to ``to`` (E.164); return the provider's message id."""
        raise NotImplementedError


class OutboxSmsBackend(SmsBackend):
    """The embedded default: each message is a file in ``SMS_OUTBOX_DIR`` (var/sms-outbox/)."""

    def send(self, *, to: str, body: str, status_callback: str = "") -> str:
        directory = Path(settings.SMS_OUTBOX_DIR)
        directory.mkdir(parents=True, exist_ok=True)
        message_id = f"outbox-{datetime.now():%Y%m%d-%H%M%S}-{secrets.token_hex(4)}"
        (directory / f"{message_id}.txt").write_text(f"To: {to}\n\n{body}\n", encoding="utf-8")
        return message_id


class TwilioSmsBackend(SmsBackend):
    """Twilio's Messages API (POST /2010-04-01/Accounts/<sid>/Messages.json, basic auth)."""

    api = "https://api.twilio.com/2010-04-01"

    def send(self, *, to: str, body: str, status_callback: str = "") -> str:
        data = {"To": to, "From": settings.TWILIO_FROM_NUMBER, "Body": body}
        if status_callback:
            data["StatusCallback"] = status_callback
        try:
            response = requests.post(
                f"{self.api}/Accounts/{settings.TWILIO_ACCOUNT_SID}/Messages.json",
                data=data,
                auth=(settings.TWILIO_ACCOUNT_SID, settings.TWILIO_AUTH_TOKEN),
                timeout=10,
            )
        except requests.RequestException as exc:
            raise SmsError(f"Twilio unreachable: {type(exc).__name__}") from exc
        payload = response.json() if response.headers.get("Content-Type", "").startswith("application/json") else {}
        if response.status_code >= 400 or not payload.get("sid"):
            # Twilio's error code and message name the problem, never the number or the body.
            raise SmsError(f"Twilio {response.status_code}: {payload.get('code', '')} {payload.get('message', '')}".strip())
        return payload["sid"]


@lru_cache(maxsize=4)
def _backend(path: str) -> SmsBackend:
    return import_string(path)()


def sms_backend() -> SmsBackend:
    return _backend(settings.SMS_BACKEND)


# Twilio's statuses → ours (Notification.Status).
TWILIO_STATUSES = {"delivered": "delivered", "undelivered": "bounced", "failed": "failed"}


def twilio_signature_valid(*, url: str, params: dict[str, str], signature: str) -> bool:
    """Twilio signs a callback with HMAC-SHA1 (the auth token) over the full URL followed by
    each POST parameter's name and value, sorted by name, base64-encoded."""
    if not settings.TWILIO_AUTH_TOKEN or not signature:
        return False
    payload = url + "".join(f"{name}{params[name]}" for name in sorted(params))
    expected = base64.b64encode(hmac.new(settings.TWILIO_AUTH_TOKEN.encode(), payload.encode(), hashlib.sha1).digest()).decode()
    return hmac.compare_digest(expected, signature)
