"""Pages and API of the notification layer: history, preferences, the staff outbox and the
admin delivery log with its resend action."""

from __future__ import annotations

import pytest
from allauth.mfa.models import Authenticator
from django.core import mail
from django.test import Client
from rest_framework.test import APIClient

from accounts.tests.factories import UserFactory
from medimeet.core.mail import OutboxEmailBackend
from medimeet.core.models import AuditEvent, Notification, NotificationPreference
from medimeet.core.notifications import notify

from .notification_samples import cast, context_for

pytestmark = pytest.mark.django_db


@pytest.fixture
def people():
    people = cast()
    for event in ("appointment.update", "payment.receipt"):
        user, context = context_for(event, people)
        notify(user=user, event=event, context=context)
    user, context = context_for("doctor.application_approved", people)
    notify(user=user, event="doctor.application_approved", context=context)
    return people


def signed_in(user) -> Client:
    if user.is_staff:  # staff must have TOTP set up before anything else (SessionPolicyMiddleware)
        Authenticator.objects.create(user=user, type=Authenticator.Type.TOTP, data={"secret": "unused"})
    client = Client()
    client.force_login(user)
    return client


def test_a_patient_sees_their_own_notifications_and_nobody_elses(people):
    response = signed_in(people["patient"]).get("/notifications/")

    assert response.status_code == 200
    rows = [n.subject for n in response.context["page_obj"].object_list]
    assert rows == ["MediMeet receipt MM-2026-000042: ₹500.00 paid", "MediMeet: Your appointment is confirmed"]
    assert "Payments, receipts and refunds" in response.content.decode()
    assert list(signed_in(UserFactory()).get("/notifications/").context["page_obj"].object_list) == []


def test_the_api_lists_your_notifications_in_a_constant_number_of_queries(people, django_assert_max_num_queries):
    api = APIClient()
    api.force_authenticate(people["patient"])

    with django_assert_max_num_queries(3):
        response = api.get("/api/v1/notifications/")

    assert response.status_code == 200
    body = response.json()
    assert body["count"] == 2
    assert [(r["event"], r["category"], r["channel"], r["status"], r["language"]) for r in body["results"]] == [
        ("payment.receipt", "payments", "email", "queued", "en"),
        ("appointment.update", "appointments", "email", "queued", "en"),
    ]
    assert set(body["results"][0]) == {"id", "event", "category", "channel", "subject", "language", "status", "created_at", "sent_at"}


def test_anonymous_gets_no_history():
    assert APIClient().get("/api/v1/notifications/").status_code == 401
    assert Client().get("/notifications/").status_code == 302


def test_preferences_by_api(people):
    api = APIClient()
    api.force_authenticate(people["patient"])

    assert api.get("/api/v1/notifications/preferences/").json() == {
        "channels": {"account": ["email"], "appointments": ["email"], "payments": ["email"], "reminders": ["email"], "announcements": ["email"], "updates": ["email"]},
        "reminder_offsets": [1440, 60],
        "language": "en",
    }
    response = api.patch("/api/v1/notifications/preferences/", {"channels": {"updates": []}, "reminder_offsets": [60, 2880, 15], "language": "hi"}, format="json")

    assert response.status_code == 200
    assert response.json()["channels"]["updates"] == [] and response.json()["reminder_offsets"] == [2880, 60, 15] and response.json()["language"] == "hi"
    people["patient"].refresh_from_db()
    assert people["patient"].language == "hi"


def test_invalid_preferences_by_api_change_nothing(people):
    api = APIClient()
    api.force_authenticate(people["patient"])

    response = api.patch("/api/v1/notifications/preferences/", {"reminder_offsets": [1], "language": "fr"}, format="json")

    assert response.status_code == 400
    assert response.json()["error"]["code"] == "REQ_001"
    assert set(response.json()["error"]["fields"]) == {"reminder_offsets.0", "language"}
    assert not NotificationPreference.objects.exists()


