"""Text messages: a number proved by a code, reminders by SMS only to it and only when chosen,
the outbox backend of the embedded default, Twilio's API against recorded answers, and Twilio's
signed status callbacks."""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
from datetime import UTC, datetime, timedelta

import pytest
import responses
import time_machine
from django.test import Client
from rest_framework.test import APIClient

from appointments.tests.test_reminders import START, book, scan_at
from medimeet.core.models import AuditEvent, Notification, NotificationPreference
from medimeet.core.notifications.services import notification_deliver
from medimeet.core.sms import SmsError, TwilioSmsBackend

pytestmark = pytest.mark.django_db

TWILIO_SENT = {
    "sid": "SM3f1e2d4c5b6a79880123456789abcdef",
    "status": "queued",
    "to": "+447911123456",
    "from": "+15005550006",
    "body": "…",
    "num_segments": "1",
    "date_created": "Sat, 21 Nov 2026 10:00:00 +0000",
    "error_code": None,
    "error_message": None,
    "uri": "/2010-04-01/Accounts/AC0123456789abcdef0123456789abcdef/Messages/SM3f1e2d4c5b6a79880123456789abcdef.json",
}
TWILIO_INVALID_NUMBER = {"code": 21211, "message": "The 'To' number +447700900 is not a valid phone number.", "more_info": "https://www.twilio.com/docs/errors/21211", "status": 400}
TWILIO_URL = "https://api.twilio.com/2010-04-01/Accounts/AC0123456789abcdef0123456789abcdef/Messages.json"


@pytest.fixture
def sms_outbox(settings, tmp_path):
    settings.SMS_BACKEND = "medimeet.core.sms.OutboxSmsBackend"
    settings.SMS_OUTBOX_DIR = tmp_path / "sms"
    return settings.SMS_OUTBOX_DIR


@pytest.fixture
def twilio(settings):
    settings.SMS_BACKEND = "medimeet.core.sms.TwilioSmsBackend"
    settings.TWILIO_ACCOUNT_SID = "AC0123456789abcdef0123456789abcdef"
    settings.TWILIO_AUTH_TOKEN = "twilio-test-auth-token"
    settings.TWILIO_FROM_NUMBER = "+15005550006"
    with responses.RequestsMock() as rsps:
        yield rsps


def texts(outbox) -> list[tuple[str, str]]:
    return [tuple(p.read_text().split("\n\n", 1)) for p in sorted(outbox.glob("*.txt"))] if outbox.exists() else []


def code_from(outbox) -> str:
    return re.search(r"\b(\d{6})\b", texts(outbox)[-1][1]).group(1)


def signed(url: str, params: dict, token: str = "twilio-test-auth-token") -> str:
    payload = url + "".join(f"{k}{params[k]}" for k in sorted(params))
    return base64.b64encode(hmac.new(token.encode(), payload.encode(), hashlib.sha1).digest()).decode()


def test_a_number_is_confirmed_by_the_code_texted_to_it_then_reminders_can_go_by_sms(client, sms_outbox, django_capture_on_commit_callbacks):
    appointment = book()
    patient = appointment.patient
    client.force_login(patient)

    with django_capture_on_commit_callbacks(execute=True):
        client.post("/notifications/preferences/phone/", {"action": "send", "number": "+44 7911 123456"})
    before = client.get("/notifications/preferences/").content.decode()
    wrong = client.post("/notifications/preferences/phone/", {"action": "confirm", "code": "000000" if code_from(sms_outbox) != "000000" else "111111"}, follow=True)
    client.post("/notifications/preferences/phone/", {"action": "confirm", "code": code_from(sms_outbox)})
    after = client.get("/notifications/preferences/").content.decode()

    [(to, body)] = texts(sms_outbox)
    assert to == "To: +447911123456"
    assert "is your MediMeet code to confirm this phone number" in body
    assert 'value="sms"' not in before and "We texted a six-digit code to" in before
    assert "That code is not right." in wrong.content.decode()
    assert "+44••••••••56" in after and 'value="sms"' in after
    preference = NotificationPreference.objects.get(user=patient)
    assert preference.verified_sms_number == "+447911123456" and preference.sms_code_hash == ""
    assert code_from(sms_outbox) not in preference.sms_code_hash  # only an HMAC was ever stored
    assert {"notifications.sms_code_sent", "notifications.sms_number_verified"} <= set(AuditEvent.objects.filter(actor=patient).values_list("action", flat=True))

    # When they choose text messages for reminders, the reminder goes by SMS too, to that number
    client.post("/notifications/preferences/", {"reminder_offsets": "24h, 1h", "language": "en", "channels_reminders": ["email", "sms"]})
    scan_at(START - timedelta(hours=24), django_capture_on_commit_callbacks)

    sms = Notification.objects.get(user=patient, event="appointment.reminder", channel="sms")
    assert (sms.to, sms.status) == ("+447911123456", "sent")
    [(to, reminder)] = [text for text in texts(sms_outbox) if "reminder" in text[1]]
    assert to == "To: +447911123456"
    assert reminder.startswith(f"MediMeet reminder: Video consultation with {appointment.doctor.display_name}, Monday 2 November 2026, 14:30 (Asia/Kolkata). http")
    assert Notification.objects.filter(user=patient, event="appointment.reminder", channel="email").count() == 1


