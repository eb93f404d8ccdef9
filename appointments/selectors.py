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

from django.db import connection
from django.db.models import Exists, OuterRef, Q, QuerySet
from django.utils import timezone

from accounts.models import User
from doctors.models import DoctorProfile, DoctorService
from medimeet.core import sql

from .models import Appointment, DateOverride, DoctorSchedule, RebookingOffer


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
    # Holds in the window whose time has lapsed, not yet switched to expired: free time for the
    # engine; a booking decision expires them before it inserts (services.holds_expire).
    lapsed: list[int]


def schedule_for(doctor: DoctorProfile) -> DoctorSchedule:
    schedule = getattr(doctor, "schedule", None)
    if schedule is None:
        schedule, _ = DoctorSchedule.objects.get_or_create(doctor=doctor, defaults={"timezone": doctor.user.timezone or "UTC"})
    return schedule


# The reads every booking makes are written in SQL (medimeet/core/sql.py says why): the slot
# engine's four (every slot query makes them too), the patient's and the booked service's. No
# ORDER BY (the engine sorts what it needs); tests/test_sql_reads.py holds them to the ORM's
# filters.
_WEEKLY_SQL = "SELECT weekday, start_time, end_time FROM appointments_weeklyhours WHERE schedule_id = %s"
_OVERRIDES_SQL = 'SELECT "date", is_closed, start_time, end_time FROM appointments_dateoverride WHERE schedule_id = %s AND "date" BETWEEN %s AND %s'
_HOLIDAYS_SQL = "SELECT \"date\" FROM appointments_platformholiday WHERE \"date\" BETWEEN %s AND %s AND (country = '' OR country = %s)"
_CONSTRAINED = sql.placeholders(Appointment.CONSTRAINED_STATUSES)
_IN_THE_WAY_SQL = (
    'SELECT id, status, hold_expires_at, blocked_start, blocked_end, "start" FROM appointments_appointment'
    f" WHERE doctor_id = %s AND status IN ({_CONSTRAINED}) AND blocked_start < %s AND blocked_end > %s"
)
_PATIENT_IN_THE_WAY_SQL = (
    "SELECT id, doctor_id, status, hold_expires_at FROM appointments_appointment WHERE patient_id = %s"
    f" AND ((status IN ({_CONSTRAINED}) AND blocked_start < %s AND blocked_end > %s) OR (doctor_id = %s AND status = %s))"
)


def patient_in_the_way(*, patient, doctor: DoctorProfile, start: datetime, end: datetime) -> list[tuple[int, int, str, datetime | None]]:
    """(id, doctor id, status, hold expiry) of the patient's rows a booking of [start, end)
    with ``doctor`` must decide about: whatever of theirs stands at that time (lapsed holds
    too), and their hold with this doctor, which the booking replaces. One read for both rules."""
    params = [patient.pk, *Appointment.CONSTRAINED_STATUSES, sql.db_datetime(end), sql.db_datetime(start), doctor.pk, Appointment.Status.HELD]
    return [(pk, doctor_id, status, sql.utc(expires)) for pk, doctor_id, status, expires in sql.rows(_PATIENT_IN_THE_WAY_SQL, params)]


def service_for_booking(public_id) -> DoctorService | None:
    """The service a booking names, with its doctor and the doctor's user (whom the booking
    checks and the answer shows), in one statement: every booking reads them, so in SQL."""
    statement = (
        f"SELECT {sql.columns(DoctorService, 's')}, {sql.columns(DoctorProfile, 'd')}, {sql.columns(User, 'u')} FROM doctors_doctorservice s"
        " JOIN doctors_doctorprofile d ON d.id = s.doctor_id JOIN accounts_user u ON u.id = d.user_id WHERE s.public_id = %s"
    )
    found = sql.rows(statement, [DoctorService._meta.get_field("public_id").get_db_prep_value(public_id, connection)])
    if not found:
        return None
    service, doctor, user = sql.instances(found[0], DoctorService, DoctorProfile, User)
    doctor.user, service.doctor = user, doctor
    return service


