"""Live availability: telling open booking pages and mobile apps that a doctor's free time has
changed (protocol: docs/signaling.md, "Live availability").

Every service that changes what is free calls ``availability_changed_on_commit``. Nothing is
sent before the transaction commits (a rolled-back hold publishes nothing), and one
channel-layer message per doctor and transaction goes to the group ``availability.<doctor
id>``, whatever the number of changes: an emergency that cancels twenty bookings is one
message, not twenty, through Redis and to each subscribed socket (appointments/consumers.py).

An event names the changed time and the range of slot starts that may have changed; it does
not carry the new slots. Clients re-fetch that range from the slots API. Whether a slot is free
depends on buffers, the daily cap, notice, the horizon and the service's duration, so only the
slot engine can say which slots came or went; an event telling a client to re-fetch is correct
whatever the rules, and costs the server nothing when nobody watches.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

from django.db import transaction
from django.utils import timezone

from doctors.models import DoctorProfile
from medimeet.core.events import group_send_now

from .models import Appointment, DoctorSchedule

HELD, BOOKED, FREED, CHANGED = "held", "booked", "freed", "changed"
# A transaction changing more than this for one doctor (an emergency, a long vacation) sends one
# "changed" over the whole range instead: clients re-fetch it once either way.
MAX_CHANGES_PER_EVENT = 20
# The longest a service lasts (DoctorService.duration_minutes): a slot of any service whose
# blocked time reaches into the changed time starts at most this long (plus the buffer after)
# before it.
LONGEST_SERVICE = timedelta(minutes=240)


def availability_group(doctor_id: int) -> str:
    return f"availability.{doctor_id}"


@dataclass(frozen=True)
class _Change:
    state: str
    start: datetime  # the time taken or given back (an appointment's own time, or a closed range)
    end: datetime
    blocked_start: datetime  # with the buffers: what the slot engine compares slots against
    blocked_end: datetime
    whole_range: bool = False  # a rules change: every slot starting in [start, end) may differ


@dataclass
class _PendingEvent:
    """The after-commit callback of one doctor in one transaction, gathering its changes."""

    doctor_id: int
    slug: str
    changes: list[_Change] = field(default_factory=list)
    schedule: DoctorSchedule | None = None

    def __call__(self) -> None:
        schedule = self.schedule or DoctorSchedule.objects.filter(doctor_id=self.doctor_id).first()
        if schedule is None:
            return  # no rules, no slots: nothing anyone could be shown
        frames = [_frame(change, schedule) for change in self.changes]
        if len(frames) > MAX_CHANGES_PER_EVENT:
            frames = [
                {
                    "state": CHANGED,
                    "start": min(f["start"] for f in frames), "end": max(f["end"] for f in frames),
                    "refetch_from": min(f["refetch_from"] for f in frames), "refetch_until": max(f["refetch_until"] for f in frames),
                }
            ]
        # "service": null — the change concerns every service's slots (one doctor's time is shared).
        changes = [{**_iso(f), "service": None} for f in frames]
        group_send_now(availability_group(self.doctor_id), {"type": "slots.changed", "doctor": self.slug, "changes": changes})


def _frame(change: _Change, schedule: DoctorSchedule) -> dict:
    """The change and the slot starts it may have changed, for the doctor's current rules."""
    if change.whole_range:
        refetch_from, refetch_until = change.start, change.end
    else:
        # Slot s (duration d, blocked [s - before, s + d + after)) overlaps the changed blocked
        # time iff s lies in (blocked_start - d - after, blocked_end + before).
        refetch_from = change.blocked_start - LONGEST_SERVICE - timedelta(minutes=schedule.buffer_after_minutes)
        refetch_until = change.blocked_end + timedelta(minutes=schedule.buffer_before_minutes)
        if schedule.daily_cap is not None:  # a day reaching (or leaving) its cap gains or loses every slot
            tz = ZoneInfo(schedule.timezone)
            day = change.start.astimezone(tz).date()
            refetch_from = min(refetch_from, datetime.combine(day, time(0), tzinfo=tz))
            refetch_until = max(refetch_until, datetime.combine(day + timedelta(days=1), time(0), tzinfo=tz))
    return {"state": change.state, "start": change.start, "end": change.end, "refetch_from": refetch_from, "refetch_until": refetch_until}


