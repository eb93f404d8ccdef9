"""The slot engine: working hours, overrides, holidays, buffers, notice, caps and DST."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
import time_machine
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from appointments import selectors
from appointments.models import Appointment, DateOverride, DoctorSchedule, PlatformHoliday, WeeklyHours
from appointments.selectors import Interval, cut_slots, working_ranges
from doctors.tests.factories import DoctorProfileFactory, ServiceFactory

pytestmark = pytest.mark.django_db


def schedule(doctor, tz="Europe/London", hours=((0, "09:00", "12:00"),), **fields) -> DoctorSchedule:
    defaults = {"timezone": tz, "buffer_before_minutes": 0, "buffer_after_minutes": 0, "min_notice_minutes": 0, "max_days_ahead": 365}
    s = DoctorSchedule.objects.create(doctor=doctor, **{**defaults, **fields})
    for weekday, start, end in hours:
        WeeklyHours.objects.create(schedule=s, weekday=weekday, start_time=time.fromisoformat(start), end_time=time.fromisoformat(end))
    return s


def local_starts(slots, tz: str) -> list[str]:
    return [s.start.astimezone(ZoneInfo(tz)).strftime("%Y-%m-%d %H:%M") for s in slots]


def day_window(day: date, tz: str) -> tuple[datetime, datetime]:
    start = datetime.combine(day, time(0), tzinfo=ZoneInfo(tz))
    return start.astimezone(UTC), (start + timedelta(days=1)).astimezone(UTC)


@pytest.fixture
def doctor():
    return DoctorProfileFactory()


@time_machine.travel(datetime(2026, 11, 1, 8, 0, tzinfo=UTC), tick=False)
def test_slots_follow_weekly_hours_and_service_length(doctor):
    schedule(doctor, hours=((0, "09:00", "10:00"), (0, "14:00", "15:00")))  # Mondays
    service = ServiceFactory(doctor=doctor, duration_minutes=20)

    slots = selectors.free_slots(doctor=doctor, service=service, window_start=datetime(2026, 11, 2, tzinfo=UTC), window_end=datetime(2026, 11, 3, tzinfo=UTC))

    assert local_starts(slots, "Europe/London") == ["2026-11-02 09:00", "2026-11-02 09:20", "2026-11-02 09:40", "2026-11-02 14:00", "2026-11-02 14:20", "2026-11-02 14:40"]
    assert all(s.end - s.start == timedelta(minutes=20) for s in slots)


@time_machine.travel(datetime(2026, 11, 1, 8, 0, tzinfo=UTC), tick=False)
def test_buffers_space_slots_and_guard_existing_appointments(doctor):
    schedule(doctor, hours=((0, "09:00", "11:00"),), buffer_before_minutes=5, buffer_after_minutes=10)
    service = ServiceFactory(doctor=doctor, duration_minutes=20)
    booked_start = datetime(2026, 11, 2, 9, 40, tzinfo=UTC)  # London = UTC in November
    Appointment.objects.create(
        doctor=doctor, patient=doctor.user, service=service, start=booked_start, end=booked_start + timedelta(minutes=20),
        blocked_start=booked_start - timedelta(minutes=5), blocked_end=booked_start + timedelta(minutes=30),
        status="confirmed", price_minor=1, currency="INR",
    )

    slots = selectors.free_slots(doctor=doctor, service=service, window_start=datetime(2026, 11, 2, tzinfo=UTC), window_end=datetime(2026, 11, 3, tzinfo=UTC))

    # Candidates every 35 min from 09:05: 09:05, 09:40 (taken), 10:15 (its buffer reaches back to
    # 10:10, clear of the booking's 10:10 end), each ending by 11:00.
    assert local_starts(slots, "Europe/London") == ["2026-11-02 09:05", "2026-11-02 10:15"]


@time_machine.travel(datetime(2026, 11, 2, 8, 0, tzinfo=UTC), tick=False)
def test_minimum_notice_and_maximum_days_ahead(doctor):
    schedule(doctor, hours=[(d, "09:00", "10:00") for d in range(7)], min_notice_minutes=90, max_days_ahead=1)
    service = ServiceFactory(doctor=doctor, duration_minutes=30)

    slots = selectors.free_slots(doctor=doctor, service=service, window_start=datetime(2026, 11, 2, tzinfo=UTC), window_end=datetime(2026, 11, 6, tzinfo=UTC))

    assert local_starts(slots, "Europe/London") == ["2026-11-02 09:30", "2026-11-03 09:00", "2026-11-03 09:30"]


@time_machine.travel(datetime(2026, 11, 1, 8, 0, tzinfo=UTC), tick=False)
def test_overrides_holidays_and_daily_cap(doctor):
    s = schedule(doctor, hours=[(d, "09:00", "10:00") for d in range(7)], daily_cap=1)
    service = ServiceFactory(doctor=doctor, duration_minutes=30)
    DateOverride.objects.create(schedule=s, date=date(2026, 11, 2), is_closed=True)
    DateOverride.objects.create(schedule=s, date=date(2026, 11, 3), start_time=time(15, 0), end_time=time(16, 0))
    PlatformHoliday.objects.create(date=date(2026, 11, 4), name="Platform day off")
    PlatformHoliday.objects.create(date=date(2026, 11, 5), name="Elsewhere only", country="US")
    booked = datetime(2026, 11, 6, 9, 0, tzinfo=UTC)
    Appointment.objects.create(doctor=doctor, patient=doctor.user, service=service, start=booked, end=booked + timedelta(minutes=30), blocked_start=booked, blocked_end=booked + timedelta(minutes=30), status="confirmed", price_minor=1, currency="INR")

    slots = selectors.free_slots(doctor=doctor, service=service, window_start=datetime(2026, 11, 2, tzinfo=UTC), window_end=datetime(2026, 11, 7, tzinfo=UTC))

    assert local_starts(slots, "Europe/London") == ["2026-11-03 15:00", "2026-11-03 15:30", "2026-11-05 09:00", "2026-11-05 09:30"]


@time_machine.travel(datetime(2026, 11, 1, 8, 0, tzinfo=UTC), tick=False)
def test_expired_hold_frees_its_slot_on_read(doctor):
    schedule(doctor, hours=((0, "09:00", "10:00"),))
    service = ServiceFactory(doctor=doctor, duration_minutes=30)
    start = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)
    common = {"doctor": doctor, "patient": doctor.user, "service": service, "start": start, "end": start + timedelta(minutes=30), "blocked_start": start, "blocked_end": start + timedelta(minutes=30), "price_minor": 1, "currency": "INR"}
    hold = Appointment.objects.create(status="held", hold_expires_at=datetime(2026, 11, 1, 8, 5, tzinfo=UTC), **common)
    window = {"window_start": datetime(2026, 11, 2, tzinfo=UTC), "window_end": datetime(2026, 11, 3, tzinfo=UTC)}

    held = selectors.free_slots(doctor=doctor, service=service, **window)
    with time_machine.travel(datetime(2026, 11, 1, 8, 6, tzinfo=UTC), tick=False):
        lapsed = selectors.free_slots(doctor=doctor, service=service, **window)

    assert local_starts(held, "Europe/London") == ["2026-11-02 09:30"]
    assert local_starts(lapsed, "Europe/London") == ["2026-11-02 09:00", "2026-11-02 09:30"]
    assert hold.pk


# --- Daylight saving: two zones, spring forward and fall back ----------------------------------

DST_CASES = [
    # zone, transition date, hours, expected local starts, expected UTC hours of the first slot
    ("America/New_York", date(2026, 3, 8), ("09:00", "10:00"), ["09:00", "09:30"], 13),  # EDT from 02:00
    ("America/New_York", date(2026, 11, 1), ("09:00", "10:00"), ["09:00", "09:30"], 14),  # EST from 02:00
    ("Europe/London", date(2026, 3, 29), ("09:00", "10:00"), ["09:00", "09:30"], 8),  # BST from 01:00
    ("Europe/London", date(2026, 10, 25), ("09:00", "10:00"), ["09:00", "09:30"], 9),  # GMT from 02:00
]


@pytest.mark.parametrize(("tz", "day", "hours", "expected", "utc_hour"), DST_CASES)
def test_wall_clock_hours_hold_on_dst_transition_days(doctor, tz, day, hours, expected, utc_hour):
    schedule(doctor, tz=tz, hours=((day.weekday(), *hours),))
    service = ServiceFactory(doctor=doctor, duration_minutes=30)

    with time_machine.travel(datetime(2026, 1, 1, tzinfo=UTC), tick=False):
        slots = selectors.free_slots(doctor=doctor, service=service, window_start=day_window(day, tz)[0], window_end=day_window(day, tz)[1])

    assert [s.start.astimezone(ZoneInfo(tz)).strftime("%H:%M") for s in slots] == expected
    assert slots[0].start.hour == utc_hour


@pytest.mark.parametrize(
    ("tz", "day", "expected_count", "expected_local"),
    [
        # 00:00–04:00 local lasts 3 real hours when clocks spring forward...
        ("America/New_York", date(2026, 3, 8), 3, ["00:00", "01:00", "03:00"]),
        ("Europe/London", date(2026, 3, 29), 3, ["00:00", "02:00", "03:00"]),
        # ...and 5 when they fall back: 01:00 happens twice, both are real hours.
        ("America/New_York", date(2026, 11, 1), 5, ["00:00", "01:00", "01:00", "02:00", "03:00"]),
        ("Europe/London", date(2026, 10, 25), 5, ["00:00", "01:00", "01:00", "02:00", "03:00"]),
    ],
)
def test_ranges_across_the_transition_have_real_lengths(doctor, tz, day, expected_count, expected_local):
    schedule(doctor, tz=tz, hours=((day.weekday(), "00:00", "04:00"),))
    service = ServiceFactory(doctor=doctor, duration_minutes=60)

    with time_machine.travel(datetime(2026, 1, 1, tzinfo=UTC), tick=False):
        slots = selectors.free_slots(doctor=doctor, service=service, window_start=day_window(day, tz)[0], window_end=day_window(day, tz)[1])

    assert len(slots) == expected_count
    assert [s.start.astimezone(ZoneInfo(tz)).strftime("%H:%M") for s in slots] == expected_local
    assert len({s.start for s in slots}) == expected_count  # no duplicate instants


# --- Properties ---------------------------------------------------------------------------------

minutes = st.integers(min_value=0, max_value=24 * 60 - 5)


@hypothesis_settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    ranges=st.lists(st.tuples(minutes, st.integers(min_value=5, max_value=600)), min_size=1, max_size=3),
    busy=st.lists(st.tuples(minutes, st.integers(min_value=5, max_value=180)), max_size=6),
    duration=st.sampled_from([5, 10, 15, 20, 30, 45, 60]),
    before=st.sampled_from([0, 5, 10]),
    after=st.sampled_from([0, 5, 15]),
    notice=st.integers(min_value=0, max_value=24 * 60),
    tz=st.sampled_from(["UTC", "Europe/London", "America/New_York", "Asia/Kolkata", "Australia/Lord_Howe"]),
    day=st.dates(min_value=date(2026, 1, 1), max_value=date(2026, 12, 31)),
)
def test_property_no_slot_overlaps_busy_time_or_leaves_working_hours(ranges, busy, duration, before, after, notice, tz, day):
    zone = ZoneInfo(tz)
    local = [(time(m // 60, m % 60), min(m + length, 24 * 60 - 1)) for m, length in ranges]
    weekly = [(day.weekday(), start, time(end // 60, end % 60)) for start, end in local if (start.hour * 60 + start.minute) < end]
    day_start = datetime.combine(day, time(0), tzinfo=zone).astimezone(UTC)
    busy_intervals = [Interval(day_start + timedelta(minutes=m), day_start + timedelta(minutes=m + length)) for m, length in busy]
    working = working_ranges(day=day, tz=zone, weekly=weekly, overrides=[], holiday=False)
    earliest = day_start + timedelta(minutes=notice)

    slots = cut_slots(
        ranges=working, duration=timedelta(minutes=duration), buffer_before=timedelta(minutes=before),
        buffer_after=timedelta(minutes=after), busy=busy_intervals, earliest=earliest, latest=day_start + timedelta(days=2),
    )

    for slot in slots:
        assert slot.end - slot.start == timedelta(minutes=duration)
        assert slot.start >= earliest
        assert any(w.start <= slot.start and slot.end <= w.end for w in working)
        blocked = Interval(slot.start - timedelta(minutes=before), slot.end + timedelta(minutes=after))
        assert not any(b.start < blocked.end and b.end > blocked.start for b in busy_intervals)
    assert len({s.start for s in slots}) == len(slots)


@time_machine.travel(datetime(2026, 11, 1, 8, 0, tzinfo=UTC), tick=False)
def test_default_slot_length_sets_the_grid_for_shorter_services(doctor):
    schedule(doctor, hours=((0, "09:00", "10:00"),), default_slot_minutes=20)
    follow_up = ServiceFactory(doctor=doctor, duration_minutes=10)

    slots = selectors.free_slots(doctor=doctor, service=follow_up, window_start=datetime(2026, 11, 2, tzinfo=UTC), window_end=datetime(2026, 11, 3, tzinfo=UTC))

    assert local_starts(slots, "Europe/London") == ["2026-11-02 09:00", "2026-11-02 09:20", "2026-11-02 09:40"]


@time_machine.travel(datetime(2026, 11, 1, 8, 0, tzinfo=UTC), tick=False)
@pytest.mark.parametrize(
    "rules",
    [
        {},
        {"buffer_before_minutes": 10, "buffer_after_minutes": 30},
        {"daily_cap": 2},
        {"default_slot_minutes": 40, "min_notice_minutes": 25 * 60},
    ],
)
def test_one_candidate_is_free_exactly_when_the_engine_lists_it(doctor, rules):
    # Around midnight too: a range to 23:45 whose last slot's buffer reaches into a booking at 00:00.
    s = schedule(doctor, tz="Asia/Kolkata", hours=[(0, "00:00", "03:00"), (0, "09:00", "12:00"), (1, "23:05", "23:45"), (2, "00:00", "02:00")], **rules)
    service = ServiceFactory(doctor=doctor, duration_minutes=30)
    kolkata = ZoneInfo("Asia/Kolkata")
    for local in (datetime(2026, 11, 2, 9, 40), datetime(2026, 11, 4, 0, 0)):
        start = local.replace(tzinfo=kolkata).astimezone(UTC)
        Appointment.objects.create(doctor=doctor, patient=doctor.user, service=service, start=start, end=start + timedelta(minutes=30), blocked_start=start, blocked_end=start + timedelta(minutes=30), status="confirmed", price_minor=1, currency="INR")
    window_start, window_end = datetime(2026, 11, 1, 12, tzinfo=UTC), datetime(2026, 11, 5, tzinfo=UTC)
    listed = {slot.start for slot in selectors.free_slots(doctor=doctor, service=service, window_start=window_start, window_end=window_end)}

    # Every 5 minutes from an hour before to an hour after each working range (the grid steps are multiples of 5).
    around = [(datetime(2026, 11, 1, 23), 5), (datetime(2026, 11, 2, 8), 5), (datetime(2026, 11, 3, 21), 6)]
    candidates = [(first + timedelta(minutes=5 * n)).replace(tzinfo=kolkata).astimezone(UTC) for first, hours in around for n in range(12 * hours)]
    free = {start for start in candidates if selectors.slot_check(doctor=doctor, service=service, start=start, schedule=s).free}

    assert listed  # the case is not vacuous
    assert free == listed