def load_schedule_data(
    *,
    doctor: DoctorProfile,
    window_start: datetime,
    window_end: datetime,
    exclude: Appointment | None = None,
    schedule: DoctorSchedule | None = None,
    margin_days: int = 1,
) -> ScheduleData:
    """Rules and occupied time of the window, widened by ``margin_days``. ``schedule``:
    the caller's copy, locked in its transaction (booking decisions); without it the rules are
    read fresh, never from a schedule cached on the doctor object."""
    if schedule is None:
        schedule = DoctorSchedule.objects.filter(doctor=doctor).first() or schedule_for(doctor)
    tz = ZoneInfo(schedule.timezone)
    margin = timedelta(days=margin_days)
    first_day = window_start.astimezone(tz).date() - margin
    last_day = window_end.astimezone(tz).date() + margin
    weekly = sql.rows(_WEEKLY_SQL, [schedule.pk])
    overrides = [
        DateOverride(schedule=schedule, date=day, is_closed=is_closed, start_time=start, end_time=end)
        for day, is_closed, start, end in sql.rows(_OVERRIDES_SQL, [schedule.pk, first_day, last_day])
    ]
    holidays = {day for (day,) in sql.rows(_HOLIDAYS_SQL, [first_day, last_day, doctor.country])}
    # Every row in the constraints' way, lapsed holds too: one read tells what is busy and what
    # a booking must expire first.
    params = [doctor.pk, *Appointment.CONSTRAINED_STATUSES, sql.db_datetime(window_end + margin), sql.db_datetime(window_start - margin)]
    in_the_way = _IN_THE_WAY_SQL
    if exclude is not None:
        in_the_way, params = f"{in_the_way} AND id <> %s", [*params, exclude.pk]
    now = timezone.now()
    busy, per_day, lapsed = [], Counter(), []
    for pk, status, hold_expires_at, blocked_start, blocked_end, start in sql.rows(in_the_way, params):
        taken = Appointment.time_taken(status, sql.utc(hold_expires_at), now)
        if taken == "occupied":
            busy.append(Interval(sql.utc(blocked_start), sql.utc(blocked_end)))
            per_day[sql.utc(start).astimezone(tz).date()] += 1
        elif taken == "lapsed":
            lapsed.append(pk)
    return ScheduleData(schedule, tz, weekly, overrides, holidays, busy, per_day, lapsed)


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
    data = load_schedule_data(doctor=doctor, window_start=window_start, window_end=window_end, exclude=exclude)
    return _cut_free_slots(data, service=service, window_start=window_start, window_end=window_end, now=now or timezone.now(), ignore_notice=ignore_notice)


@dataclass(frozen=True)
class SlotCheck:
    free: bool
    lapsed: list[int]  # lapsed holds in its way (ScheduleData.lapsed), to expire before booking it


def slot_check(
    *,
    doctor: DoctorProfile,
    service: DoctorService,
    start: datetime,
    schedule: DoctorSchedule,
    now: datetime | None = None,
    exclude: Appointment | None = None,
    ignore_notice: bool = False,
) -> SlotCheck:
    """Whether ``start`` is one of the free slots of ``service`` (the same rules as free_slots).
    For booking decisions under the schedule lock: ``schedule`` is the locked row, and only what
    the one candidate depends on is loaded: its local day (a working range never crosses
    midnight; the daily cap counts the whole day) and its blocked time with the buffers."""
    tz = ZoneInfo(schedule.timezone)
    day = start.astimezone(tz).date()
    end = start + timedelta(minutes=service.duration_minutes)
    data = load_schedule_data(
        doctor=doctor, schedule=schedule, exclude=exclude, margin_days=0,
        window_start=min(_aware(day, time(0), tz), start - timedelta(minutes=schedule.buffer_before_minutes)),
        window_end=max(_aware(day + timedelta(days=1), time(0), tz), end + timedelta(minutes=schedule.buffer_after_minutes)),
    )
    candidates = _cut_free_slots(
        data, service=service, window_start=start, window_end=start + timedelta(microseconds=1), now=now or timezone.now(), ignore_notice=ignore_notice
    )
    return SlotCheck(any(slot.start == start for slot in candidates), data.lapsed)


