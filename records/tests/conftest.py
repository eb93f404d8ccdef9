"""The cast of every records permission test: the patient, another patient, their doctor (an
appointment inside the relationship window), another doctor, staff, and anonymous."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from rest_framework.test import APIClient

from accounts.tests.factories import StaffFactory, UserFactory
from appointments.models import Appointment
from doctors.tests.factories import DoctorProfileFactory, ServiceFactory

NOW = datetime(2026, 11, 2, 10, 0, tzinfo=UTC)


@pytest.fixture(autouse=True)
def frozen_time(request):
    if request.node.get_closest_marker("e2e"):
        yield None
        return
    with time_machine.travel(NOW, tick=False) as traveller:
        yield traveller


def appointment_between(doctor, patient, start, status="completed") -> Appointment:
    service = ServiceFactory(doctor=doctor)
    return Appointment.objects.create(
        doctor=doctor, patient=patient, service=service, start=start, end=start + timedelta(minutes=30), blocked_start=start,
        blocked_end=start + timedelta(minutes=30), status=status, price_minor=50000, currency="INR",
    )


@pytest.fixture
def cast(db):
    patient = UserFactory(first_name="Asha", last_name="Verma")
    doctor = DoctorProfileFactory(user__first_name="Priya", user__last_name="Raman", title="Dr.", licence_number="MCI-445566")
    appointment = appointment_between(doctor, patient, NOW - timedelta(days=2))
    return {
        "patient": patient,
        "other_patient": UserFactory(first_name="Ben", last_name="Okafor"),
        "doctor": doctor.user,
        "doctor_profile": doctor,
        "appointment": appointment,
        "other_doctor": DoctorProfileFactory(user__first_name="Omar", user__last_name="Haddad").user,
        "staff": StaffFactory(),
        "anonymous": None,
    }


def as_user(user=None) -> APIClient:
    client = APIClient()
    if user is not None:
        client.force_authenticate(user)
    return client
