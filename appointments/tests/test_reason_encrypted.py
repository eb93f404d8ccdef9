"""The reason for a visit is clinical information: the column holds a Fernet token, never the
patient's words, whichever way the booking was written (the booking path's sql.insert, the ORM's
update on confirm); the migration encrypts what was stored before, once, and decrypts it back."""

from __future__ import annotations

import importlib
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace

import pytest
import time_machine
from django.db import connection

from accounts.tests.factories import UserFactory
from appointments import services
from appointments.models import Appointment
from appointments.tests.test_booking import open_all_week
from doctors.tests.factories import DoctorProfileFactory, ServiceFactory
from medimeet.core.crypto import decrypt_text

pytestmark = pytest.mark.django_db

NOW = datetime(2026, 11, 2, 8, 0, tzinfo=UTC)
migration = importlib.import_module("appointments.migrations.0009_reason_encrypted")


def stored_reason(appointment: Appointment) -> str:
    with connection.cursor() as cursor:
        cursor.execute("SELECT reason FROM appointments_appointment WHERE id = %s", [appointment.pk])
        return cursor.fetchone()[0]


@pytest.fixture
def bookable():
    doctor = DoctorProfileFactory()
    open_all_week(doctor)
    return ServiceFactory(doctor=doctor, duration_minutes=30, price_minor=50000), UserFactory()


def test_a_booking_s_reason_is_stored_encrypted_and_read_back_plain(bookable):
    service, patient = bookable
    with time_machine.travel(NOW, tick=False):
        one_step = services.appointment_hold(patient=patient, service=service, start=datetime(2026, 11, 9, 9, tzinfo=UTC), reason="Chest pain since Monday")
        held = services.appointment_hold(patient=UserFactory(), service=service, start=datetime(2026, 11, 9, 10, tzinfo=UTC))
        services.appointment_confirm_details(appointment=held, patient=held.patient, reason="सीने में दर्द")

    for appointment, words in ((one_step, "Chest pain since Monday"), (held, "सीने में दर्द")):
        raw = stored_reason(appointment)
        assert words not in raw and "pain" not in raw and decrypt_text(raw) == words
        assert Appointment.objects.get(pk=appointment.pk).reason == words


def test_the_migration_encrypts_stored_plaintext_once_and_decrypts_it_back(bookable):
    service, patient = bookable
    start = datetime(2026, 11, 9, 9, tzinfo=UTC)
    rows = [
        Appointment.objects.create(
            doctor=service.doctor, patient=patient, service=service, start=start + timedelta(hours=i), end=start + timedelta(hours=i, minutes=30),
            blocked_start=start + timedelta(hours=i), blocked_end=start + timedelta(hours=i, minutes=30), status="confirmed", price_minor=0, currency="INR",
        )
        for i in range(3)
    ]  # fmt: skip
    plain = {rows[0].pk: "Follow-up on blood pressure", rows[1].pk: "बुखार और खांसी", rows[2].pk: ""}
    with connection.cursor() as cursor:  # as the column held them before the migration
        cursor.executemany("UPDATE appointments_appointment SET reason = %s WHERE id = %s", [(text, pk) for pk, text in plain.items()])
    editor = SimpleNamespace(connection=connection)

    migration.encrypt(None, editor)
    first = {row.pk: stored_reason(row) for row in rows}
    migration.encrypt(None, editor)  # a second run leaves the tokens alone

    assert {row.pk: stored_reason(row) for row in rows} == first
    assert first[rows[2].pk] == "" and all(first[pk] != text and decrypt_text(first[pk]) == text for pk, text in plain.items() if text)
    assert {row.pk: Appointment.objects.get(pk=row.pk).reason for row in rows} == plain
    migration.decrypt(None, editor)
    assert {row.pk: stored_reason(row) for row in rows} == plain
