from __future__ import annotations

import io
from datetime import UTC, datetime

import pytest
import time_machine
from pypdf import PdfReader

from accounts.tests.factories import UserFactory
from appointments import services as appointment_services
from appointments.tests.test_booking import open_all_week
from doctors.tests.factories import DoctorProfileFactory, ServiceFactory

NOW = datetime(2026, 11, 2, 7, 0, tzinfo=UTC)  # Monday
SLOT = datetime(2026, 11, 4, 9, 0, tzinfo=UTC)  # Wednesday, 50 hours later


@pytest.fixture
def frozen_time():
    with time_machine.travel(NOW, tick=False) as traveller:
        yield traveller


@pytest.fixture
def clinic(db):
    doctor = DoctorProfileFactory(country="IN")
    open_all_week(doctor, reschedule_min_notice_minutes=60)
    return {"doctor": doctor, "service": ServiceFactory(doctor=doctor, duration_minutes=30, price_minor=50000, currency="INR")}


@pytest.fixture
def patient(db):
    return UserFactory()


def awaiting_payment(clinic, patient, start=SLOT):
    """A booking with its details given, waiting for payment."""
    hold = appointment_services.appointment_hold(patient=patient, service=clinic["service"], start=start)
    return appointment_services.appointment_confirm_details(appointment=hold, patient=patient, reason="Persistent cough for two weeks")


def pdf_text(content: bytes) -> str:
    return "\n".join(page.extract_text() for page in PdfReader(io.BytesIO(content)).pages)