def _cut_free_slots(data: ScheduleData, *, service: DoctorService, window_start: datetime, window_end: datetime, now: datetime, ignore_notice: bool) -> list[Slot]:
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
    qs = qs.exclude(status__in=[Appointment.Status.EXPIRED]).exclude(Q(status=Appointment.Status.HELD) & Exists(open_proposals_of(OuterRef("pk"))))
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


# --- Vacation rebooking, own patients ---------------------------------------------------------


def open_proposals_of(hold) -> QuerySet[RebookingOffer]:
    """Open rebooking offers proposing ``hold`` (an appointment or an OuterRef): such a hold is
    part of an offer on the original appointment's page, not a booking of its own."""
    return RebookingOffer.objects.filter(Q(same_doctor_hold=hold) | Q(other_doctor_hold=hold), status=RebookingOffer.Status.OPEN)


def rebooking_offer_open(*, appointment: Appointment) -> RebookingOffer | None:
    """The appointment's open, unexpired rebooking offer with both proposed holds."""
    return (
        RebookingOffer.objects.select_related("same_doctor_hold__doctor__user", "same_doctor_hold__service", "other_doctor_hold__doctor__user", "other_doctor_hold__doctor__primary_specialization", "other_doctor_hold__service")
        .filter(appointment=appointment, status=RebookingOffer.Status.OPEN, expires_at__gt=timezone.now())
        .first()
    )


REBOOKING_OTHER_DOCTOR_WINDOW = timedelta(days=3)
REBOOKING_MAX_CANDIDATES = 25


def rebooking_other_doctor_slots(*, appointment: Appointment, busy: list[Interval], now: datetime | None = None) -> list[tuple[Slot, DoctorService]]:
    """Free slots of other listed doctors with the same primary specialization and an active
    service of the same mode and duration, within three days either side of the appointment,
    not clashing with ``busy`` (the patient's own bookings): the closest to the original time
    first, one per doctor. At most 25 doctors are looked at (best rated first)."""
    now = now or timezone.now()
    service = appointment.service
    doctors = DoctorProfile.objects.listed().filter(primary_specialization_id=appointment.doctor.primary_specialization_id).exclude(pk=appointment.doctor_id)
    candidates = (
        DoctorService.objects.filter(doctor__in=doctors, is_active=True, mode=service.mode, duration_minutes=service.duration_minutes)
        .select_related("doctor__user")
        .order_by("-doctor__rating_average", "price_minor", "pk")[:REBOOKING_MAX_CANDIDATES]
    )
    window_start = max(now, appointment.start - REBOOKING_OTHER_DOCTOR_WINDOW)
    window_end = appointment.start + REBOOKING_OTHER_DOCTOR_WINDOW
    closest: dict[int, tuple[Slot, DoctorService]] = {}
    for candidate in candidates:
        if candidate.doctor_id in closest:
            continue
        slots = [
            slot
            for slot in free_slots(doctor=candidate.doctor, service=candidate, window_start=window_start, window_end=window_end, now=now)
            if not any(b.start < slot.end and b.end > slot.start for b in busy)
        ]
        if slots:
            closest[candidate.doctor_id] = (min(slots, key=lambda slot: abs(slot.start - appointment.start)), candidate)
    return sorted(closest.values(), key=lambda pair: (abs(pair[0].start - appointment.start), pair[0].start))


def is_patient_of(*, doctor: DoctorProfile, patient) -> bool:
    """Whether ``patient`` has had a booking with ``doctor`` (the doctor may then book them)."""
    statuses = Appointment.BOOKED_STATUSES + (Appointment.Status.COMPLETED, Appointment.Status.NO_SHOW)
    return Appointment.objects.filter(doctor=doctor, patient=patient, status__in=statuses).exists()


def patients_of(*, doctor: DoctorProfile, limit: int = 200) -> QuerySet:
    """The doctor's own patients (see is_patient_of), most recent first, for the "Book a patient" page."""
    statuses = Appointment.BOOKED_STATUSES + (Appointment.Status.COMPLETED, Appointment.Status.NO_SHOW)
    seen = Appointment.objects.filter(doctor=doctor, patient=OuterRef("pk"), status__in=statuses)
    return User.objects.filter(Exists(seen)).order_by("last_name", "first_name", "email")[:limit]
