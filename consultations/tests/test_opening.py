""""Your consultation room is open": told once to each party when the room opens, with the join link."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.core import mail
from django.utils import timezone

from consultations.services import consultations_announce_opening
from consultations.tests.test_consumer import booked
from medimeet.core.models import Notification, NotificationPreference

pytestmark = pytest.mark.django_db


def test_both_parties_are_told_once_when_the_room_opens_with_the_link(django_capture_on_commit_callbacks):
    appointment = booked(start_in=timedelta(minutes=14))
    later = booked(start_in=timedelta(minutes=40))

    with django_capture_on_commit_callbacks(execute=True):
        first = consultations_announce_opening()
    with django_capture_on_commit_callbacks(execute=True):
        again = consultations_announce_opening()

    assert (first, again) == (2, 0)
    assert sorted(m.to[0] for m in mail.outbox) == sorted([appointment.patient.email, appointment.doctor.user.email])
    assert all(f"/consultations/{appointment.consultation.room}/" in m.body for m in mail.outbox)
    assert not Notification.objects.filter(user__in=[later.patient, later.doctor.user]).exists()


def test_no_message_for_cancelled_in_person_or_long_gone_appointments(django_capture_on_commit_callbacks):
    booked(start_in=timedelta(minutes=14), status="cancelled")
    clinic = booked(start_in=timedelta(minutes=14))
    clinic.service.mode = "clinic"
    clinic.service.save(update_fields=["mode"])
    booked(start_in=timedelta(minutes=2))  # opened 13 minutes ago: the scan was down, too late now

    with django_capture_on_commit_callbacks(execute=True):
        assert consultations_announce_opening() == 0

    assert mail.outbox == []


def test_people_who_switched_reminders_off_are_not_told(django_capture_on_commit_callbacks):
    appointment = booked(start_in=timedelta(minutes=14))
    NotificationPreference.objects.create(user=appointment.patient, channels={"reminders": []})

    with django_capture_on_commit_callbacks(execute=True):
        consultations_announce_opening(now=timezone.now())

    assert [m.to[0] for m in mail.outbox] == [appointment.doctor.user.email]
