"""The slot engine and appointment reads.

Free slots are computed on demand: working ranges of each of the doctor's local dates (weekly
hours, replaced by date overrides, removed by holidays), turned into UTC instants with zoneinfo,
cut into candidate slots, minus everything booked or held (with buffers), minus notice and
advance limits and full days. Stepping in UTC keeps real durations across daylight-saving
changes: on a spring-forward night a 00:00–04:00 range is three hours long, and 09:00 is still
09:00 on the wall clock the day the clocks move.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from django.db.models import Q, QuerySet
from django.utils import timezone

from doctors.models import DoctorProfile, DoctorService

from .models import Appointment, DateOverride, DoctorSchedule, PlatformHoliday


@dataclass(frozen=True)
class Slot:
    start: datetime  # UTC
    end: datetime  # UTC


@dataclass(frozen=True)
class Interval:
    start: datetime
    end: datetime


def _aware(day: date, at: time, tz: ZoneInfo) -> datetime:
    # fold=0: an ambiguous wall time (clocks going back) means its first occurrence; a time in
    # the spring-forward gap maps to the instant it would have been, which the UTC stepping
    # below handles without producing duplicate or phantom slots.
    return datetime.combine(day, at).replace(tzinfo=tz).astimezone(UTC)


def working_ranges(
    *,
    day: date,
    tz: ZoneInfo,
    weekly: list[tuple[int, time, time]],
    overrides: list[DateOverride],
    holiday: bool,
) -> list[Interval]:
    """UTC intervals a doctor works on the local date ``day``."""
    if holiday:
        return []
    todays = [o for o in overrides if o.date == day]
    if any(o.is_closed for o in todays):
        return []
    if todays:
        local = [(o.start_time, o.end_time) for o in todays]
    else:
        local = [(start, end) for weekday, start, end in weekly if weekday == day.weekday()]
    merged: list[Interval] = []
    for start, end in sorted(local):  # overlapping or touching ranges (e.g. edited in the admin) merge
        interval = Interval(_aware(day, start, tz), _aware(day, end, tz))
        if merged and interval.start <= merged[-1].end:
            merged[-1] = Interval(merged[-1].start, max(merged[-1].end, interval.end))
        else:
            merged.append(interval)
    return merged


def cut_slots(
    *,
    ranges: list[Interval],
    duration: timedelta,
    buffer_before: timedelta,
    buffer_after: timedelta,
    busy: list[Interval],
    earliest: datetime,
    latest: datetime,
    grid: timedelta = timedelta(0),
) -> list[Slot]:
    """Candidate slots in ``ranges`` whose blocked time [start - before, end + after) overlaps
    nothing in ``busy`` and whose start lies in [earliest, latest). Starts are spaced by the
    appointment with its buffers, or by ``grid`` (the doctor's default slot length) when that
    is longer: a 10-minute follow-up on a 20-minute grid starts at :00, :20, :40."""
    step = max(buffer_before + duration + buffer_after, grid)
    busy = sorted(busy, key=lambda b: b.start)
    slots: list[Slot] = []
    for working in ranges:
        start = working.start + buffer_before
        while start + duration <= working.end:
            end = start + duration
            if earliest <= start < latest:
                blocked_start, blocked_end = start - buffer_before, end + buffer_after
                if not any(b.start < blocked_end and b.end > blocked_start for b in busy):
                    slots.append(Slot(start, end))
            start += step
    return slots


@dataclass
class ScheduleData:
    """Everything the engine needs for one doctor and window, loaded in a constant number of queries."""

    schedule: DoctorSchedule
    tz: ZoneInfo
    weekly: list[tuple[int, time, time]]
    overrides: list[DateOverride]
    holidays: set[date]
    busy: list[Interval]
    per_day: Counter


def schedule_for(doctor: DoctorProfile) -> DoctorSchedule:
    schedule = getattr(doctor, "schedule", None)
    if schedule is None:
        schedule, _ = DoctorSchedule.objects.get_or_create(doctor=doctor, defaults={"timezone": doctor.user.timezone or "UTC"})
    return schedule


def load_schedule_data(*, doctor: DoctorProfile, window_start: datetime, window_end: datetime, exclude: Appointment | None = None) -> ScheduleData:
    # Read the rules fresh (not a schedule cached on the doctor object): a booking decision
    # must see the rules as they are now.
    schedule = DoctorSchedule.objects.filter(doctor=doctor).first() or schedule_for(doctor)
    tz = ZoneInfo(schedule.timezone)
    first_day = window_start.astimezone(tz).date() - timedelta(days=1)
    last_day = window_end.astimezone(tz).date() + timedelta(days=1)
    weekly = list(schedule.weekly_hours.values_list("weekday", "start_time", "end_time"))
    overrides = list(schedule.overrides.filter(date__range=(first_day, last_day)))
    holidays = set(
        PlatformHoliday.objects.filter(date__range=(first_day, last_day))
        .filter(Q(country="") | Q(country=doctor.country))
        .values_list("date", flat=True)
    )
    occupying = Appointment.objects.occupying().filter(doctor=doctor).overlapping(
        window_start - timedelta(days=1), window_end + timedelta(days=1)
    )
    if exclude is not None:
        occupying = occupying.exclude(pk=exclude.pk)
    busy, per_day = [], Counter()
    for blocked_start, blocked_end, start in occupying.values_list("blocked_start", "blocked_end", "start"):
        busy.append(Interval(blocked_start, blocked_end))
        per_day[start.astimezone(tz).date()] += 1
    return ScheduleData(schedule, tz, weekly, overrides, holidays, busy, per_day)


def free_slots(
    *,
    doctor: DoctorProfile,
    service: DoctorService,
    window_start: datetime,
    window_end: datetime,
    now: datetime | None = None,
    exclude: Appointment | None = None,
    ignore_notice: bool = False,
) -> list[Slot]:
    """Free slots of ``service`` starting in [window_start, window_end), in UTC."""
    now = now or timezone.now()
    data = load_schedule_data(doctor=doctor, window_start=window_start, window_end=window_end, exclude=exclude)
    schedule = data.schedule
    earliest = max(window_start, now if ignore_notice else now + timedelta(minutes=schedule.min_notice_minutes))
    horizon = (now.astimezone(data.tz).date() + timedelta(days=schedule.max_days_ahead + 1))
    latest = min(window_end, _aware(horizon, time(0), data.tz))
    duration = timedelta(minutes=service.duration_minutes)
    slots: list[Slot] = []
    day = window_start.astimezone(data.tz).date()
    last = window_end.astimezone(data.tz).date()
    while day <= last:
        if schedule.daily_cap is None or data.per_day[day] < schedule.daily_cap:
            ranges = working_ranges(day=day, tz=data.tz, weekly=data.weekly, overrides=data.overrides, holiday=day in data.holidays)
            slots += cut_slots(
                ranges=ranges,
                duration=duration,
                buffer_before=timedelta(minutes=schedule.buffer_before_minutes),
                buffer_after=timedelta(minutes=schedule.buffer_after_minutes),
                busy=data.busy,
                earliest=earliest,
                latest=latest,
                grid=timedelta(minutes=schedule.default_slot_minutes),
            )
        day += timedelta(days=1)
    return slots


def next_free_slots(*, doctor: DoctorProfile, service: DoctorService, after: datetime, count: int = 3, days: int = 14) -> list[Slot]:
    """Suggestions offered when a slot is taken: the first free slots after ``after``."""
    return free_slots(doctor=doctor, service=service, window_start=after, window_end=after + timedelta(days=days))[:count]


def appointments_for(*, user, role: str, status: str = "", start: datetime | None = None, end: datetime | None = None) -> QuerySet[Appointment]:
    """A patient's or a doctor's appointments, with everything a list row shows."""
    qs = Appointment.objects.select_related("doctor__user", "doctor__primary_specialization", "patient", "service")
    qs = qs.filter(doctor__user=user) if role == "doctor" else qs.filter(patient=user)
    qs = qs.exclude(status__in=[Appointment.Status.EXPIRED])
    if status:
        qs = qs.filter(status=status)
    if start is not None:
        qs = qs.filter(start__gte=start)
    if end is not None:
        qs = qs.filter(start__lt=end)
    return qs.order_by("start")


FEED_HISTORY = timedelta(days=90)


def feed_appointments(*, user) -> QuerySet[Appointment]:
    """What a calendar feed lists: the user's bookings from 90 days ago on, cancelled ones too
    (so subscribed calendars drop them)."""
    role = "doctor" if getattr(user, "role", "") == "doctor" else "patient"
    statuses = ["confirmed", "in_progress", "completed", "cancelled", "no_show"]
    return appointments_for(user=user, role=role, start=timezone.now() - FEED_HISTORY).filter(status__in=statuses)