def _iso(frame: dict) -> dict:
    return {key: value.astimezone(UTC).isoformat() if isinstance(value, datetime) else value for key, value in frame.items()}


def _pending_for(doctor: DoctorProfile) -> _PendingEvent | None:
    """This transaction's pending event of ``doctor``, if one is registered already. A change
    made in a savepoint that is later rolled back may stay in it: the event then tells clients
    to re-fetch a little more than changed, which is harmless; a whole rollback drops it."""
    connection = transaction.get_connection()
    if not connection.in_atomic_block:
        return None
    for _savepoints, callback, _robust in connection.run_on_commit:
        if isinstance(callback, _PendingEvent) and callback.doctor_id == doctor.pk:
            return callback
    return None


def _known_schedule(doctor: DoctorProfile, schedule: DoctorSchedule | None) -> DoctorSchedule | None:
    if schedule is not None:
        return schedule
    # Only a schedule already loaded (e.g. by the cancellation policy): never a query here.
    return getattr(doctor, "schedule", None) if DoctorProfile.schedule.is_cached(doctor) else None


def availability_changed_on_commit(
    *,
    doctor: DoctorProfile,
    state: str,
    start: datetime,
    end: datetime,
    blocked_start: datetime | None = None,
    blocked_end: datetime | None = None,
    schedule: DoctorSchedule | None = None,
    whole_range: bool = False,
) -> None:
    """After the current transaction commits, tell the doctor's subscribers that ``start`` to
    ``end`` was held, booked, freed or (rules) changed. ``schedule``: the caller's copy, when
    it has one (saves a query after commit)."""
    change = _Change(state, start, end, blocked_start or start, blocked_end or end, whole_range)
    pending = _pending_for(doctor)
    if pending is None:
        pending = _PendingEvent(doctor.pk, doctor.slug, [change], _known_schedule(doctor, schedule))
        # robust: whatever goes wrong after commit is logged, and the request that made the
        # change still succeeds. Outside a transaction this runs (sends) at once.
        transaction.on_commit(pending, robust=True)
        return
    pending.changes.append(change)
    pending.schedule = _known_schedule(doctor, schedule) or pending.schedule


def appointment_availability_changed(appointment: Appointment, *, state: str, schedule: DoctorSchedule | None = None) -> None:
    """The appointment's time was taken (``held``/``booked``) or given back (``freed``)."""
    availability_changed_on_commit(
        doctor=appointment.doctor, state=state, start=appointment.start, end=appointment.end,
        blocked_start=appointment.blocked_start, blocked_end=appointment.blocked_end, schedule=schedule,
    )


def days_availability_changed(*, doctor: DoctorProfile, schedule: DoctorSchedule, first_day, last_day) -> None:
    """The rules of the doctor's local dates ``first_day`` to ``last_day`` changed (closed,
    special hours, vacation): every slot of those days may differ."""
    tz = ZoneInfo(schedule.timezone)
    start = datetime.combine(first_day, time(0), tzinfo=tz)
    end = datetime.combine(last_day + timedelta(days=1), time(0), tzinfo=tz)
    availability_changed_on_commit(doctor=doctor, state=CHANGED, start=start, end=end, schedule=schedule, whole_range=True)


def rules_availability_changed(*, doctor: DoctorProfile, schedule: DoctorSchedule) -> None:
    """The doctor's booking rules or weekly hours changed: every slot up to the horizon may differ."""
    now = timezone.now()
    availability_changed_on_commit(doctor=doctor, state=CHANGED, start=now, end=now + timedelta(days=schedule.max_days_ahead + 2), schedule=schedule, whole_range=True)