def test_without_a_confirmed_number_nobody_gets_a_text(sms_outbox, django_capture_on_commit_callbacks):
    appointment = book()
    NotificationPreference.objects.create(user=appointment.patient, channels={"reminders": ["email", "sms"]}, sms_number="+447911123456")  # never confirmed

    scan_at(START - timedelta(hours=24), django_capture_on_commit_callbacks)

    assert not Notification.objects.filter(channel="sms").exists()
    assert texts(sms_outbox) == []


def test_sms_cannot_be_chosen_before_a_number_is_confirmed():
    patient = book().patient
    api = APIClient()
    api.force_authenticate(patient)

    response = api.patch("/api/v1/notifications/preferences/", {"channels": {"reminders": ["email", "sms"]}}, format="json")

    assert response.status_code == 400 and "Verify a phone number" in response.json()["error"]["fields"]["channels"][0]
    assert "sms" not in NotificationPreference.objects.get_or_create(user=patient)[0].channels.get("reminders", [])


def test_codes_are_limited_in_time_tries_and_frequency(sms_outbox, django_capture_on_commit_callbacks):
    patient = book().patient
    api = APIClient()
    api.force_authenticate(patient)
    moment = datetime(2026, 11, 1, 10, 0, tzinfo=UTC)

    with time_machine.travel(moment, tick=False):
        with django_capture_on_commit_callbacks(execute=True):
            assert api.post("/api/v1/notifications/sms/", {"number": "07911 123456"}, format="json").json()["error"]["code"] == "NTF_001"
            assert api.post("/api/v1/notifications/sms/", {"number": "+44 7911 123456"}, format="json").status_code == 202
        again = api.post("/api/v1/notifications/sms/", {"number": "+44 7911 123456"}, format="json")
        for _ in range(5):
            api.post("/api/v1/notifications/sms/verify/", {"code": "999999" if code_from(sms_outbox) != "999999" else "888888"}, format="json")
        locked = api.post("/api/v1/notifications/sms/verify/", {"code": code_from(sms_outbox)}, format="json")
    with time_machine.travel(moment + timedelta(minutes=2), tick=False), django_capture_on_commit_callbacks(execute=True):
        assert api.post("/api/v1/notifications/sms/", {"number": "+44 7911 123456"}, format="json").status_code == 202
    with time_machine.travel(moment + timedelta(minutes=13), tick=False):
        expired = api.post("/api/v1/notifications/sms/verify/", {"code": code_from(sms_outbox)}, format="json")

    assert again.status_code == 429 and again.json()["error"]["code"] == "NTF_002"
    assert locked.status_code == 429 and locked.json()["error"]["code"] == "NTF_004"
    assert expired.status_code == 400 and expired.json()["error"]["message"] == "The code has expired. Ask for a new one."
    assert NotificationPreference.objects.get(user=patient).sms_verified_at is None
    assert len(texts(sms_outbox)) == 2


def test_removing_the_number_stops_texts_and_unticks_sms(sms_outbox, django_capture_on_commit_callbacks):
    patient = book().patient
    NotificationPreference.objects.create(user=patient, channels={"reminders": ["email", "sms"]}, sms_number="+447911123456", sms_verified_at=START)
    api = APIClient()
    api.force_authenticate(patient)

    assert api.delete("/api/v1/notifications/sms/").status_code == 204

    preference = NotificationPreference.objects.get(user=patient)
    assert (preference.sms_number, preference.sms_verified_at, preference.channels) == ("", None, {"reminders": ["email"]})


