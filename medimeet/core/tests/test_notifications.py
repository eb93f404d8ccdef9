"""The notification layer: notify → Notification row → delivery task (after commit)."""

from __future__ import annotations

import json
from datetime import timedelta
from unittest import mock

import pytest
from django.core import mail
from django.db import transaction
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from accounts.tests.factories import UserFactory
from appointments.services import DOCTOR_HEADLINES
from medimeet.core.models import AuditEvent, Notification, NotificationPreference
from medimeet.core.notifications import Attachment, notify
from medimeet.core.notifications.services import claim_lease, notification_deliver, notification_resend, preferences_update
from medimeet.core.tasks import deliver_notification

from .notification_samples import cast, context_for

pytestmark = pytest.mark.django_db


@pytest.fixture
def people():
    return cast()


def send(event, people, **kwargs):
    user, context = context_for(event, people)
    return notify(user=user, event=event, context=context, **kwargs)


def test_notify_stores_the_message_and_sends_it_after_commit(people, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        [row] = send("appointment.update", people, attachments=[Attachment("visit.ics", b"BEGIN:VCALENDAR", "text/calendar")])
        assert mail.outbox == []  # nothing leaves before the transaction commits

    row.refresh_from_db()
    assert len(callbacks) == 1
    assert (row.user, row.to, row.channel, row.event, row.language, row.status, row.attempts) == (people["patient"], "asha@example.com", "email", "appointment.update", "en", "sent", 1)
    assert row.provider_message_id == mail.outbox[0].extra_headers["Message-ID"]
    [message] = mail.outbox
    assert message.to == ["asha@example.com"]
    assert message.subject == "MediMeet: Your appointment is confirmed"
    assert "Monday 2 November 2026, 14:30 (Asia/Kolkata) (09:00 in Europe/London for the doctor)" in message.body
    assert message.attachments == [("visit.ics", "BEGIN:VCALENDAR", "text/calendar")]
    assert message.extra_headers["X-MediMeet-Notification"] == str(row.public_id)


def test_a_rolled_back_transaction_sends_nothing_and_keeps_no_row(people, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        with pytest.raises(RuntimeError), transaction.atomic():
            send("appointment.update", people)
            raise RuntimeError("booking failed")

    assert callbacks == []
    assert Notification.objects.count() == 0
    assert mail.outbox == []


def test_delivering_twice_sends_once(people, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        [row] = send("appointment.update", people)

    assert deliver_notification.apply(kwargs={"notification_id": row.pk}).get() == "skipped"
    assert len(mail.outbox) == 1
    assert Notification.objects.get(pk=row.pk).attempts == 1


def test_a_message_left_sending_by_a_dead_worker_is_sent_after_the_lease(people):
    [row] = send("appointment.update", people)  # not committed → not delivered yet
    Notification.objects.filter(pk=row.pk).update(status="sending", claimed_at=timezone.now() - claim_lease() + timedelta(seconds=5))
    assert notification_deliver(notification_id=row.pk, final_attempt=False) == "skipped"

    Notification.objects.filter(pk=row.pk).update(claimed_at=timezone.now() - claim_lease() - timedelta(seconds=1))
    assert notification_deliver(notification_id=row.pk, final_attempt=False) == "sent"
    assert len(mail.outbox) == 1


def test_a_failing_backend_is_retried_then_marked_failed_with_the_error(people, settings, django_capture_on_commit_callbacks):
    with mock.patch("django.core.mail.backends.locmem.EmailBackend.send_messages", side_effect=ConnectionRefusedError("connection refused")):
        with django_capture_on_commit_callbacks(execute=True):
            [row] = send("appointment.update", people)

    row.refresh_from_db()
    assert (row.status, row.attempts, row.last_error) == ("failed", settings.NOTIFICATION_MAX_RETRIES + 1, "ConnectionRefusedError: connection refused")
    assert mail.outbox == []


def test_the_message_is_rendered_in_the_recipients_zone_with_the_other_partys_time(people, django_capture_on_commit_callbacks):
    user, context = context_for("appointment.update", people)
    with django_capture_on_commit_callbacks(execute=True):
        notify(user=people["doctor"].user, event="appointment.update", context={**context, "to_doctor": True, "other_zone": "Asia/Kolkata", "headline": DOCTOR_HEADLINES["confirmed"]})

    body = mail.outbox[0].body
    assert "Monday 2 November 2026, 09:00 (Europe/London) (14:30 in Asia/Kolkata for the patient)" in body
    assert "UTC" not in body


def test_essential_mail_is_emailed_even_when_the_person_turned_email_off(people, django_capture_on_commit_callbacks):
    NotificationPreference.objects.create(user=people["patient"], channels={"appointments": [], "payments": []})
    with django_capture_on_commit_callbacks(execute=True):
        rows = send("appointment.update", people) + send("payment.receipt", people)

    assert [r.channel for r in rows] == ["email", "email"]
    assert len(mail.outbox) == 2
    assert all("List-Unsubscribe" not in m.extra_headers for m in mail.outbox)
    assert all("/notifications/unsubscribe/" not in m.body for m in mail.outbox)


def test_non_essential_mail_follows_preferences_and_carries_a_one_click_unsubscribe(people, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        send("appointment.reminder", people)
    [message] = mail.outbox
    link = message.extra_headers["List-Unsubscribe"].strip("<>")
    assert message.extra_headers["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert f"Unsubscribe from “Appointment reminders”: {link}" in message.body
    assert f'href="{link}"' in message.alternatives[0][0]

    path = link.removeprefix("http://127.0.0.1:8000")
    assert Client().get(path).status_code == 200
    assert NotificationPreference.objects.filter(user=people["patient"]).exists() is False  # GET changes nothing
    response = Client().post(path, {"List-Unsubscribe": "One-Click"})  # as a mail client does: no CSRF token

    assert response.status_code == 200
    assert NotificationPreference.objects.get(user=people["patient"]).channels == {"reminders": []}
    assert AuditEvent.objects.filter(action="notifications.unsubscribed", subject_user=people["patient"]).count() == 1
    mail.outbox.clear()
    assert send("appointment.reminder", people) == []
    assert mail.outbox == []


def test_an_unsubscribe_link_for_an_essential_category_or_tampered_is_refused(people):
    from django.core import signing

    from medimeet.core.notifications.services import UNSUBSCRIBE_SALT

    essential = signing.dumps({"u": str(people["patient"].public_id), "c": "payments"}, salt=UNSUBSCRIBE_SALT, compress=True)
    forged = signing.dumps({"u": str(people["patient"].public_id), "c": "reminders"}, salt="another-salt", compress=True)

    for token in (essential, forged, "nonsense"):
        assert Client().post(reverse("notifications:unsubscribe", args=[token])).status_code == 400
    assert not NotificationPreference.objects.exists()


def test_a_dedupe_key_queues_a_message_once(people, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        first = send("payment.receipt", people, dedupe_key="receipt:1")
        second = send("payment.receipt", people, dedupe_key="receipt:1")

    assert [r.dedupe_key for r in first] == ["receipt:1:email"]
    assert second == []
    assert len(mail.outbox) == 1


def test_staff_resend_copies_the_message_with_its_attachments(people, django_capture_on_commit_callbacks):
    staff = UserFactory(role="staff", is_staff=True)
    with django_capture_on_commit_callbacks(execute=True):
        [row] = send("payment.receipt", people, attachments=[Attachment("MM-2026-000042.pdf", b"%PDF-1.4", "application/pdf")])
    with django_capture_on_commit_callbacks(execute=True):
        copy = notification_resend(notification=row, by=staff)

    assert (copy.resent_from, copy.status, copy.subject) == (row, "queued", row.subject)
    copy.refresh_from_db()
    assert copy.status == "sent"
    assert [m.subject for m in mail.outbox] == [row.subject, row.subject]
    assert mail.outbox[1].attachments == [("MM-2026-000042.pdf", b"%PDF-1.4", "application/pdf")]
    assert AuditEvent.objects.filter(action="notification.resent", actor=staff, target_id=str(row.pk)).count() == 1


def test_bodies_and_address_are_encrypted_at_rest(people):
    from django.db import connection

    [row] = send("appointment.update", people)
    with connection.cursor() as cursor:
        cursor.execute("SELECT " + ", ".join(f'"{c}"' for c in ("to", "text_body", "html_body")) + " FROM core_notification WHERE id = %s", [row.pk])
        stored = cursor.fetchone()
    # Markers with a space or "@", which base64 ciphertext never contains (a short name could
    # turn up in a random token by chance).
    assert all("Asha Verma" not in value and "Priya Raman" not in value and "@example.com" not in value for value in stored)
    assert all(value.startswith("gAAAAA") for value in stored if value)  # Fernet tokens


def test_preferences_refuse_unknown_categories_channels_and_offsets(people):
    from medimeet.core.errors import ApplicationError

    with pytest.raises(ApplicationError) as error:
        preferences_update(user=people["patient"], channels={"marketing": ["email"], "reminders": ["pigeon"]}, reminder_offsets=[1, 60])
    assert error.value.fields == {"channels": ["Unknown category or channel: marketing.", "Unknown category or channel: reminders."], "reminder_offsets": ["Choose up to six reminders, each from 5 minutes to 7 days before."]}
    assert not NotificationPreference.objects.exists()


def test_the_log_never_holds_the_address_or_the_body(people, caplog):
    with mock.patch("django.core.mail.backends.locmem.EmailBackend.send_messages", side_effect=OSError("boom")):
        [row] = send("appointment.update", people)
        notification_deliver(notification_id=row.pk, final_attempt=False)

    logged = json.dumps([r.__dict__ for r in caplog.records], default=str)
    assert "notification delivery failed" in logged
    assert "asha@example.com" not in logged and "Priya" not in logged
