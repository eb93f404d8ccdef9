"""System announcements: staff write once, for everyone, patients, doctors or one person; a
banner in the portals until each person dismisses it; emailed once per person when asked."""

from __future__ import annotations

from datetime import timedelta

import pytest
from allauth.mfa.models import Authenticator
from django.contrib.auth.models import Permission
from django.core import mail
from django.core.exceptions import ValidationError
from django.test import Client
from django.utils import timezone
from rest_framework.test import APIClient

from accounts.models import User
from accounts.tests.factories import DoctorFactory, StaffFactory, UserFactory
from medimeet.core.models import Announcement, AnnouncementDismissal, AuditEvent, NotificationPreference
from medimeet.core.notifications.announcements import announcement_save, announcement_send_emails, announcements_for

pytestmark = pytest.mark.django_db


def announce(by=None, **fields) -> Announcement:
    values = {"kind": "maintenance", "title": "Planned maintenance on Sunday", "body": "Video rooms close from 02:00 to 03:00 UTC.", "starts_at": timezone.now() - timedelta(minutes=1), **fields}
    return announcement_save(announcement=Announcement(**values), by=by or StaffFactory())


def banner_of(user) -> str:
    client = Client()
    client.force_login(user)
    return client.get("/notifications/").content.decode()


def test_each_audience_sees_only_what_is_addressed_to_it():
    patient, doctor, other = UserFactory(), DoctorFactory(), UserFactory()
    everyone = announce(title="For everyone")
    patients = announce(title="For patients", audience="patients")
    doctors = announce(title="For doctors", audience="doctors")
    one = announce(title="Just for you", audience="user", user=patient)

    assert set(announcements_for(user=patient)) == {everyone, patients, one}
    assert set(announcements_for(user=doctor)) == {everyone, doctors}
    assert set(announcements_for(user=other)) == {everyone, patients}
    page = banner_of(patient)
    assert "Just for you" in page and "For patients" in page and "For doctors" not in page


def test_not_yet_started_and_ended_announcements_are_not_shown():
    patient = UserFactory()
    announce(title="Later", starts_at=timezone.now() + timedelta(hours=1))
    announce(title="Over", starts_at=timezone.now() - timedelta(days=2), ends_at=timezone.now() - timedelta(days=1))

    assert list(announcements_for(user=patient)) == []
    assert "mm-announcement" not in banner_of(patient)


def test_dismissing_hides_it_for_that_person_only_and_returns_to_the_page():
    patient, other = UserFactory(), UserFactory()
    announcement = announce()
    client = Client()
    client.force_login(patient)

    response = client.post(f"/notifications/announcements/{announcement.pk}/dismiss/", {"next": "/appointments/"})
    hostile = client.post(f"/notifications/announcements/{announcement.pk}/dismiss/", {"next": "https://evil.example/"})

    assert response.status_code == 302 and response["Location"] == "/appointments/"
    assert hostile["Location"] == "/"
    assert "Planned maintenance" not in banner_of(patient)
    assert "Planned maintenance" in banner_of(other)
    assert AnnouncementDismissal.objects.filter(user=patient).count() == 1


def test_the_api_lists_and_dismisses_and_refuses_announcements_not_for_you():
    patient, doctor = UserFactory(), DoctorFactory()
    mine = announce(title="For patients", audience="patients")
    theirs = announce(title="For doctors", audience="doctors")
    api = APIClient()
    api.force_authenticate(patient)

    listed = api.get("/api/v1/notifications/announcements/").json()
    refused = api.post(f"/api/v1/notifications/announcements/{theirs.pk}/dismiss/")
    dismissed = api.post(f"/api/v1/notifications/announcements/{mine.pk}/dismiss/")

    assert [a["title"] for a in listed] == ["For patients"]
    assert refused.status_code == 404 and refused.json()["error"]["code"] == "REQ_004"
    assert dismissed.status_code == 204
    assert api.get("/api/v1/notifications/announcements/").json() == []
    assert list(AnnouncementDismissal.objects.values_list("announcement__title", "user")) == [("For patients", patient.pk)]
    assert not AnnouncementDismissal.objects.filter(user=doctor).exists()


def test_the_email_goes_once_to_each_active_person_it_is_for(django_capture_on_commit_callbacks):
    patients = [UserFactory(), UserFactory()]
    DoctorFactory()
    StaffFactory()
    blocked = UserFactory()
    User.objects.filter(pk=blocked.pk).update(status=User.Status.BLOCKED, blocked_at=timezone.now())

    with django_capture_on_commit_callbacks(execute=True):
        announcement = announce(audience="patients", send_email=True)
    with django_capture_on_commit_callbacks(execute=True):
        again = announcement_send_emails(announcement_id=announcement.pk)

    assert sorted(m.to[0] for m in mail.outbox) == sorted(p.email for p in patients)
    assert again == 0
    assert all("Planned maintenance on Sunday" in m.subject for m in mail.outbox)
    announcement.refresh_from_db()
    assert announcement.emailed_at is not None


def test_new_feature_mail_respects_an_opt_out_but_security_alerts_do_not(django_capture_on_commit_callbacks):
    patient = UserFactory()
    NotificationPreference.objects.create(user=patient, channels={"updates": []})

    with django_capture_on_commit_callbacks(execute=True):
        announce(kind="feature", title="Invite an interpreter", send_email=True)
    with django_capture_on_commit_callbacks(execute=True):
        announce(kind="security", title="Reset your password", send_email=True)

    assert [m.subject for m in mail.outbox] == ["MediMeet notice: Reset your password"]


def test_one_person_announcements_need_that_person():
    with pytest.raises(ValidationError):
        announce(audience="user")
    assert not Announcement.objects.exists()


def test_staff_compose_in_the_admin_and_it_is_audited(client, django_capture_on_commit_callbacks):
    UserFactory(email="asha@example.org")
    staff = StaffFactory()
    staff.user_permissions.add(*Permission.objects.filter(content_type__app_label="core", codename__endswith="announcement"))
    Authenticator.objects.create(user=staff, type=Authenticator.Type.TOTP, data={"secret": "unused"})
    client.force_login(staff)
    now = timezone.localtime()

    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(
            "/admin/core/announcement/add/",
            {"kind": "service", "title": "New opening hours", "body": "Support answers from 08:00.", "audience": "all", "starts_at_0": now.strftime("%Y-%m-%d"), "starts_at_1": now.strftime("%H:%M:%S"), "send_email": "on"},
        )

    assert response.status_code == 302
    announcement = Announcement.objects.get()
    assert announcement.created_by == staff and announcement.emailed_at is not None
    assert [m.to[0] for m in mail.outbox] == ["asha@example.org"]
    assert AuditEvent.objects.filter(action="announcement.created", actor=staff).count() == 1
