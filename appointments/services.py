"""Everything that changes schedules and appointments: holds, bookings, cancellation,
rescheduling, status changes and availability rules.

Concurrency: every write that decides about a doctor's time first locks that doctor's schedule
row (SELECT ... FOR UPDATE), so checks and inserts for one doctor run one at a time; the
PostgreSQL exclusion constraints are the last word (an IntegrityError becomes APPT_002), and
SQLite serialises whole write transactions (BEGIN IMMEDIATE).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from typing import Any

from django.conf import settings
from django.db import IntegrityError, models, transaction
from django.db.models import Q
from django.http import HttpRequest
from django.utils import timezone
from django.utils.dateformat import format as date_format

from accounts.models import User
from doctors.models import DoctorProfile, DoctorService
from medimeet.core.audit import audit_record
from medimeet.core.errors import ApplicationError

from . import selectors
from .models import Appointment, AppointmentEvent, CalendarFeed, DateOverride, DoctorSchedule, WaitlistEntry, WeeklyHours

Status = Appointment.Status

DEFAULT_CANCELLATION_POLICY = [
    {"min_hours": 24, "refund_percent": 100},
    {"min_hours": 2, "refund_percent": 50},
    {"min_hours": 0, "refund_percent": 0},
]


class SlotTaken(Exception):
    """Raised inside a booking transaction when the slot is gone; turned into APPT_002 (with
    suggestions) only after the transaction, so the doctor's schedule lock is not held while
    the next free slots are computed."""


def _slot_unavailable(doctor: DoctorProfile, service: DoctorService, after: datetime) -> ApplicationError:
    suggestions = selectors.next_free_slots(doctor=doctor, service=service, after=after)
    return ApplicationError(
        "APPT_002",
        "That time is not available. Choose another slot.",
        extra={"next_free_slots": [{"start": s.start.isoformat(), "end": s.end.isoformat()} for s in suggestions]},
    )


def _record(appointment: Appointment, *, from_status: str, by: User | None, note: str = "", request: HttpRequest | None = None) -> None:
    AppointmentEvent.objects.create(appointment=appointment, from_status=from_status, to_status=appointment.status, by=by, note=note[:1000])
    audit_record(
        action=f"appointment.{appointment.status}",
        actor=by,
        target=appointment,
        subject_user=appointment.patient,
        request=request,
        metadata={"from": from_status, "to": appointment.status},
    )


HEADLINES = {
    "confirmed": "Your appointment is confirmed",
    "pending_payment": "Your appointment is reserved and waits for payment",
    "rescheduled": "Your appointment has moved to a new time",
    "cancelled": "Your appointment is cancelled",
}


def appointment_notify(*, appointment: Appointment, change: str) -> None:
    """Email the patient and the doctor about a booking, a new time or a cancellation, each
    with the time in their own zone (and the other party's when it differs); after commit."""

    def send() -> None:
        from zoneinfo import ZoneInfo

        from django.urls import reverse

        from medimeet.core.notifications import email_send_template

        fresh = Appointment.objects.select_related("doctor__user", "patient", "service").get(pk=appointment.pk)
        doctor_tz = ZoneInfo(selectors.schedule_for(fresh.doctor).timezone)
        patient_tz = ZoneInfo(fresh.patient.timezone or "UTC")
        for recipient, tz, other_tz, to_doctor in ((fresh.patient, patient_tz, doctor_tz, False), (fresh.doctor.user, doctor_tz, patient_tz, True)):
            headline = HEADLINES[change] if not to_doctor else {
                "confirmed": "A patient booked an appointment with you",
                "pending_payment": "A patient reserved a time with you",
                "rescheduled": "An appointment with you has moved",
                "cancelled": "An appointment with you is cancelled",
            }[change]
            email_send_template(
                to=[recipient.email],
                template="appointments/email/update",
                context={
                    "recipient": recipient,
                    "appointment": fresh,
                    "headline": headline,
                    "to_doctor": to_doctor,
                    # Formatted here: the |date filter would convert back to the active zone.
                    "local_start": date_format(fresh.start.astimezone(tz), "l j F Y, H:i"),
                    "timezone_name": str(tz),
                    "other_local_start": date_format(fresh.start.astimezone(other_tz), "H:i") if str(other_tz) != str(tz) else None,
                    "other_timezone_name": str(other_tz),
                    "appointment_url": settings.SITE_URL + reverse("appointments:detail", args=[fresh.public_id]),
                },
            )

    transaction.on_commit(send)


def _lock_schedule(doctor: DoctorProfile) -> DoctorSchedule:
    selectors.schedule_for(doctor)  # create it outside the lock if it never existed
    return DoctorSchedule.objects.select_for_update().get(doctor=doctor)


def holds_release_expired(*, doctor: DoctorProfile | None = None, patient: User | None = None) -> int:
    """Mark holds and unpaid bookings whose hold has lapsed as expired (on read, before booking
    and periodically from Celery). Idempotent."""
    stale = Appointment.objects.filter(status__in=Appointment.AWAITING_STATUSES, hold_expires_at__lte=timezone.now())
    if doctor is not None:
        stale = stale.filter(doctor=doctor)
    if patient is not None:
        stale = stale.filter(patient=patient)
    released = 0
    for appointment in stale.select_related("patient"):
        claimed = Appointment.objects.filter(pk=appointment.pk, status=appointment.status, hold_expires_at__lte=timezone.now()).update(
            status=Status.EXPIRED, sequence=appointment.sequence + 1
        )
        if claimed:
            from_status = appointment.status
            appointment.status = Status.EXPIRED
            AppointmentEvent.objects.create(appointment=appointment, from_status=from_status, to_status=Status.EXPIRED, note="Hold expired")
            # A waitlist offer that lapsed goes to the next patient waiting.
            WaitlistEntry.objects.filter(offer=appointment, status=WaitlistEntry.Status.OFFERED).update(status=WaitlistEntry.Status.CANCELLED)
            waitlist_offer_on_commit(appointment.doctor_id)
            released += 1
    return released


def _check_patient(patient: User) -> None:
    if patient.role != User.Role.PATIENT:
        raise ApplicationError("APPT_001", "Only patient accounts can book appointments.")
    if patient.is_blocked:
        raise ApplicationError("AUTH_005")


def appointment_hold(
    *,
    patient: User,
    service: DoctorService,
    start: datetime,
    idempotency_key: str = "",
    request: HttpRequest | None = None,
    hold_minutes: int | None = None,
) -> Appointment:
    """Hold a free slot for the patient for BOOKING_HOLD_MINUTES (or ``hold_minutes``) while they fill in details and
    pay. A retried request with the same Idempotency-Key returns the same appointment. A new hold
    replaces the patient's previous hold with this doctor (one live hold per doctor)."""
    if idempotency_key:
        existing = Appointment.objects.filter(patient=patient, idempotency_key=idempotency_key).first()
        if existing is not None:
            if existing.service_id != service.pk or existing.start != start:
                raise ApplicationError("REQ_001", "This Idempotency-Key was already used for a different booking.", fields={"idempotency_key": ["Reused with different content."]})
            return existing
    _check_patient(patient)
    doctor = service.doctor
    if not service.is_active or not DoctorProfile.objects.listed().filter(pk=doctor.pk).exists():
        raise ApplicationError("APPT_001", "This service cannot be booked.", fields={"service": ["Not available for booking."]})
    if start.tzinfo is None:
        raise ApplicationError("REQ_001", fields={"start": ["Give the time with its offset, e.g. 2026-12-01T09:00:00Z."]})
    start = start.astimezone(UTC)
    try:
        with transaction.atomic():
            schedule = _lock_schedule(doctor)
            holds_release_expired(doctor=doctor)
            holds_release_expired(patient=patient)
            day_window = (start - timedelta(hours=1), start + timedelta(hours=1))
            slots = selectors.free_slots(doctor=doctor, service=service, window_start=day_window[0], window_end=day_window[1])
            if not any(slot.start == start for slot in slots):
                raise SlotTaken
            end = start + timedelta(minutes=service.duration_minutes)
            if Appointment.objects.occupying().filter(patient=patient).overlapping(start, end).exclude(doctor=doctor, status=Status.HELD).exists():
                raise ApplicationError("APPT_005", "You already have an appointment at that time.")
            previous = Appointment.objects.filter(patient=patient, doctor=doctor, status=Status.HELD).first()
            if previous is not None:
                previous.status = Status.CANCELLED
                previous.cancelled_by = Appointment.CancelledBy.PATIENT
                previous.cancelled_at = timezone.now()
                previous.cancellation_reason = "Replaced by a new hold"
                previous.save(update_fields=["status", "cancelled_by", "cancelled_at", "cancellation_reason", "updated_at"])
                _record(previous, from_status=Status.HELD, by=patient, note="Replaced by a new hold", request=request)
            with transaction.atomic():  # savepoint: the exclusion constraints are the last word
                appointment = Appointment.objects.create(
                    doctor=doctor,
                    patient=patient,
                    service=service,
                    start=start,
                    end=end,
                    blocked_start=start - timedelta(minutes=schedule.buffer_before_minutes),
                    blocked_end=end + timedelta(minutes=schedule.buffer_after_minutes),
                    status=Status.HELD,
                    hold_expires_at=timezone.now() + timedelta(minutes=hold_minutes or settings.BOOKING_HOLD_MINUTES),
                    price_minor=appointment_price(patient=patient, service=service, start=start),
                    currency=service.currency,
                    idempotency_key=idempotency_key[:100],
                )
            _record(appointment, from_status="", by=patient, request=request)
            next_available_refresh_on_commit(doctor)
    except SlotTaken:
        raise _slot_unavailable(doctor, service, start) from None
    except IntegrityError as exc:
        if idempotency_key and Appointment.objects.filter(patient=patient, idempotency_key=idempotency_key).exists():
            return Appointment.objects.get(patient=patient, idempotency_key=idempotency_key)
        raise _slot_unavailable(doctor, service, start) from exc
    return appointment


def appointment_book_by_doctor(
    *, doctor_user: User, patient: User, service: DoctorService, start: datetime, reason: str, request: HttpRequest | None = None
) -> Appointment:
    """A doctor books one of their patients, e.g. a same-day follow-up: the doctor's own minimum
    notice does not apply to them. The patient is emailed and pays before the appointment (the
    booking waits until the start, or until it costs nothing)."""
    if service.doctor.user_id != doctor_user.pk:
        raise ApplicationError("APPT_001", fields={"service": ["Choose one of your own services."]})
    _check_patient(patient)
    reason = (reason or "").strip()
    if not reason:
        raise ApplicationError("REQ_001", fields={"reason": ["Note why the patient should come."]})
    if start.tzinfo is None:
        raise ApplicationError("REQ_001", fields={"start": ["Give the time with its offset."]})
    start = start.astimezone(UTC)
    doctor = service.doctor
    try:
        with transaction.atomic():
            schedule = _lock_schedule(doctor)
            holds_release_expired(doctor=doctor)
            slots = selectors.free_slots(doctor=doctor, service=service, window_start=start - timedelta(hours=1), window_end=start + timedelta(hours=1), ignore_notice=True)
            if not any(slot.start == start for slot in slots):
                raise SlotTaken
            end = start + timedelta(minutes=service.duration_minutes)
            price = appointment_price(patient=patient, service=service, start=start)
            with transaction.atomic():
                appointment = Appointment.objects.create(
                    doctor=doctor, patient=patient, service=service, start=start, end=end,
                    blocked_start=start - timedelta(minutes=schedule.buffer_before_minutes),
                    blocked_end=end + timedelta(minutes=schedule.buffer_after_minutes),
                    status=Status.CONFIRMED if price == 0 else Status.PENDING_PAYMENT,
                    hold_expires_at=None if price == 0 else start,
                    price_minor=price, currency=service.currency, reason=reason,
                )
            _record(appointment, from_status="", by=doctor_user, note="Booked by the doctor", request=request)
            next_available_refresh_on_commit(doctor)
            appointment_notify(appointment=appointment, change="confirmed" if price == 0 else "pending_payment")
    except SlotTaken:
        raise _slot_unavailable(doctor, service, start) from None
    except IntegrityError as exc:
        raise _slot_unavailable(doctor, service, start) from exc
    return appointment


MAX_SERIES_OCCURRENCES = 12


def appointment_series_book(
    *,
    patient: User,
    service: DoctorService,
    first_start: datetime,
    occurrences: int,
    interval_days: int = 7,
    reason: str,
    request: HttpRequest | None = None,
) -> list[Appointment]:
    """Book a recurring series (e.g. weekly for 6 weeks) all or nothing: every occurrence must
    be a free slot, or none is booked (APPT_002 names the first that is not). Each occurrence is
    then an ordinary appointment, waiting for payment or confirmed when it costs nothing."""
    import uuid as uuid_module

    reason = (reason or "").strip()
    if not reason:
        raise ApplicationError("REQ_001", fields={"reason": ["Tell the doctor briefly why you are booking."]})
    if not 2 <= occurrences <= MAX_SERIES_OCCURRENCES or interval_days not in (7, 14, 28):
        raise ApplicationError("REQ_001", fields={"occurrences": [f"Book 2 to {MAX_SERIES_OCCURRENCES} occurrences, weekly, fortnightly or every four weeks."]})
    if first_start.tzinfo is None:
        raise ApplicationError("REQ_001", fields={"first_start": ["Give the time with its offset."]})
    _check_patient(patient)
    doctor = service.doctor
    if not service.is_active or not DoctorProfile.objects.listed().filter(pk=doctor.pk).exists():
        raise ApplicationError("APPT_001", fields={"service": ["Not available for booking."]})
    series_id = uuid_module.uuid4()
    starts = [first_start.astimezone(UTC) + timedelta(days=interval_days * n) for n in range(occurrences)]
    created: list[Appointment] = []
    try:
        with transaction.atomic():
            schedule = _lock_schedule(doctor)
            holds_release_expired(doctor=doctor)
            for number, start in enumerate(starts, start=1):
                slots = selectors.free_slots(doctor=doctor, service=service, window_start=start - timedelta(hours=1), window_end=start + timedelta(hours=1))
                if not any(slot.start == start for slot in slots):
                    raise ApplicationError("APPT_002", f"Occurrence {number} ({start:%Y-%m-%d %H:%M} UTC) is not available; nothing was booked.", extra={"occurrence": number})
                end = start + timedelta(minutes=service.duration_minutes)
                price = appointment_price(patient=patient, service=service, start=start)
                appointment = Appointment.objects.create(
                    doctor=doctor, patient=patient, service=service, start=start, end=end,
                    blocked_start=start - timedelta(minutes=schedule.buffer_before_minutes),
                    blocked_end=end + timedelta(minutes=schedule.buffer_after_minutes),
                    status=Status.CONFIRMED if price == 0 else Status.PENDING_PAYMENT,
                    hold_expires_at=None if price == 0 else timezone.now() + timedelta(minutes=settings.BOOKING_HOLD_MINUTES),
                    price_minor=price, currency=service.currency, reason=reason, series_id=series_id,
                )
                _record(appointment, from_status="", by=patient, note=f"Series {number}/{occurrences}", request=request)
                created.append(appointment)
            next_available_refresh_on_commit(doctor)
    except IntegrityError as exc:  # a concurrent booking won one of the slots: all or nothing
        raise ApplicationError("APPT_002", "One of the occurrences was just taken; nothing was booked.") from exc
    return created


def appointment_price(*, patient: User, service: DoctorService, start: datetime) -> int:
    """The price taken from the server-side service, never from the client: zero for a follow-up
    inside the service's free window after a completed consultation with the same doctor."""
    if service.free_follow_up_days:
        window_start = start - timedelta(days=service.free_follow_up_days)
        had_consultation = Appointment.objects.filter(
            patient=patient, doctor_id=service.doctor_id, status=Status.COMPLETED, start__gte=window_start, start__lt=start
        ).exists()
        if had_consultation:
            return 0
    return service.price_minor


def appointment_confirm_details(*, appointment: Appointment, patient: User, reason: str, request: HttpRequest | None = None) -> Appointment:
    """The patient confirms a held slot with the reason for the visit. Free services are booked
    at once; paid ones wait for the payment (Step 4 confirms them via appointment_mark_paid)."""
    reason = (reason or "").strip()
    if not reason:
        raise ApplicationError("REQ_001", fields={"reason": ["Tell the doctor briefly why you are booking."]})
    if len(reason) > 2000:
        raise ApplicationError("REQ_001", fields={"reason": ["Keep the reason under 2,000 characters."]})
    with transaction.atomic():
        appointment = Appointment.objects.select_for_update().get(pk=appointment.pk)
        if appointment.patient_id != patient.pk:
            raise ApplicationError("APPT_006")
        if appointment.status != Status.HELD:
            raise ApplicationError("APPT_004", "This appointment is not waiting for details.")
        if not appointment.is_hold_live:
            raise ApplicationError("APPT_003")
        appointment.reason = reason
        from_status = appointment.status
        appointment.status = Status.CONFIRMED if appointment.price_minor == 0 else Status.PENDING_PAYMENT
        if appointment.status == Status.CONFIRMED:
            appointment.hold_expires_at = None
        appointment.sequence += 1
        appointment.save(update_fields=["reason", "status", "hold_expires_at", "sequence", "updated_at"])
        _record(appointment, from_status=from_status, by=patient, request=request)
        WaitlistEntry.objects.filter(offer=appointment).update(status=WaitlistEntry.Status.BOOKED)
        if appointment.status == Status.CONFIRMED:
            appointment_notify(appointment=appointment, change="confirmed")
    return appointment


def appointment_mark_paid(*, appointment: Appointment, by: User | None = None, request: HttpRequest | None = None) -> Appointment:
    """The seam the payments app calls once a payment is verified: confirm the booking.
    Idempotent; a payment that arrives after the hold lapsed is refused (APPT_003) so the
    payments app refunds it."""
    with transaction.atomic():
        appointment = Appointment.objects.select_for_update().get(pk=appointment.pk)
        if appointment.status == Status.CONFIRMED:
            return appointment
        if appointment.status != Status.PENDING_PAYMENT or not appointment.is_hold_live:
            raise ApplicationError("APPT_003", "The hold on this slot expired before the payment arrived.")
        appointment.status = Status.CONFIRMED
        appointment.hold_expires_at = None
        appointment.sequence += 1
        appointment.save(update_fields=["status", "hold_expires_at", "sequence", "updated_at"])
        _record(appointment, from_status=Status.PENDING_PAYMENT, by=by, note="Payment verified", request=request)
        appointment_notify(appointment=appointment, change="confirmed")
    return appointment


@dataclass(frozen=True)
class CancellationQuote:
    allowed: bool
    refund_percent: int
    hours_before: float
    policy: list[dict]


def closed_by_doctor(appointment: Appointment) -> bool:
    """Whether the doctor has since closed the appointment's date (vacation, emergency)."""
    from zoneinfo import ZoneInfo

    schedule = selectors.schedule_for(appointment.doctor)
    local_day = appointment.start.astimezone(ZoneInfo(schedule.timezone)).date()
    return schedule.overrides.filter(date=local_day, is_closed=True).exists()


def cancellation_quote(*, appointment: Appointment, by_role: str, now: datetime | None = None) -> CancellationQuote:
    """What cancelling now would refund, shown before booking and before cancelling. Doctors and
    staff cancelling always refund in full."""
    now = now or timezone.now()
    schedule = selectors.schedule_for(appointment.doctor)
    policy = schedule.cancellation_policy or DEFAULT_CANCELLATION_POLICY
    hours_before = (appointment.start - now).total_seconds() / 3600
    cancellable = appointment.status in (Status.HELD, Status.PENDING_PAYMENT, Status.CONFIRMED) and appointment.start > now
    if appointment.status == Status.CONFIRMED and closed_by_doctor(appointment):
        percent = 100  # the doctor closed that day (vacation): the patient never pays for it
    elif by_role in ("doctor", "staff") or appointment.status != Status.CONFIRMED:
        percent = 100 if appointment.status == Status.CONFIRMED else 0
    else:
        tiers = sorted(policy, key=lambda tier: tier["min_hours"], reverse=True)
        percent = next((tier["refund_percent"] for tier in tiers if hours_before >= tier["min_hours"]), 0)
    return CancellationQuote(allowed=cancellable, refund_percent=percent, hours_before=round(hours_before, 2), policy=policy)


def appointment_cancel(*, appointment: Appointment, by: User, reason: str, request: HttpRequest | None = None) -> Appointment:
    """Cancel with the policy's refund; the refund itself is requested from the payments app
    (Step 4) through ``refund_for_cancellation`` after commit."""
    role = "staff" if by.is_staff else ("doctor" if appointment.doctor.user_id == by.pk else "patient")
    if role == "patient" and appointment.patient_id != by.pk:
        raise ApplicationError("APPT_006")
    reason = (reason or "").strip()
    if not reason:
        raise ApplicationError("REQ_001", fields={"reason": ["Give a reason for cancelling."]})
    with transaction.atomic():
        appointment = Appointment.objects.select_for_update().select_related("doctor").get(pk=appointment.pk)
        quote = cancellation_quote(appointment=appointment, by_role=role)
        if not quote.allowed:
            raise ApplicationError("APPT_004", f"A {appointment.get_status_display().lower()} appointment cannot be cancelled.")
        from_status = appointment.status
        appointment.status = Status.CANCELLED
        appointment.cancelled_by = role
        appointment.cancelled_at = timezone.now()
        appointment.cancellation_reason = reason[:2000]
        appointment.refund_percent = quote.refund_percent if from_status == Status.CONFIRMED else None
        appointment.hold_expires_at = None
        appointment.sequence += 1
        appointment.save(update_fields=["status", "cancelled_by", "cancelled_at", "cancellation_reason", "refund_percent", "hold_expires_at", "sequence", "updated_at"])
        _record(appointment, from_status=from_status, by=by, note=reason, request=request)
        next_available_refresh_on_commit(appointment.doctor)
        waitlist_offer_on_commit(appointment.doctor_id)
        if from_status in (Status.PENDING_PAYMENT, Status.CONFIRMED):
            appointment_notify(appointment=appointment, change="cancelled")
        if appointment.refund_percent:
            transaction.on_commit(lambda: refund_for_cancellation(appointment_id=appointment.pk, percent=appointment.refund_percent))
    return appointment


def refund_for_cancellation(*, appointment_id: int, percent: int) -> None:
    """Seam for Step 4: the payments app turns this into a refund of ``percent`` of what was
    paid. Until it exists, the refund due is recorded on the appointment (refund_percent)."""


def appointment_reschedule_refusal(*, appointment: Appointment, by: User, schedule: DoctorSchedule | None = None, now: datetime | None = None) -> str:
    """Why ``by`` may not move this confirmed appointment now, or "" if they may. Doctors and
    staff are not bound by the patient limits (how often, how late)."""
    if appointment.doctor.user_id == by.pk or by.is_staff or closed_by_doctor(appointment):
        return ""
    schedule = schedule or selectors.schedule_for(appointment.doctor)
    now = now or timezone.now()
    if appointment.reschedule_count >= schedule.max_reschedules:
        return f"This appointment has been rescheduled {appointment.reschedule_count} of {schedule.max_reschedules} allowed times."
    if appointment.start - now < timedelta(minutes=schedule.reschedule_min_notice_minutes):
        return f"Appointments can be moved up to {schedule.reschedule_min_notice_minutes // 60} h before they start; you can still cancel."
    return ""


def appointment_reschedule(*, appointment: Appointment, by: User, start: datetime, request: HttpRequest | None = None) -> Appointment:
    """Move a booking to another free slot of the same doctor, atomically: the old time is
    given up only once the new one is secured, within the doctor's limits on how often and
    how late. A paid booking is never asked to pay again."""
    try:
        return _reschedule(appointment=appointment, by=by, start=start, request=request)
    except SlotTaken:
        raise _slot_unavailable(appointment.doctor, appointment.service, start) from None


def _reschedule(*, appointment: Appointment, by: User, start: datetime, request: HttpRequest | None) -> Appointment:
    with transaction.atomic():
        appointment = Appointment.objects.select_for_update().select_related("doctor", "service").get(pk=appointment.pk)
        is_doctor = appointment.doctor.user_id == by.pk
        if appointment.patient_id != by.pk and not is_doctor and not by.is_staff:
            raise ApplicationError("APPT_006")
        if appointment.status != Status.CONFIRMED:
            raise ApplicationError("APPT_004", "Only confirmed appointments can be rescheduled.")
        schedule = _lock_schedule(appointment.doctor)
        refusal = appointment_reschedule_refusal(appointment=appointment, by=by, schedule=schedule)
        if refusal:
            raise ApplicationError("APPT_007", refusal)
        holds_release_expired(doctor=appointment.doctor)
        slots = selectors.free_slots(
            doctor=appointment.doctor, service=appointment.service, window_start=start - timedelta(hours=1), window_end=start + timedelta(hours=1),
            exclude=appointment, ignore_notice=is_doctor,
        )
        if not any(slot.start == start for slot in slots):
            raise SlotTaken
        duration = appointment.end - appointment.start
        appointment.start, appointment.end = start, start + duration
        appointment.blocked_start = start - timedelta(minutes=schedule.buffer_before_minutes)
        appointment.blocked_end = appointment.end + timedelta(minutes=schedule.buffer_after_minutes)
        appointment.reschedule_count += 1
        appointment.sequence += 1
        try:
            with transaction.atomic():
                appointment.save(update_fields=["start", "end", "blocked_start", "blocked_end", "reschedule_count", "sequence", "updated_at"])
        except IntegrityError as exc:
            raise SlotTaken from exc
        _record(appointment, from_status=Status.CONFIRMED, by=by, note=f"Rescheduled to {start.isoformat()}", request=request)
        next_available_refresh_on_commit(appointment.doctor)
        waitlist_offer_on_commit(appointment.doctor_id)
        appointment_notify(appointment=appointment, change="rescheduled")
    return appointment


def appointment_set_status(*, appointment: Appointment, by: User, status: str, request: HttpRequest | None = None) -> Appointment:
    """The doctor moves a booking along: in progress, completed, or no-show (attendance)."""
    with transaction.atomic():
        appointment = Appointment.objects.select_for_update().select_related("doctor").get(pk=appointment.pk)
        if appointment.doctor.user_id != by.pk and not by.is_staff:
            raise ApplicationError("APPT_006")
        if status not in (Status.IN_PROGRESS, Status.COMPLETED, Status.NO_SHOW) or not appointment.can_transition_to(status):
            raise ApplicationError("APPT_004", f"A {appointment.get_status_display().lower()} appointment cannot become {Status(status).label.lower() if status in Status.values else status}.")
        if status == Status.NO_SHOW and appointment.start > timezone.now():
            raise ApplicationError("APPT_004", "A patient can only be marked absent once the appointment has started.")
        from_status = appointment.status
        appointment.status = status
        appointment.sequence += 1
        appointment.save(update_fields=["status", "sequence", "updated_at"])
        _record(appointment, from_status=from_status, by=by, request=request)
    return appointment


# --- Waitlist -------------------------------------------------------------------------------


def waitlist_join(*, patient: User, service: DoctorService, first_day, last_day, request: HttpRequest | None = None) -> WaitlistEntry:
    """Wait for a slot of ``service`` between two dates; the first freed slot is offered."""
    _check_patient(patient)
    doctor = service.doctor
    if not service.is_active or not DoctorProfile.objects.listed().filter(pk=doctor.pk).exists():
        raise ApplicationError("APPT_001", fields={"service": ["Not available for booking."]})
    today = timezone.localdate()
    horizon = today + timedelta(days=selectors.schedule_for(doctor).max_days_ahead)
    if first_day < today or last_day < first_day or last_day > horizon:
        raise ApplicationError("REQ_001", fields={"last_day": [f"Choose dates from today to {horizon:%d %b %Y}, the last not before the first."]})
    try:
        with transaction.atomic():
            entry = WaitlistEntry.objects.create(patient=patient, doctor=doctor, service=service, first_day=first_day, last_day=last_day)
    except IntegrityError as exc:
        raise ApplicationError("APPT_008") from exc
    audit_record(action="waitlist.joined", actor=patient, target=entry, subject_user=patient, request=request)
    waitlist_offer_on_commit(doctor.pk)  # a slot may be free already
    return entry


def waitlist_leave(*, entry: WaitlistEntry, patient: User) -> None:
    if entry.patient_id != patient.pk:
        raise ApplicationError("APPT_006")
    WaitlistEntry.objects.filter(pk=entry.pk, status__in=[WaitlistEntry.Status.WAITING, WaitlistEntry.Status.OFFERED]).update(status=WaitlistEntry.Status.CANCELLED)


def waitlist_offer_on_commit(doctor_id: int) -> None:
    transaction.on_commit(lambda: waitlist_offer_freed_time(doctor_id=doctor_id))


def waitlist_offer_freed_time(*, doctor_id: int) -> int:
    """Offer free slots to the doctor's waiting patients, first come first served: each gets
    the first free slot in their dates as a hold of WAITLIST_OFFER_MINUTES and an email.
    Idempotent: patients already holding an offer are skipped."""
    from zoneinfo import ZoneInfo

    offered = 0
    waiting = WaitlistEntry.objects.select_related("patient", "service__doctor", "doctor").filter(doctor_id=doctor_id, status=WaitlistEntry.Status.WAITING, last_day__gte=timezone.localdate())
    for entry in waiting:
        tz = ZoneInfo(selectors.schedule_for(entry.doctor).timezone)
        window_start = max(timezone.now(), datetime.combine(entry.first_day, time(0), tzinfo=tz))
        window_end = datetime.combine(entry.last_day + timedelta(days=1), time(0), tzinfo=tz)
        for slot in selectors.free_slots(doctor=entry.doctor, service=entry.service, window_start=window_start, window_end=window_end)[:3]:
            try:
                hold = appointment_hold(patient=entry.patient, service=entry.service, start=slot.start, hold_minutes=settings.WAITLIST_OFFER_MINUTES)
            except ApplicationError:
                continue  # taken meanwhile, or the patient is busy then: try the next slot
            claimed = WaitlistEntry.objects.filter(pk=entry.pk, status=WaitlistEntry.Status.WAITING).update(status=WaitlistEntry.Status.OFFERED, offer=hold)
            if claimed:
                _notify_waitlist_offer(hold)
                offered += 1
            break
    return offered


def _notify_waitlist_offer(hold: Appointment) -> None:
    from zoneinfo import ZoneInfo

    from django.urls import reverse

    from medimeet.core.notifications import email_send_template

    tz = ZoneInfo(hold.patient.timezone or "UTC")
    email_send_template(
        to=[hold.patient.email],
        template="appointments/email/waitlist_offer",
        context={
            "patient": hold.patient,
            "doctor": hold.doctor,
            "local_start": date_format(hold.start.astimezone(tz), "l j F Y, H:i"),
            "timezone_name": str(tz),
            "minutes": settings.WAITLIST_OFFER_MINUTES,
            "appointment_url": settings.SITE_URL + reverse("appointments:detail", args=[hold.public_id]),
        },
    )


# --- Doctor-side control: emergency unavailability and vacations -----------------------------


def _notify_patient_cancelled(appointment: Appointment, *, template: str) -> None:
    from zoneinfo import ZoneInfo

    from django.urls import reverse

    from medimeet.core.notifications import email_send_template

    patient_tz = ZoneInfo(appointment.patient.timezone or "UTC")
    email_send_template(
        to=[appointment.patient.email],
        template=template,
        context={
            "appointment": appointment,
            "patient": appointment.patient,
            "doctor": appointment.doctor,
            "local_day": date_format(appointment.start.astimezone(patient_tz), "l j F Y"),
            "local_time": date_format(appointment.start.astimezone(patient_tz), "H:i"),
            "timezone_name": str(patient_tz),
            "search_url": settings.SITE_URL + reverse("doctors:search") + f"?specialization={appointment.doctor.primary_specialization.slug}",
            "rebook_url": settings.SITE_URL + reverse("doctors:detail", args=[appointment.doctor.slug]),
            "appointment_url": settings.SITE_URL + reverse("appointments:detail", args=[appointment.public_id]),
        },
    )


def _cancel_for_doctor(appointment: Appointment, *, by: User, reason: str, request: HttpRequest | None) -> Appointment:
    """Cancel one appointment because of the doctor: always a full refund of what was paid."""
    from_status = appointment.status
    appointment.status = Status.CANCELLED
    appointment.cancelled_by = Appointment.CancelledBy.DOCTOR
    appointment.cancelled_at = timezone.now()
    appointment.cancellation_reason = reason[:2000]
    appointment.refund_percent = 100 if from_status == Status.CONFIRMED else None
    appointment.hold_expires_at = None
    appointment.sequence += 1
    appointment.save(update_fields=["status", "cancelled_by", "cancelled_at", "cancellation_reason", "refund_percent", "hold_expires_at", "sequence", "updated_at"])
    _record(appointment, from_status=from_status, by=by, note=reason, request=request)
    if appointment.refund_percent:
        transaction.on_commit(lambda: refund_for_cancellation(appointment_id=appointment.pk, percent=100))
    return appointment


def doctor_emergency_unavailable(*, doctor: DoctorProfile, by: User, until: datetime | None = None, reason: str = "", request: HttpRequest | None = None) -> list[Appointment]:
    """The doctor cannot work from now until ``until`` (default: the end of their day): the rest
    of today is closed to new bookings and every appointment in that time is cancelled with a
    full refund, each patient told by email after commit."""
    now = timezone.now()
    with transaction.atomic():
        schedule = _lock_schedule(doctor)
        from zoneinfo import ZoneInfo

        tz = ZoneInfo(schedule.timezone)
        today = now.astimezone(tz).date()
        until = until or datetime.combine(today + timedelta(days=1), time(0), tzinfo=tz)
        if until <= now:
            raise ApplicationError("REQ_001", fields={"until": ["Give a time in the future."]})
        day = today
        while datetime.combine(day, time(0), tzinfo=tz) < until:
            schedule.overrides.filter(date=day).delete()
            DateOverride.objects.create(schedule=schedule, date=day, is_closed=True, note="Emergency unavailability")
            day += timedelta(days=1)
        affected = list(
            Appointment.objects.select_for_update()
            .select_related("patient", "doctor__primary_specialization", "service")
            .filter(doctor=doctor, status__in=Appointment.CONSTRAINED_STATUSES, start__lt=until, end__gt=now)
        )
        message = reason or "Your doctor is unavailable because of an emergency."
        for appointment in affected:
            _cancel_for_doctor(appointment, by=by, reason=message, request=request)
            transaction.on_commit(lambda a=appointment: _notify_patient_cancelled(a, template="appointments/email/cancelled_by_doctor"))
        audit_record(action="schedule.emergency_unavailable", actor=by, target=schedule, request=request, metadata={"until": until.isoformat(), "cancelled": len(affected)})
        next_available_refresh_on_commit(doctor)
    return affected


def doctor_vacation_set(*, doctor: DoctorProfile, first_day, last_day, by: User, note: str = "", request: HttpRequest | None = None) -> list[Appointment]:
    """Close every date from ``first_day`` to ``last_day`` to new bookings and return the
    appointments already booked in that range; each patient is told by email and offered to
    rebook (with this doctor after the vacation or with another doctor of the same
    specialization) or to cancel with a full refund."""
    if last_day < first_day:
        raise ApplicationError("REQ_001", fields={"last_day": ["The vacation ends before it starts."]})
    if (last_day - first_day).days > 120:
        raise ApplicationError("REQ_001", fields={"last_day": ["Set vacations of at most 120 days."]})
    with transaction.atomic():
        schedule = _lock_schedule(doctor)
        from zoneinfo import ZoneInfo

        tz = ZoneInfo(schedule.timezone)
        schedule.overrides.filter(date__range=(first_day, last_day)).delete()
        DateOverride.objects.bulk_create(
            [DateOverride(schedule=schedule, date=first_day + timedelta(days=n), is_closed=True, note=note or "Vacation") for n in range((last_day - first_day).days + 1)]
        )
        start = datetime.combine(first_day, time(0), tzinfo=tz)
        end = datetime.combine(last_day + timedelta(days=1), time(0), tzinfo=tz)
        affected = list(
            Appointment.objects.select_related("patient", "doctor__primary_specialization", "service")
            .filter(doctor=doctor, status__in=Appointment.BOOKED_STATUSES + ("pending_payment",), start__lt=end, end__gt=start)
        )
        for appointment in affected:
            transaction.on_commit(lambda a=appointment: _notify_patient_cancelled(a, template="appointments/email/doctor_on_vacation"))
        audit_record(action="schedule.vacation_set", actor=by, target=schedule, request=request, metadata={"from": first_day.isoformat(), "to": last_day.isoformat(), "affected": len(affected)})
        next_available_refresh_on_commit(doctor)
    return affected


# --- Soonest availability (for search sorting) ---------------------------------------------

NEXT_AVAILABLE_HORIZON = timedelta(days=30)


def next_available_refresh(*, doctor: DoctorProfile) -> datetime | None:
    """Store the doctor's first free slot (any active service, shortest first) on the profile,
    for "sort by soonest availability". Called after commit whenever the doctor's time changes,
    and for everyone by a periodic task (a slot passing by also changes it)."""
    now = timezone.now()
    service = DoctorService.objects.filter(doctor=doctor, is_active=True).order_by("duration_minutes").first()
    first = None
    if service is not None:
        slots = selectors.free_slots(doctor=doctor, service=service, window_start=now, window_end=now + NEXT_AVAILABLE_HORIZON)
        first = slots[0].start if slots else None
    DoctorProfile.objects.filter(pk=doctor.pk).update(next_available_at=first)
    return first


def next_available_refresh_on_commit(doctor: DoctorProfile) -> None:
    transaction.on_commit(lambda: next_available_refresh(doctor=doctor))


def next_available_refresh_stale() -> int:
    """Periodic: refresh every listed doctor whose stored first free slot has passed or is
    unknown while they have working hours. Idempotent."""
    stale = DoctorProfile.objects.listed().filter(schedule__isnull=False).filter(Q(next_available_at__lte=timezone.now()) | Q(next_available_at__isnull=True))
    count = 0
    for doctor in stale.select_related("user").iterator(chunk_size=500):
        next_available_refresh(doctor=doctor)
        count += 1
    return count


# --- Calendar feeds -------------------------------------------------------------------------


def calendar_feed_get(*, user: User) -> CalendarFeed:
    feed, _ = CalendarFeed.objects.get_or_create(user=user)
    return feed


def calendar_feed_rotate(*, user: User, request: HttpRequest | None = None) -> CalendarFeed:
    """A new secret URL; calendars subscribed to the old one stop receiving updates at once."""
    with transaction.atomic():
        feed, _ = CalendarFeed.objects.select_for_update().get_or_create(user=user)
        feed.token = CalendarFeed._meta.get_field("token").get_default()
        feed.rotated_at = timezone.now()
        feed.save(update_fields=["token", "rotated_at"])
        audit_record(action="calendar_feed.rotated", actor=user, target=feed, subject_user=user, request=request)
    return feed


def calendar_feed_fetched(*, token: str) -> CalendarFeed | None:
    """The feed for ``token`` (None if unknown), recording when a calendar last synced."""
    feed = CalendarFeed.objects.select_related("user").filter(token=token).first()
    if feed is None or not feed.user.is_active or feed.user.is_blocked:
        return None
    CalendarFeed.objects.filter(pk=feed.pk).update(last_fetched_at=timezone.now(), fetch_count=models.F("fetch_count") + 1)
    return feed


# --- Availability rules ----------------------------------------------------------------------

SCHEDULE_FIELDS = {
    "timezone", "default_slot_minutes", "buffer_before_minutes", "buffer_after_minutes", "min_notice_minutes",
    "max_days_ahead", "daily_cap", "max_reschedules", "reschedule_min_notice_minutes", "cancellation_policy",
}


def _ranges_check(ranges: list[tuple[int, time, time]]) -> None:
    by_day: dict[int, list[tuple[time, time]]] = {}
    for weekday, start, end in ranges:
        if not 0 <= weekday <= 6:
            raise ApplicationError("REQ_001", fields={"weekly_hours": ["Weekdays run from 0 (Monday) to 6 (Sunday)."]})
        if start >= end:
            raise ApplicationError("REQ_001", fields={"weekly_hours": [f"A range must end after it starts ({start:%H:%M}–{end:%H:%M})."]})
        by_day.setdefault(weekday, []).append((start, end))
    for day_ranges in by_day.values():
        day_ranges.sort()
        for (_, previous_end), (next_start, _) in zip(day_ranges, day_ranges[1:], strict=False):
            if next_start < previous_end:
                raise ApplicationError("REQ_001", fields={"weekly_hours": ["Working ranges on one day must not overlap."]})


def _policy_check(policy: list[dict]) -> None:
    try:
        ok = all(0 <= int(t["min_hours"]) <= 24 * 30 and 0 <= int(t["refund_percent"]) <= 100 for t in policy)
    except (KeyError, TypeError, ValueError):
        ok = False
    if not ok:
        raise ApplicationError("REQ_001", fields={"cancellation_policy": ['Each tier needs "min_hours" (0–720) and "refund_percent" (0–100).']})


def schedule_update(*, doctor: DoctorProfile, data: dict[str, Any], weekly_hours: list[tuple[int, time, time]] | None = None, by: User, request: HttpRequest | None = None) -> DoctorSchedule:
    """Change booking rules and, when given, replace the weekly hours. Existing appointments
    are kept: new rules apply to slots offered from now on."""
    if "cancellation_policy" in data:
        _policy_check(data["cancellation_policy"])
    if weekly_hours is not None:
        _ranges_check(weekly_hours)
    with transaction.atomic():
        schedule = _lock_schedule(doctor)
        for name, value in data.items():
            if name in SCHEDULE_FIELDS:
                setattr(schedule, name, value)
        schedule.full_clean(exclude=["doctor"])
        schedule.save()
        if weekly_hours is not None:
            schedule.weekly_hours.all().delete()
            WeeklyHours.objects.bulk_create([WeeklyHours(schedule=schedule, weekday=w, start_time=s, end_time=e) for w, s, e in weekly_hours])
        audit_record(action="schedule.updated", actor=by, target=schedule, request=request, metadata={"fields": sorted(data), "weekly_hours": weekly_hours is not None})
        next_available_refresh_on_commit(doctor)
    return schedule


def override_set(*, doctor: DoctorProfile, day, ranges: list[tuple[time, time]] | None, note: str = "", by: User, request: HttpRequest | None = None) -> list[DateOverride]:
    """Close a date (``ranges`` None or empty) or give it special hours, replacing any override
    of that date."""
    if ranges:
        _ranges_check([(day.weekday(), s, e) for s, e in ranges])
    with transaction.atomic():
        schedule = _lock_schedule(doctor)
        schedule.overrides.filter(date=day).delete()
        rows = (
            [DateOverride(schedule=schedule, date=day, start_time=s, end_time=e, note=note) for s, e in ranges]
            if ranges
            else [DateOverride(schedule=schedule, date=day, is_closed=True, note=note)]
        )
        DateOverride.objects.bulk_create(rows)
        audit_record(action="schedule.override_set", actor=by, target=schedule, request=request, metadata={"date": day.isoformat(), "closed": not ranges})
        next_available_refresh_on_commit(doctor)
    return rows


def override_clear(*, doctor: DoctorProfile, day, by: User, request: HttpRequest | None = None) -> int:
    """Let a date follow the weekly hours again."""
    with transaction.atomic():
        schedule = _lock_schedule(doctor)
        deleted, _ = schedule.overrides.filter(date=day).delete()
        if deleted:
            audit_record(action="schedule.override_cleared", actor=by, target=schedule, request=request, metadata={"date": day.isoformat()})
            next_available_refresh_on_commit(doctor)
    return deleted