def test_the_preferences_page_saves_channels_offsets_and_language(people):
    client = signed_in(people["patient"])
    assert client.get("/notifications/preferences/").status_code == 200

    response = client.post("/notifications/preferences/", {"reminder_offsets": "2d, 1h, 15m", "channels_reminders": ["email"], "channels_updates": [], "language": "hi"})

    assert response.status_code == 302
    preference = NotificationPreference.objects.get(user=people["patient"])
    assert preference.reminder_offsets == [2880, 60, 15]
    assert preference.channels == {"reminders": ["email"], "updates": []}  # essential kinds have nothing to choose without SMS
    assert response.cookies["django_language"].value == "hi"


def test_the_preferences_page_shows_a_bad_offset_next_to_the_field(people):
    response = signed_in(people["patient"]).post("/notifications/preferences/", {"reminder_offsets": "tomorrow", "language": "en"})

    assert response.status_code == 200
    assert response.context["form"].errors == {"reminder_offsets": ["Write each time as a number and a unit, e.g. 24h, 90m or 2d."]}
    assert not NotificationPreference.objects.exists()


@pytest.fixture
def outbox(settings, tmp_path):
    settings.EMAIL_OUTBOX_DIR = tmp_path / "outbox"
    message = mail.EmailMultiAlternatives("MediMeet: Your appointment is confirmed", "Dear Asha,\nhttp://127.0.0.1:8000/appointments/1/", to=["asha@example.com"])
    message.attach_alternative("<p>Dear Asha</p><script>alert(1)</script>", "text/html")
    message.attach("visit.ics", b"BEGIN:VCALENDAR", "text/calendar")
    OutboxEmailBackend().send_messages([message])
    return next((tmp_path / "outbox").glob("*.eml")).name


def test_staff_read_the_local_outbox(outbox):
    staff = signed_in(UserFactory(role="staff", is_staff=True))

    listing = staff.get("/staff/outbox/")
    page = staff.get(f"/staff/outbox/{outbox}/")
    html = staff.get(f"/staff/outbox/{outbox}/?part=html")

    assert listing.status_code == 200 and listing.context["rows"][0]["subject"] == "MediMeet: Your appointment is confirmed"
    assert listing.context["rows"][0]["attachments"] == ["visit.ics"]
    assert page.status_code == 200 and "Dear Asha," in page.context["text"] and page.context["attachments"] == [("visit.ics", "text/calendar", 15)]
    assert html.status_code == 200 and html["Content-Security-Policy"].startswith("sandbox;")


@pytest.mark.parametrize("who", ["patient", "doctor", "anonymous"])
def test_only_staff_read_the_outbox(outbox, who):
    client = Client() if who == "anonymous" else signed_in(UserFactory(role=who))

    for path in ("/staff/outbox/", f"/staff/outbox/{outbox}/"):
        response = client.get(path)
        assert response.status_code == 302 and "/admin/login/" in response["Location"]


def test_outbox_names_cannot_leave_the_outbox_folder(outbox):
    staff = signed_in(UserFactory(role="staff", is_staff=True))
    assert staff.get("/staff/outbox/..%2F..%2Fsettings.eml/").status_code == 404
    assert staff.get("/staff/outbox/missing.eml/").status_code == 404


def test_staff_filter_the_delivery_log_and_resend_from_the_admin(people, django_capture_on_commit_callbacks):
    staff_user = UserFactory(role="staff", is_staff=True, is_superuser=True)
    staff = signed_in(staff_user)
    failed = Notification.objects.get(event="payment.receipt")
    Notification.objects.filter(pk=failed.pk).update(status="failed", last_error="SMTPDataError: 451")

    listing = staff.get("/admin/core/notification/", {"status__exact": "failed"})
    assert listing.status_code == 200
    assert [n.pk for n in listing.context["cl"].result_list] == [failed.pk]
    assert staff.get(f"/admin/core/notification/{failed.pk}/change/").status_code == 200

    with django_capture_on_commit_callbacks(execute=True):
        response = staff.post("/admin/core/notification/", {"action": "resend", "_selected_action": [failed.pk]})

    assert response.status_code == 302
    copy = Notification.objects.get(resent_from=failed)
    assert (copy.status, copy.subject) == ("sent", failed.subject)
    assert [m.subject for m in mail.outbox] == [failed.subject]
    assert AuditEvent.objects.filter(action="notification.resent", actor=staff_user).count() == 1