def test_twilio_sends_with_the_account_credentials_and_returns_its_message_id(twilio):
    twilio.add(responses.POST, TWILIO_URL, json=TWILIO_SENT, status=201)

    sid = TwilioSmsBackend().send(to="+447911123456", body="Hello", status_callback="http://127.0.0.1:8000/api/v1/notifications/sms/status/")

    assert sid == "SM3f1e2d4c5b6a79880123456789abcdef"
    [call] = twilio.calls
    assert call.request.headers["Authorization"] == "Basic " + base64.b64encode(b"AC0123456789abcdef0123456789abcdef:twilio-test-auth-token").decode()
    assert "To=%2B447911123456" in call.request.body and "From=%2B15005550006" in call.request.body and "StatusCallback=" in call.request.body


def test_a_refused_text_is_retried_then_marked_failed_with_twilios_reason(twilio):
    twilio.add(responses.POST, TWILIO_URL, json=TWILIO_INVALID_NUMBER, status=400)
    patient = book().patient
    row = Notification.objects.create(user=patient, to="+447700900", channel="sms", event="appointment.reminder", language="en", text_body="Reminder")

    first = notification_deliver(notification_id=row.pk, final_attempt=False)
    last = notification_deliver(notification_id=row.pk, final_attempt=True)

    row.refresh_from_db()
    assert (first, last) == ("retry", "failed")
    assert (row.status, row.attempts) == ("failed", 2)
    assert row.last_error.startswith("SmsError: Twilio 400: 21211")
    with pytest.raises(SmsError):
        TwilioSmsBackend().send(to="+447700900", body="x")


def test_twilio_status_callbacks_are_verified_and_move_the_message_on(twilio, settings):
    patient = book().patient
    row = Notification.objects.create(user=patient, to="+447911123456", channel="sms", event="appointment.reminder", language="en", text_body="Reminder", status="sent", provider_message_id="SM3f1e")
    url = f"{settings.SITE_URL}/api/v1/notifications/sms/status/"
    delivered = {"MessageSid": "SM3f1e", "MessageStatus": "delivered", "AccountSid": settings.TWILIO_ACCOUNT_SID}
    client = Client()

    forged = client.post("/api/v1/notifications/sms/status/", {**delivered, "MessageStatus": "failed"}, HTTP_X_TWILIO_SIGNATURE=signed(url, delivered))
    row.refresh_from_db()
    assert forged.status_code == 403 and forged.json()["error"]["code"] == "NTF_005" and row.status == "sent"

    ok = client.post("/api/v1/notifications/sms/status/", delivered, HTTP_X_TWILIO_SIGNATURE=signed(url, delivered))
    unknown = {**delivered, "MessageSid": "SMnope"}
    other = client.post("/api/v1/notifications/sms/status/", unknown, HTTP_X_TWILIO_SIGNATURE=signed(url, unknown))

    row.refresh_from_db()
    assert ok.status_code == other.status_code == 204
    assert row.status == "delivered"
    assert Notification.objects.filter(status="delivered").count() == 1


@pytest.mark.parametrize(
    ("typed", "stored"),
    [("+44 7911 123456", "+447911123456"), ("0044 (7911) 123-456", "+447911123456"), ("+91 98765 43210", "+919876543210"), ("+1 412 555 0123", "+14125550123")],
)
def test_a_number_is_stored_in_e164_whatever_way_it_was_typed(typed, stored):
    from medimeet.core.notifications.phone import sms_number_normalise

    assert sms_number_normalise(typed) == stored


@pytest.mark.parametrize("typed", ["07911 123456", "+44 7700 900123", "+91 12345", "+1 555 0100", "call me", ""])
def test_a_number_that_is_not_a_real_one_for_its_country_is_refused(typed):
    from medimeet.core.errors import ApplicationError
    from medimeet.core.notifications.phone import sms_number_normalise

    with pytest.raises(ApplicationError) as refused:
        sms_number_normalise(typed)

    assert refused.value.code == "NTF_001" and "number" in refused.value.fields
