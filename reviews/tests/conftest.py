"""The cast of the review tests: a listed doctor, patients with completed consultations, and
helpers for images with EXIF."""

from __future__ import annotations

import io
from datetime import UTC, datetime, timedelta
from importlib import import_module

import pytest
import time_machine
from django.core.files.uploadedfile import SimpleUploadedFile
from PIL import Image
from rest_framework.test import APIClient

from accounts.tests.factories import UserFactory, staff_member
from appointments.models import Appointment
from doctors.tests.factories import DoctorProfileFactory, ServiceFactory
from medimeet.core import roles

NOW = datetime(2026, 11, 2, 10, 0, tzinfo=UTC)
GOOD_TEXT = "Dr. Raman listened carefully and explained my blood pressure readings clearly."


@pytest.fixture(autouse=True)
def rating_categories(request):
    """The default categories of data migration 0002: a transactional test earlier in the run
    (a browser test, a PostgreSQL race) flushes the tables and takes them with it."""
    if request.node.get_closest_marker("django_db") is None:
        return
    request.getfixturevalue("db")
    from django.apps import apps

    import_module("reviews.migrations.0002_default_categories").create(apps, None)


@pytest.fixture(autouse=True)
def frozen_time():
    with time_machine.travel(NOW, tick=False) as traveller:
        yield traveller


def consultation(*, doctor, patient, status: str = "completed", days_ago: float = 1) -> Appointment:
    start = NOW - timedelta(days=days_ago, minutes=30)
    service = doctor.services.first() or ServiceFactory(doctor=doctor)
    return Appointment.objects.create(
        doctor=doctor, patient=patient, service=service, start=start, end=start + timedelta(minutes=30), blocked_start=start,
        blocked_end=start + timedelta(minutes=30), status=status, price_minor=50000, currency="INR",
        cancelled_by="patient" if status == "cancelled" else "", no_show_party="patient" if status == "no_show" else "",
    )


@pytest.fixture
def cast(db):
    doctor = DoctorProfileFactory(user__first_name="Priya", user__last_name="Raman", title="Dr.", slug="dr-priya-raman")
    ServiceFactory(doctor=doctor)
    patient = UserFactory(first_name="Asha", last_name="Verma", email="asha@example.com")
    return {
        "doctor": doctor,
        "other_doctor": DoctorProfileFactory(user__first_name="Vikram", user__last_name="Shah"),
        "patient": patient,
        "other_patient": UserFactory(first_name="Rohan", last_name="Mehta", email="rohan.reporter@example.com"),
        "staff": staff_member(roles.SUPPORT, first_name="Maya", last_name="Iyer"),
        "visit": consultation(doctor=doctor, patient=patient),
    }


def as_user(user=None) -> APIClient:
    client = APIClient()
    if user is not None:
        client.force_authenticate(user)
    return client


def jpeg_with_exif(name: str = "clinic.jpg", size=(64, 48)) -> SimpleUploadedFile:
    """A JPEG carrying a camera model, an orientation and GPS coordinates."""
    image = Image.new("RGB", size, (10, 108, 116))
    exif = Image.Exif()
    exif[0x0110] = "Pixel 9"  # Model
    exif[0x0112] = 6  # Orientation: rotate 90°
    exif.get_ifd(0x8825)[2] = (19.0, 4.0, 37.0)  # GPSLatitude
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", exif=exif)
    return SimpleUploadedFile(name, buffer.getvalue(), content_type="image/jpeg")
