"""The booking path's reads written in SQL (selectors.load_schedule_data, patient_in_the_way,
service_for_booking, services._lock_schedule): on SQLite and PostgreSQL alike they find exactly
what the same filters find through the ORM, with the ORM's types (aware UTC timestamps, dates,
times, booleans, UUIDs, JSON, decimals)."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, time, timedelta

import pytest
import time_machine
from django.db import transaction

from accounts.tests.factories import UserFactory
from appointments import selectors, services
from appointments.models import Appointment, DateOverride, DoctorSchedule, PlatformHoliday, WeeklyHours
from doctors.tests.factories import DoctorProfileFactory, ServiceFactory

pytestmark = pytest.mark.django_db

NOW = datetime(2026, 11, 2, 8, 0, tzinfo=UTC)
WINDOW = (datetime(2026, 11, 9, tzinfo=UTC), datetime(2026, 11, 10, tzinfo=UTC))  # a Monday, London = UTC


def at(hour: int, minute: int = 0, day: int = 9) -> datetime:
    return datetime(2026, 11, day, hour, minute, tzinfo=UTC)


def book(doctor, patient, service, start: datetime, status: str, *, minutes: int = 30, buffer: int = 5, hold_expires_at=None) -> Appointment:
    return Appointment.objects.create(
        doctor=doctor, patient=patient, service=service, start=start, end=start + timedelta(minutes=minutes),
        blocked_start=start - timedelta(minutes=buffer), blocked_end=start + timedelta(minutes=minutes + buffer),
        status=status, hold_expires_at=hold_expires_at, price_minor=100, currency="INR",
    )  # fmt: skip


def fields(instance) -> dict:
    return {f.attname: getattr(instance, f.attname) for f in type(instance)._meta.concrete_fields}


@pytest.fixture
def world():
    doctor = DoctorProfileFactory(country="IN")
    schedule = DoctorSchedule.objects.create(doctor=doctor, timezone="Europe/London", cancellation_policy=[{"min_hours": 24, "refund_percent": 100}])
    for weekday, start, end in ((0, "09:00", "12:00"), (0, "14:00", "17:30"), (2, "08:00", "10:00")):
        WeeklyHours.objects.create(schedule=schedule, weekday=weekday, start_time=time.fromisoformat(start), end_time=time.fromisoformat(end))
    DateOverride.objects.create(schedule=schedule, date=date(2026, 11, 9), start_time=time(10), end_time=time(13, 15))
    DateOverride.objects.create(schedule=schedule, date=date(2026, 11, 10), is_closed=True)
    DateOverride.objects.create(schedule=schedule, date=date(2026, 11, 20), is_closed=True)  # outside the window
    PlatformHoliday.objects.create(date=date(2026, 11, 8), name="Everywhere")
    PlatformHoliday.objects.create(date=date(2026, 11, 10), name="India", country="IN")
    PlatformHoliday.objects.create(date=date(2026, 11, 9), name="Elsewhere", country="GB")  # not the doctor's country
    PlatformHoliday.objects.create(date=date(2026, 11, 30), name="Later")  # outside the window
    service = ServiceFactory(doctor=doctor, duration_minutes=30)
    patient, other, third = UserFactory(), UserFactory(), UserFactory()
    rows = {
        "confirmed": book(doctor, patient, service, at(9), "confirmed"),
        "in_progress": book(doctor, other, service, at(11), "in_progress"),
        "live hold": book(doctor, other, service, at(14), "held", hold_expires_at=NOW + timedelta(minutes=5)),
        "lapsed hold": book(doctor, third, service, at(15), "held", hold_expires_at=NOW - timedelta(minutes=1)),
        "lapsed unpaid": book(doctor, patient, service, at(16), "pending_payment", hold_expires_at=NOW - timedelta(seconds=1)),
        "cancelled": book(doctor, other, service, at(9, 30), "cancelled"),
        "previous day": book(doctor, other, service, at(10, day=8), "confirmed"),
        # Blocked until exactly the margin's start (2026-11-08 00:00 UTC): touching, not overlapping.
        "touching": book(doctor, other, service, at(23, 25, day=7), "confirmed"),
        "far away": book(doctor, other, service, at(10, day=25), "confirmed"),
    }
    return doctor, schedule, service, patient, rows


def orm_schedule_data(doctor, schedule, window_start, window_end, *, exclude=None, margin_days=1) -> dict:
    """The same reads through the ORM (what load_schedule_data did before its SQL)."""
    margin = timedelta(days=margin_days)
    first_day, last_day = (window_start - margin).date(), (window_end + margin).date()  # London = UTC in November
    in_the_way = Appointment.objects.filter(doctor=doctor, status__in=Appointment.CONSTRAINED_STATUSES).overlapping(window_start - margin, window_end + margin)
    if exclude is not None:
        in_the_way = in_the_way.exclude(pk=exclude.pk)
    rows = list(in_the_way)
    return {
        "weekly": sorted(schedule.weekly_hours.values_list("weekday", "start_time", "end_time")),
        "overrides": sorted(schedule.overrides.filter(date__range=(first_day, last_day)).values_list("date", "is_closed", "start_time", "end_time")),
        "holidays": set(PlatformHoliday.objects.filter(date__range=(first_day, last_day), country__in=["", doctor.country]).values_list("date", flat=True)),
        "busy": sorted((a.blocked_start, a.blocked_end) for a in rows if Appointment.time_taken(a.status, a.hold_expires_at, NOW) == "occupied"),
        "lapsed": sorted(a.pk for a in rows if Appointment.time_taken(a.status, a.hold_expires_at, NOW) == "lapsed"),
    }


def as_compared(data: selectors.ScheduleData) -> dict:
    return {
        "weekly": sorted(data.weekly),
        "overrides": sorted((o.date, o.is_closed, o.start_time, o.end_time) for o in data.overrides),
        "holidays": data.holidays,
        "busy": sorted((b.start, b.end) for b in data.busy),
        "lapsed": sorted(data.lapsed),
    }


@time_machine.travel(NOW, tick=False)
def test_schedule_data_read_in_sql_matches_the_orm_filters(world):
    doctor, schedule, _, _, rows = world

    data = selectors.load_schedule_data(doctor=doctor, window_start=WINDOW[0], window_end=WINDOW[1])

    assert as_compared(data) == orm_schedule_data(doctor, schedule, *WINDOW)
    assert as_compared(data) == {
        "weekly": [(0, time(9), time(12)), (0, time(14), time(17, 30)), (2, time(8), time(10))],
        "overrides": [(date(2026, 11, 9), False, time(10), time(13, 15)), (date(2026, 11, 10), True, None, None)],
        "holidays": {date(2026, 11, 8), date(2026, 11, 10)},
        "busy": sorted(
            (rows[name].blocked_start, rows[name].blocked_end) for name in ("confirmed", "in_progress", "live hold", "previous day")
        ),
        "lapsed": sorted([rows["lapsed hold"].pk, rows["lapsed unpaid"].pk]),
    }
    assert all(b.start.tzinfo is UTC and b.end.tzinfo is UTC for b in data.busy)
    assert data.per_day == {date(2026, 11, 9): 3, date(2026, 11, 8): 1}


@time_machine.travel(NOW, tick=False)
def test_schedule_data_leaves_out_the_excluded_appointment(world):
    doctor, schedule, _, _, rows = world

    data = selectors.load_schedule_data(doctor=doctor, window_start=WINDOW[0], window_end=WINDOW[1], exclude=rows["confirmed"], margin_days=0)

    assert as_compared(data) == orm_schedule_data(doctor, schedule, *WINDOW, exclude=rows["confirmed"], margin_days=0)
    assert (rows["confirmed"].blocked_start, rows["confirmed"].blocked_end) not in as_compared(data)["busy"]


@time_machine.travel(NOW, tick=False)
def test_patient_in_the_way_matches_the_orm_filter(world):
    doctor, _, service, patient, rows = world
    other_doctor = DoctorProfileFactory()
    elsewhere = book(other_doctor, patient, ServiceFactory(doctor=other_doctor), at(16, 35), "confirmed")
    own_hold = book(doctor, patient, service, at(12, day=12), "held", hold_expires_at=NOW + timedelta(minutes=5))
    start, end = at(16, 10), at(16, 40)

    found = selectors.patient_in_the_way(patient=patient, doctor=doctor, start=start, end=end)

    expected = Appointment.objects.filter(
        patient=patient, status__in=Appointment.CONSTRAINED_STATUSES, blocked_start__lt=end, blocked_end__gt=start
    ) | Appointment.objects.filter(patient=patient, doctor=doctor, status="held")
    assert sorted(found) == sorted(expected.values_list("pk", "doctor_id", "status", "hold_expires_at"))
    assert sorted(pk for pk, *_ in found) == sorted([rows["lapsed unpaid"].pk, elsewhere.pk, own_hold.pk])
    assert {expires.tzinfo for *_, expires in found if expires is not None} == {UTC}


def test_schedule_lock_reads_the_whole_row_and_creates_a_missing_one(world):
    doctor, schedule, *_ = world
    newcomer = DoctorProfileFactory()

    with transaction.atomic():
        locked = services._lock_schedule(doctor)
        created = services._lock_schedule(newcomer)

    assert fields(locked) == fields(DoctorSchedule.objects.get(pk=schedule.pk)) and locked.get_deferred_fields() == set()
    assert locked.pk == schedule.pk and locked.doctor_id == doctor.pk
    assert locked.cancellation_policy == [{"min_hours": 24, "refund_percent": 100}]
    assert (locked.timezone, locked.buffer_after_minutes, locked.daily_cap) == ("Europe/London", schedule.buffer_after_minutes, None)
    assert created.doctor_id == newcomer.pk and DoctorSchedule.objects.filter(doctor=newcomer).count() == 1


def test_service_for_booking_reads_the_service_its_doctor_and_user_as_the_orm_does(world):
    _, _, service, *_ = world
    service.doctor.rating_average, service.doctor.search_document = "4.50", "cardiology"
    service.doctor.save()

    found = selectors.service_for_booking(service.public_id)

    orm = type(service).objects.select_related("doctor__user").get(pk=service.pk)
    assert fields(found) == fields(orm)
    assert fields(found.doctor) == fields(orm.doctor)
    assert fields(found.doctor.user) == fields(orm.doctor.user)
    assert found.doctor.is_listed == orm.doctor.is_listed
    assert selectors.service_for_booking(uuid.uuid4()) is None
