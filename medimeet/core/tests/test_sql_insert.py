"""medimeet.core.sql.insert: the booking path's inserts (the appointment, its event, the audit
entry) written without the ORM's compiler. On SQLite and PostgreSQL alike the stored row is the
one ``objects.create`` stores, the instance ends up as saved as after ``create``, and a
constraint's refusal is Django's IntegrityError with nothing written; an unsaved related
object is refused before the database is asked, as ``save()`` refuses it."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest
import time_machine
from django.core.exceptions import PermissionDenied
from django.db import IntegrityError, connection, transaction
from django.test import RequestFactory

from accounts.tests.factories import UserFactory
from appointments.models import Appointment, AppointmentEvent, ClinicalNote
from doctors.tests.factories import DoctorProfileFactory, ServiceFactory
from medimeet.core import sql
from medimeet.core.audit import audit_record
from medimeet.core.crypto import decrypt_text
from medimeet.core.models import AuditEvent

pytestmark = pytest.mark.django_db

NOW = datetime(2026, 11, 2, 8, 0, 0, 123456, tzinfo=UTC)


def stored(model, pk) -> dict:
    """The row as the database holds it, column by column (no ORM conversion on the way out)."""
    names = [field.column for field in model._meta.concrete_fields]
    quote = connection.ops.quote_name
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT {', '.join(quote(n) for n in names)} FROM {quote(model._meta.db_table)} WHERE {quote(model._meta.pk.column)} = %s", [model._meta.pk.get_db_prep_value(pk, connection)])
        return dict(zip(names, cursor.fetchone(), strict=True))


def fields(instance) -> dict:
    return {f.attname: getattr(instance, f.attname) for f in type(instance)._meta.concrete_fields}


def appointment_kwargs(doctor, patient, service, hour: int, **extra) -> dict:
    start = datetime(2026, 11, 9, hour, tzinfo=UTC)
    return dict(
        doctor=doctor, patient=patient, service=service, start=start, end=start + timedelta(minutes=30),
        blocked_start=start - timedelta(minutes=5), blocked_end=start + timedelta(minutes=35), status="pending_payment",
        hold_expires_at=NOW + timedelta(minutes=10), reason="Chest pain since Monday", price_minor=80000, currency="INR",
        idempotency_key=f"key-{hour}", **extra,
    )  # fmt: skip


@pytest.fixture
def parties():
    doctor = DoctorProfileFactory()
    return doctor, UserFactory(), ServiceFactory(doctor=doctor)


def test_an_appointment_is_stored_as_the_orm_stores_it_and_left_saved(parties):
    doctor, patient, service = parties
    with time_machine.travel(NOW, tick=False):
        orm = Appointment.objects.create(**appointment_kwargs(doctor, patient, service, 9))
        mine = sql.insert(Appointment(**appointment_kwargs(doctor, patient, service, 11)))

    assert isinstance(mine.pk, int) and mine.pk != orm.pk  # the auto-increment key read back
    assert mine._state.adding is False and mine._state.db == "default"
    assert mine.created_at == mine.updated_at == NOW and mine.reschedule_count == 0  # auto_now(_add) and defaults
    differ = {"id", "public_id", "start", "end", "blocked_start", "blocked_end", "idempotency_key", "reason"}  # reason: a token with its own IV
    assert {k: v for k, v in stored(Appointment, mine.pk).items() if k not in differ} == {k: v for k, v in stored(Appointment, orm.pk).items() if k not in differ}
    assert decrypt_text(stored(Appointment, mine.pk)["reason"]) == decrypt_text(stored(Appointment, orm.pk)["reason"]) == "Chest pain since Monday"
    assert fields(Appointment.objects.get(pk=mine.pk)) == fields(mine)

    mine.status = "cancelled"
    mine.save(update_fields=["status"])  # an UPDATE of that row, not a second insert
    assert Appointment.objects.filter(patient=patient).count() == 2
    assert Appointment.objects.get(pk=mine.pk).status == "cancelled"


def test_events_and_audit_entries_are_stored_as_the_orm_stores_them(parties):
    doctor, patient, service = parties
    appointment = Appointment.objects.create(**appointment_kwargs(doctor, patient, service, 9))
    request = RequestFactory().post("/", HTTP_USER_AGENT="Pixel 8", REMOTE_ADDR="203.0.113.9")
    with time_machine.travel(NOW, tick=False):
        event_orm = AppointmentEvent.objects.create(appointment=appointment, to_status="held", by=patient, note="n")
        event_mine = sql.insert(AppointmentEvent(appointment=appointment, to_status="held", by=patient, note="n"))
        entry = audit_record(action="appointment.held", actor=patient, target=appointment, subject_user=patient, request=request, metadata={"from": "", "to": "held"})
        entry_orm = AuditEvent.objects.create(**{f.attname: getattr(entry, f.attname) for f in AuditEvent._meta.concrete_fields if f.name != "id"})

    assert stored(AppointmentEvent, event_mine.pk) == {**stored(AppointmentEvent, event_orm.pk), "id": event_mine.pk}
    assert stored(AuditEvent, entry.pk) == {**stored(AuditEvent, entry_orm.pk), "id": stored(AuditEvent, entry.pk)["id"]}
    read = AuditEvent.objects.get(pk=entry.pk)
    assert (read.metadata, read.ip_address, read.user_agent, read.created_at) == ({"from": "", "to": "held"}, "203.0.113.9", "Pixel 8", NOW)
    with pytest.raises(PermissionDenied):
        entry.save()  # saved as far as the ORM can tell: append-only refuses a second save


def test_encrypted_fields_are_encrypted_on_the_way_in(parties):
    doctor, patient, service = parties
    appointment = Appointment.objects.create(**appointment_kwargs(doctor, patient, service, 9))

    note = sql.insert(ClinicalNote(appointment=appointment, author=doctor.user, text="Suspected angina", follow_up_on=date(2026, 11, 16), follow_up_service=service))

    raw = stored(ClinicalNote, note.pk)
    assert "angina" not in str(raw["text"]) and "2026-11-16" not in str(raw["follow_up_on"])
    read = ClinicalNote.objects.get(pk=note.pk)
    assert (read.text, read.follow_up_on) == ("Suspected angina", date(2026, 11, 16))


def test_a_refused_insert_is_django_s_integrity_error_and_writes_nothing(parties):
    doctor, patient, service = parties
    sql.insert(Appointment(**appointment_kwargs(doctor, patient, service, 9)))
    again = Appointment(**{**appointment_kwargs(doctor, patient, service, 13), "idempotency_key": "key-9"})  # the unique key

    with pytest.raises(IntegrityError), transaction.atomic():
        sql.insert(again)

    assert again._state.adding is True and again.pk is None
    assert Appointment.objects.filter(patient=patient).count() == 1
    if connection.vendor == "postgresql":  # and the exclusion constraint: another patient, the same time
        with pytest.raises(IntegrityError), transaction.atomic():
            sql.insert(Appointment(**appointment_kwargs(doctor, UserFactory(), service, 9)))
        assert Appointment.objects.filter(doctor=doctor).count() == 1



def test_an_unsaved_related_object_is_refused_as_save_refuses_it(parties):
    doctor, patient, service = parties
    appointment = Appointment.objects.create(**appointment_kwargs(doctor, patient, service, 9))
    ghost = type(patient)(email="ghost@example.com")  # never saved

    with pytest.raises(ValueError, match="unsaved related object"):
        sql.insert(AuditEvent(action="appointment.viewed", actor=ghost, target_type="appointments.appointment", target_id=str(appointment.pk)))

    assert not AuditEvent.objects.filter(action="appointment.viewed").exists()
