"""Appointment reminders: each person's own offsets, sent once whatever the scan does,
following reschedules and cancellations, right across daylight-saving changes."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from django.core import mail
from django.db import close_old_connections, connection

from accounts.tests.factories import UserFactory
from appointments import services
from appointments.models import Appointment, DoctorSchedule
from doctors.tests.factories import DoctorProfileFactory, ServiceFactory
from medimeet.core.models import Notification, NotificationPreference

START = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)


def book(start: datetime = START, *, patient_zone: str = "Asia/Kolkata", doctor_zone: str = "Europe/London") -> Appointment:
    patient = UserFactory(first_name="Asha", last_name="Verma", timezone=patient_zone)
    doctor = DoctorProfileFactory(user__first_name="Priya", user__last_name="Raman", user__timezone=doctor_zone)
    DoctorSchedule.objects.create(doctor=doctor, timezone=doctor_zone)
    service = ServiceFactory(doctor=doctor, name="Video consultation", duration_minutes=30, preparation_instructions="Fast for 8 hours before.")
    end = start + timedelta(minutes=30)
    return Appointment.objects.create(doctor=doctor, patient=patient, service=service, start=start, end=end, blocked_start=start, blocked_end=end, status="confirmed", price_minor=50000, currency="INR")


def scan_at(moment: datetime, django_capture_on_commit_callbacks) -> int:
    with time_machine.travel(moment, tick=False), django_capture_on_commit_callbacks(execute=True):
        return services.reminders_send_due()


def reminders() -> list[tuple[str, str]]:
    return sorted((n.user.email, n.dedupe_key.split(":", 4)[4]) for n in Notification.objects.filter(event="appointment.reminder").select_related("user"))


@pytest.mark.django_db
def test_both_parties_get_the_default_24_hour_and_1_hour_reminders_once(django_capture_on_commit_callbacks):
    appointment = book()
    patient, doctor = appointment.patient.email, appointment.doctor.user.email

    assert scan_at(START - timedelta(hours=24, minutes=1), django_capture_on_commit_callbacks) == 0
    assert scan_at(START - timedelta(hours=24), django_capture_on_commit_callbacks) == 2
    assert scan_at(START - timedelta(hours=23, minutes=59), django_capture_on_commit_callbacks) == 0  # ran again: nothing new
    assert scan_at(START - timedelta(hours=2), django_capture_on_commit_callbacks) == 0
    assert scan_at(START - timedelta(minutes=55), django_capture_on_commit_callbacks) == 2
    assert scan_at(START - timedelta(minutes=50), django_capture_on_commit_callbacks) == 0

    assert reminders() == sorted([(patient, "1440:email"), (doctor, "1440:email"), (patient, "60:email"), (doctor, "60:email")])
    assert len(mail.outbox) == 4
    to_patient = next(m for m in mail.outbox if m.to == [patient])
    assert to_patient.subject == "Reminder: your appointment on 2 November, 14:30 (Asia/Kolkata)"
    assert "When: Monday 2 November 2026, 14:30 (Asia/Kolkata) (09:00 in Europe/London for the doctor)" in to_patient.body
    assert "How to prepare:\nFast for 8 hours before." in to_patient.body
    [(name, ics, mimetype)] = to_patient.attachments
    assert (name, mimetype) == (f"medimeet-{appointment.public_id}.ics", "text/calendar")
    assert "DTSTART;TZID=Asia/Kolkata:20261102T143000" in ics
    to_doctor = next(m for m in mail.outbox if m.to == [doctor])
    assert "Fast for 8 hours" not in to_doctor.body
    assert "When: Monday 2 November 2026, 09:00 (Europe/London) (14:30 in Asia/Kolkata for the patient)" in to_doctor.body


@pytest.mark.django_db
def test_each_person_has_their_own_offsets_and_a_late_booking_skips_passed_ones(django_capture_on_commit_callbacks):
    appointment = book()
    NotificationPreference.objects.create(user=appointment.patient, reminder_offsets=[2880, 30])
    NotificationPreference.objects.create(user=appointment.doctor.user, reminder_offsets=[])

    for hours_before in (49, 48, 24, 1, 0.5, 0.25):
        scan_at(START - timedelta(hours=hours_before), django_capture_on_commit_callbacks)

    assert reminders() == [(appointment.patient.email, "2880:email"), (appointment.patient.email, "30:email")]


@pytest.mark.django_db
def test_an_appointment_booked_two_hours_ahead_gets_only_the_one_hour_reminder(django_capture_on_commit_callbacks):
    with time_machine.travel(START - timedelta(hours=2), tick=False):
        book()

    for minutes_before in (120, 119, 61, 60, 59):
        scan_at(START - timedelta(minutes=minutes_before), django_capture_on_commit_callbacks)

    assert [key for _, key in reminders()] == ["60:email", "60:email"]


@pytest.mark.django_db
def test_a_rescheduled_appointment_is_reminded_of_its_new_time_and_a_cancelled_one_not_at_all(django_capture_on_commit_callbacks):
    moved, cancelled = book(), book(START + timedelta(hours=1))
    scan_at(START - timedelta(hours=24), django_capture_on_commit_callbacks)
    assert len(reminders()) == 2  # "moved" only: the other's 24 h moment is an hour later

    new_start = START + timedelta(days=1)
    Appointment.objects.filter(pk=moved.pk).update(start=new_start, end=new_start + timedelta(minutes=30), blocked_start=new_start, blocked_end=new_start + timedelta(minutes=30))
    Appointment.objects.filter(pk=cancelled.pk).update(status="cancelled")
    mail.outbox.clear()
    for moment in (START + timedelta(hours=1) - timedelta(hours=24), START - timedelta(hours=1), new_start - timedelta(hours=24)):
        scan_at(moment, django_capture_on_commit_callbacks)

    assert [m.to[0] for m in mail.outbox] == [moved.patient.email, moved.doctor.user.email]
    assert "Tuesday 3 November 2026, 14:30 (Asia/Kolkata)" in mail.outbox[0].body
    assert Notification.objects.filter(user=cancelled.patient).count() == 0


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("zone", "start", "reminder_at", "local"),
    [
        # London springs forward on 29 March 2026 (01:00 UTC): 24 hours before 10:00 BST is 09:00 GMT.
        ("Europe/London", datetime(2026, 3, 29, 9, 0, tzinfo=UTC), datetime(2026, 3, 28, 9, 0, tzinfo=UTC), "Sunday 29 March 2026, 10:00 (Europe/London)"),
        # New York falls back on 1 November 2026 (06:00 UTC): 24 hours before 09:00 EST is 10:00 EDT.
        ("America/New_York", datetime(2026, 11, 1, 14, 0, tzinfo=UTC), datetime(2026, 10, 31, 14, 0, tzinfo=UTC), "Sunday 1 November 2026, 09:00 (America/New_York)"),
    ],
)
def test_reminders_across_a_daylight_saving_change_are_24_real_hours_before(zone, start, reminder_at, local, django_capture_on_commit_callbacks):
    appointment = book(start, patient_zone=zone, doctor_zone=zone)
    NotificationPreference.objects.create(user=appointment.doctor.user, reminder_offsets=[])

    assert scan_at(reminder_at - timedelta(minutes=1), django_capture_on_commit_callbacks) == 0
    assert scan_at(reminder_at, django_capture_on_commit_callbacks) == 1

    [message] = mail.outbox
    assert f"When: {local}" in message.body
    assert "UTC" not in message.body


@pytest.mark.django_db(transaction=True)
def test_two_workers_scanning_at_the_same_moment_send_each_reminder_once():
    for _ in range(3):
        book()
    barrier = threading.Barrier(2)
    results: list = []

    def worker():
        try:
            barrier.wait()
            with time_machine.travel(START - timedelta(hours=24), tick=False):
                results.append(services.reminders_send_due())
        except Exception as exc:  # noqa: BLE001 - recorded, the test fails on it
            results.append(f"crash: {exc!r}")
        finally:
            close_old_connections()
            connection.close()

    threads = [threading.Thread(target=worker) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert all(isinstance(r, int) for r in results) and sum(results) == 6, results  # however the work was split
    assert Notification.objects.filter(event="appointment.reminder").count() == 6
    assert Notification.objects.filter(event="appointment.reminder").values("dedupe_key").distinct().count() == 6
    assert len(mail.outbox) == 6
