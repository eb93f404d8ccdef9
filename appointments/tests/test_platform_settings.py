"""Platform settings staff change in the admin (medimeet/core/platform.py) that decide bookings:
the default cancellation policy and the default reminders. (Hold minutes: test_booking_flow_flag.)"""

# ruff: noqa: F811  (fixtures imported from the module that defines them, then requested by name)
from __future__ import annotations

from datetime import timedelta

import pytest
from constance.test import override_config

from accounts.tests.factories import UserFactory
from appointments import services
from appointments.models import DoctorSchedule
from appointments.tests.test_booking import NOW, clinic, confirmed, frozen_time  # noqa: F401 (fixtures)
from appointments.tests.test_reminders import START, book, reminders, scan_at
from medimeet.core.models import NotificationPreference

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize(("policy", "refund"), [("24:100, 2:50, 0:0", 100), ("48:100, 12:25, 0:0", 25)])
def test_the_default_cancellation_policy_is_the_platform_setting(clinic, frozen_time, policy, refund):
    start = (NOW + timedelta(days=3)).replace(hour=9)
    appointment = confirmed(clinic, start=start)
    frozen_time.move_to(start - timedelta(hours=30))

    with override_config(CANCELLATION_POLICY=policy):
        quote = services.cancellation_quote(appointment=appointment, by_role="patient")
        cancelled = services.appointment_cancel(appointment=appointment, by=appointment.patient, reason="Feeling better")

    assert (quote.refund_percent, cancelled.refund_percent) == (refund, refund)


def test_a_doctors_own_policy_still_wins_over_the_platform_default(clinic, frozen_time):
    DoctorSchedule.objects.filter(doctor=clinic["doctor"]).update(cancellation_policy=[{"min_hours": 0, "refund_percent": 100}])
    start = (NOW + timedelta(days=3)).replace(hour=9)
    appointment = confirmed(clinic, start=start)
    frozen_time.move_to(start - timedelta(hours=1))

    with override_config(CANCELLATION_POLICY="0:0"):
        quote = services.cancellation_quote(appointment=appointment, by_role="patient")

    assert quote.refund_percent == 100


def test_the_default_reminders_are_the_platform_setting(django_capture_on_commit_callbacks):
    appointment = book()

    with override_config(REMINDER_OFFSETS="2h"):
        new_person_default = NotificationPreference(user=UserFactory()).reminder_offsets
        scan_at(START - timedelta(hours=24), django_capture_on_commit_callbacks)
        scan_at(START - timedelta(hours=2), django_capture_on_commit_callbacks)

    assert new_person_default == [120]
    assert reminders() == sorted([(appointment.patient.email, "120:email"), (appointment.doctor.user.email, "120:email")])


def test_a_stored_value_that_cannot_be_used_falls_back_to_the_built_in_default(clinic, frozen_time, caplog):
    from constance import config

    start = (NOW + timedelta(days=3)).replace(hour=9)
    appointment = confirmed(clinic, start=start)
    frozen_time.move_to(start - timedelta(hours=30))
    config.CANCELLATION_POLICY = "tomorrow:lots"  # written past the admin's validation (a shell)
    config.BOOKING_HOLD_MINUTES = 0

    quote = services.cancellation_quote(appointment=appointment, by_role="patient")
    hold = services.appointment_hold(patient=UserFactory(), service=clinic["service"], start=start + timedelta(hours=1))

    assert quote.refund_percent == 100  # 24:100, 2:50, 0:0
    assert hold.hold_expires_at == (start - timedelta(hours=30)) + timedelta(minutes=10)
    assert "platform setting CANCELLATION_POLICY is not usable" in caplog.text
