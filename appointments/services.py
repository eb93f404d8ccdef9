"""Everything that changes schedules and appointments: holds, bookings, cancellation,
rescheduling, status changes and availability rules.

Concurrency: every write that decides about a doctor's time first locks that doctor's schedule
row (SELECT ... FOR UPDATE), so checks and inserts for one doctor run one at a time; the
PostgreSQL exclusion constraints are the last word (an IntegrityError becomes APPT_002), and
SQLite serialises whole write transactions (BEGIN IMMEDIATE).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from django.conf import settings
from django.db import IntegrityError, connection, models, transaction
from django.db.models import Q
from django.http import HttpRequest
from django.utils import timezone
from django.utils.translation import gettext, gettext_lazy

from accounts.models import User
from doctors.models import DoctorProfile, DoctorService
from medimeet.core import platform, sql
from medimeet.core.audit import audit_record
from medimeet.core.errors import ApplicationError
from medimeet.core.events import enqueue_on_commit, enqueue_or_run_on_commit
from medimeet.core.roles import staff_can

from . import selectors
from .availability_events import (
    BOOKED,
    FREED,
    HELD,
    appointment_availability_changed,
    availability_changed_on_commit,
    days_availability_changed,
    rules_availability_changed,
)
from .models import Appointment, AppointmentEvent, CalendarFeed, ClinicalNote, DateOverride, DoctorSchedule, RebookingOffer, WaitlistEntry, WeeklyHours

Status = Appointment.Status


class SlotTaken(Exception):
    """Raised inside a booking transaction when the slot is gone; turned into APPT_002 (with
    suggestions) only after the transaction, so the doctor's schedule lock is not held while
    the next free slots are computed."""


def _slot_unavailable(doctor: DoctorProfile, service: DoctorService, after: datetime) -> ApplicationError:
    suggestions = selectors.next_free_slots(doctor=doctor, service=service, after=after)
    return ApplicationError(
        "APPT_002",
        gettext("That time is not available. Choose another slot."),
        extra={"next_free_slots": [{"start": s.start.isoformat(), "end": s.end.isoformat()} for s in suggestions]},
    )


def _record(appointment: Appointment, *, from_status: str, by: User | None, note: str = "", request: HttpRequest | None = None) -> None:
    if appointment.status == Status.CONFIRMED:
        from consultations.services import consultation_ensure  # the video room exists from confirmation

        consultation_ensure(appointment=appointment)
    sql.insert(AppointmentEvent(appointment=appointment, from_status=from_status, to_status=appointment.status, by=by, note=note[:1000]))
    audit_record(
        action=f"appointment.{appointment.status}",
        actor=by,
        target=appointment,
        subject_user=appointment.patient,
        request=request,
        metadata={"from": from_status, "to": appointment.status},
    )


HEADLINES = {
    "confirmed": gettext_lazy("Your appointment is confirmed"),
    "pending_payment": gettext_lazy("Your appointment is reserved and waits for payment"),
    "rescheduled": gettext_lazy("Your appointment has moved to a new time"),
    "cancelled": gettext_lazy("Your appointment is cancelled"),
    "doctor_no_show": gettext_lazy("The doctor did not join your consultation: you are refunded in full"),
    "patient_no_show": gettext_lazy("You did not join your consultation"),
}
DOCTOR_HEADLINES = {
    "confirmed": gettext_lazy("A patient booked an appointment with you"),
    "pending_payment": gettext_lazy("A patient reserved a time with you"),
    "rescheduled": gettext_lazy("An appointment with you has moved"),
    "cancelled": gettext_lazy("An appointment with you is cancelled"),
    "doctor_no_show": gettext_lazy("You did not join a consultation: the patient was refunded"),
    "patient_no_show": gettext_lazy("Your patient did not join the consultation"),
}


def appointment_notify(*, appointment: Appointment, change: str) -> None:
    """Tell the patient and the doctor about a booking, a new time or a cancellation, after
    commit, from a Celery task: rendering two emails and their calendar files is work for the
    worker, not for the request that booked, paid or cancelled (docs/performance.md, Mixed load).
    With the broker down they are rendered and stored here instead, never lost."""
    from .tasks import send_appointment_update

    # One token per change: the task may run twice (acks late), the messages go out once.
    enqueue_or_run_on_commit(send_appointment_update, appointment_id=appointment.pk, change=change, token=uuid.uuid4().hex)


def appointment_update_send(*, appointment_id: int, change: str, token: str) -> None:
    """The messages of one change, each in its recipient's language and zone (with the other's
    local time when it differs), with the calendar event attached (a cancelling one for a
    cancellation)."""
    from django.urls import reverse

    from medimeet.core.notifications import notify

    fresh = Appointment.objects.select_related("doctor__user", "patient", "service").get(pk=appointment_id)
    # refund_percent is set only when a confirmed (paid or free) booking is cancelled.
    refund_minor = fresh.price_minor * fresh.refund_percent // 100 if change == "cancelled" and fresh.refund_percent and fresh.price_minor else None
    for recipient, other, to_doctor in ((fresh.patient, fresh.doctor.user, False), (fresh.doctor.user, fresh.patient, True)):
        notify(
            user=recipient,
            event="appointment.update",
            context={
                "appointment": fresh,
                "headline": (DOCTOR_HEADLINES if to_doctor else HEADLINES)[change],
                "to_doctor": to_doctor,
                "other_zone": _zone_of(other, fresh, doctor=not to_doctor),
                "refund_minor": refund_minor,
                "ics_attached": change in ICS_CHANGES,
                "appointment_url": settings.SITE_URL + reverse("appointments:detail", args=[fresh.public_id]),
            },
            attachments=[appointment_ics_attachment(fresh, recipient=recipient, for_doctor=to_doctor)] if change in ICS_CHANGES else None,
            dedupe_key=f"appointment:{fresh.pk}:{change}:{token}:{recipient.pk}",
        )


ICS_CHANGES = {"confirmed", "pending_payment", "rescheduled", "cancelled"}


def _zone_of(person: User, appointment: Appointment, *, doctor: bool) -> str:
    """The zone a party lives the appointment in: the doctor's practice (schedule) zone, the patient's own."""
    return selectors.schedule_for(appointment.doctor).timezone if doctor else (person.timezone or "UTC")


def appointment_ics_attachment(appointment: Appointment, *, recipient: User, for_doctor: bool):
    from medimeet.core.notifications import Attachment

    from .calendar import appointment_ics

    return Attachment(f"medimeet-{appointment.public_id}.ics", appointment_ics(appointment, viewer_timezone=recipient.timezone or "UTC", for_doctor=for_doctor), "text/calendar")


def _lock_schedule(doctor: DoctorProfile) -> DoctorSchedule:
    """Lock the doctor's schedule row (read in the same statement), creating it first if it never existed."""
    # In SQL (medimeet/core/sql.py says why): one of the statements every booking makes.
    statement = f"SELECT {sql.columns(DoctorSchedule, 's')} FROM appointments_doctorschedule s WHERE s.doctor_id = %s" + (
        " FOR UPDATE" if connection.features.has_select_for_update else ""
    )
    found = sql.rows(statement, [doctor.pk])
    if not found:
        selectors.schedule_for(doctor)
        found = sql.rows(statement, [doctor.pk])
    (schedule,) = sql.instances(found[0], DoctorSchedule)
    return schedule


def holds_release_expired(*, doctor: DoctorProfile | None = None, patient: User | None = None) -> int:
    """Mark holds and unpaid bookings whose hold has lapsed as expired (on read, before booking
    and periodically from Celery): the doctor's, the patient's (either, given both), or all.
    Idempotent."""
    now = timezone.now()
    stale = Appointment.objects.filter(status__in=Appointment.AWAITING_STATUSES, hold_expires_at__lte=now)
    scope = Q()
    if doctor is not None:
        scope |= Q(doctor=doctor)
    if patient is not None:
        scope |= Q(patient=patient)
    stale = stale.filter(scope)
    return holds_expire(list(stale.order_by().values_list("pk", flat=True)), now=now)  # one read; nearly always empty


def holds_expire(candidates: list[int], *, now: datetime | None = None) -> int:
    """Switch these holds and unpaid bookings to expired if their hold has lapsed by ``now``
    (the ones a read found: holds_release_expired, or a booking's slot_check in its way),
    with what freed time sets off. Idempotent."""
    if not candidates:
        return 0
    now = now or timezone.now()
    with transaction.atomic():
        # Locked in id order (no deadlock between two releasers) and re-checked: another
        # releaser may have expired some of them meanwhile.
        expired = list(
            Appointment.objects.select_for_update()
            .filter(pk__in=candidates, status__in=Appointment.AWAITING_STATUSES, hold_expires_at__lte=now)
            .order_by("pk")
            .only("pk", "status", "doctor_id", "start", "end", "blocked_start", "blocked_end")
        )
        if not expired:
            return 0
        Appointment.objects.filter(pk__in=[a.pk for a in expired]).update(status=Status.EXPIRED, sequence=models.F("sequence") + 1)
        AppointmentEvent.objects.bulk_create(
            [AppointmentEvent(appointment=a, from_status=a.status, to_status=Status.EXPIRED, note="Hold expired") for a in expired]
        )
        # A waitlist offer that lapsed goes to the next patient waiting.
        WaitlistEntry.objects.filter(offer__in=expired, status=WaitlistEntry.Status.OFFERED).update(status=WaitlistEntry.Status.CANCELLED)
        _plan_credits_return([a.pk for a in expired])
        for freed in DoctorProfile.objects.filter(pk__in={a.doctor_id for a in expired}).order_by("pk"):
            for lapsed in (a for a in expired if a.doctor_id == freed.pk):
                availability_changed_on_commit(
                    doctor=freed, state=FREED, start=lapsed.start, end=lapsed.end, blocked_start=lapsed.blocked_start, blocked_end=lapsed.blocked_end
                )
            waitlist_offer_on_commit(freed.pk)
            next_available_refresh_on_commit(freed)  # freed time may come before the stored first free slot
    return len(expired)


def _book_check(*, doctor: DoctorProfile, service: DoctorService, start: datetime, schedule: DoctorSchedule, exclude: Appointment | None = None, ignore_notice: bool = False) -> None:
    """Under the schedule lock: SlotTaken unless ``start`` is free; the lapsed holds in its way
    are expired, so that the insert does not meet them in the exclusion constraints."""
    slot = selectors.slot_check(doctor=doctor, service=service, start=start, schedule=schedule, exclude=exclude, ignore_notice=ignore_notice)
    if not slot.free:
        raise SlotTaken
    holds_expire(slot.lapsed)


def _check_patient(patient: User) -> None:
    if patient.role != User.Role.PATIENT:
        raise ApplicationError("APPT_001", gettext("Only patient accounts can book appointments."))
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
    reason: str = "",
) -> Appointment:
    """Hold a free slot for the patient for the platform's hold minutes (or ``hold_minutes``) while they fill in details and
    pay. A retried request with the same Idempotency-Key returns the same appointment. A new hold
    replaces the patient's previous hold with this doctor (one live hold per doctor).
    With ``reason`` the details come in the same call: the booking is created as
    appointment_confirm_details would leave it (waiting for payment, or confirmed when free)."""
    try:
        return _hold(
            patient=patient, service=service, start=start, idempotency_key=idempotency_key, request=request, hold_minutes=hold_minutes, reason=reason
        )
    except (SlotTaken, IntegrityError, ApplicationError) as exc:
        # A retried request finds its own appointment in the way (in the slot, or the unique
        # key): it gets that appointment back. Looked up only when something failed, so a first
        # request costs no extra read.
        existing = Appointment.objects.filter(patient=patient, idempotency_key=idempotency_key).first() if idempotency_key else None
        if existing is not None:
            if existing.service_id != service.pk or existing.start != start:
                raise ApplicationError("REQ_001", gettext("This Idempotency-Key was already used for a different booking."), fields={"idempotency_key": [gettext("Reused with different content.")]}) from None
            return existing
        if isinstance(exc, ApplicationError):
            raise
        raise _slot_unavailable(service.doctor, service, start.astimezone(UTC)) from (None if isinstance(exc, SlotTaken) else exc)


def _hold(*, patient: User, service: DoctorService, start: datetime, idempotency_key: str, request: HttpRequest | None, hold_minutes: int | None, reason: str) -> Appointment:
    _check_patient(patient)
    if reason:
        reason = _reason_check(reason)
    doctor = service.doctor
    if not service.is_active or not doctor.is_listed:
        raise ApplicationError("APPT_001", gettext("This service cannot be booked."), fields={"service": [gettext("Not available for booking.")]})
    if start.tzinfo is None:
        raise ApplicationError("REQ_001", fields={"start": [gettext("Give the time with its offset, e.g. 2026-12-01T09:00:00Z.")]})
    start = start.astimezone(UTC)
    with transaction.atomic():
        schedule = _lock_schedule(doctor)
        slot = selectors.slot_check(doctor=doctor, service=service, start=start, schedule=schedule)
        if not slot.free:
            raise SlotTaken
        end = start + timedelta(minutes=service.duration_minutes)
        # The patient's side: nothing else of theirs at that time, except their live hold with
        # this doctor, which this booking replaces (rare: read whole afterwards). Their lapsed
        # holds are expired with the doctor's, before the insert meets them in the exclusion
        # constraints.
        now = timezone.now()
        mine, lapsed = [], list(slot.lapsed)
        for pk, doctor_id, status, hold_expires_at in selectors.patient_in_the_way(patient=patient, doctor=doctor, start=start, end=end):
            taken = Appointment.time_taken(status, hold_expires_at, now)
            if taken == "lapsed":
                lapsed.append(pk)
            elif taken == "occupied":
                if doctor_id != doctor.pk or status != Status.HELD:
                    raise ApplicationError("APPT_005", gettext("You already have an appointment at that time."))
                mine.append(pk)
        holds_expire(lapsed, now=now)
        mine = list(Appointment.objects.filter(pk__in=mine)) if mine else []
        for previous in mine:
            previous.status = Status.CANCELLED
            previous.cancelled_by = Appointment.CancelledBy.PATIENT
            previous.cancelled_at = timezone.now()
            previous.cancellation_reason = "Replaced by a new hold"
            previous.save(update_fields=["status", "cancelled_by", "cancelled_at", "cancellation_reason", "updated_at"])
            _record(previous, from_status=Status.HELD, by=patient, note="Replaced by a new hold", request=request)
            availability_changed_on_commit(
                doctor=doctor, state=FREED, start=previous.start, end=previous.end, blocked_start=previous.blocked_start, blocked_end=previous.blocked_end, schedule=schedule
            )
        if mine:
            _plan_credits_return([a.pk for a in mine])
        price = appointment_price(patient=patient, service=service, start=start)
        plan_credit = _plan_credit_take(patient=patient, doctor=doctor) if price else None
        if plan_credit is not None:
            price = 0  # covered by the patient's care plan: one consultation of this period is used
        status = Status.HELD if not reason else Status.CONFIRMED if price == 0 else Status.PENDING_PAYMENT
        # No savepoint: an IntegrityError (the exclusion constraints are the last word)
        # ends the whole transaction anyway.
        appointment = sql.insert(
            Appointment(
                doctor=doctor,
                patient=patient,
                service=service,
                start=start,
                end=end,
                blocked_start=start - timedelta(minutes=schedule.buffer_before_minutes),
                blocked_end=end + timedelta(minutes=schedule.buffer_after_minutes),
                status=status,
                hold_expires_at=None if status == Status.CONFIRMED else timezone.now() + timedelta(minutes=hold_minutes or platform.hold_minutes()),
                reason=reason,
                price_minor=price,
                currency=service.currency,
                idempotency_key=idempotency_key[:100],
            )
        )
        if plan_credit is not None:
            from payments.subscriptions import credit_use_record

            credit_use_record(balance=plan_credit, appointment=appointment)
        _record(appointment, from_status="", by=patient, request=request)
        appointment_availability_changed(appointment, state=BOOKED if status == Status.CONFIRMED else HELD, schedule=schedule)
        if _may_move_first_free_slot(doctor, appointment, schedule):
            next_available_refresh_on_commit(doctor)
        if status == Status.CONFIRMED:
            appointment_notify(appointment=appointment, change="confirmed")
    return appointment


def _may_move_first_free_slot(doctor: DoctorProfile, appointment: Appointment, schedule: DoctorSchedule) -> bool:
    """Whether a new booking can change the doctor's stored first free slot (for "soonest
    availability"). A booking only takes time away, so it can only when it overlaps that slot
    (with the buffers; the slot lasts at most as long as this service, since it is computed for
    the shortest active one), or fills the day under a daily cap, or the slot is unknown. Any
    other booking leaves it as it is; the periodic refresh picks up slots that pass."""
    first = doctor.next_available_at
    if first is None:
        return True
    if schedule.daily_cap is not None:
        from zoneinfo import ZoneInfo

        tz = ZoneInfo(schedule.timezone)
        if appointment.start.astimezone(tz).date() == first.astimezone(tz).date():
            return True
    slot_end = first + (appointment.end - appointment.start) + timedelta(minutes=schedule.buffer_after_minutes)
    return appointment.blocked_start < slot_end and appointment.blocked_end > first - timedelta(minutes=schedule.buffer_before_minutes)


def _plan_credit_take(*, patient: User, doctor: DoctorProfile):
    """One consultation of the patient's care plan if it covers this doctor (payments owns plans)."""
    from payments.subscriptions import credit_take

    return credit_take(patient=patient, doctor=doctor)


def _plan_credits_return(appointment_ids: list[int]) -> None:
    from payments.subscriptions import credits_return

    credits_return(appointment_ids=appointment_ids)


def _reason_check(reason: str) -> str:
    reason = (reason or "").strip()
    if not reason:
        raise ApplicationError("REQ_001", fields={"reason": [gettext("Tell the doctor briefly why you are booking.")]})
    if len(reason) > 2000:
        raise ApplicationError("REQ_001", fields={"reason": [gettext("Keep the reason under 2,000 characters.")]})
    return reason


def appointment_book_by_doctor(
    *, doctor_user: User, patient: User, service: DoctorService, start: datetime, reason: str, request: HttpRequest | None = None
) -> Appointment:
    """A doctor books one of their patients (someone who has had a booking with them), e.g. a
    same-day follow-up: the doctor's own minimum notice does not apply to them. The patient is
    emailed and pays before the appointment (the booking waits until the start, or until it
    costs nothing)."""
    if service.doctor.user_id != doctor_user.pk:
        raise ApplicationError("APPT_001", fields={"service": [gettext("Choose one of your own services.")]})
    _check_patient(patient)
    if not selectors.is_patient_of(doctor=service.doctor, patient=patient):
        raise ApplicationError("APPT_001", fields={"patient": [gettext("Book patients who have had an appointment with you.")]})
    reason = (reason or "").strip()
    if not reason:
        raise ApplicationError("REQ_001", fields={"reason": [gettext("Note why the patient should come.")]})
    if start.tzinfo is None:
        raise ApplicationError("REQ_001", fields={"start": [gettext("Give the time with its offset.")]})
    start = start.astimezone(UTC)
    doctor = service.doctor
    try:
        with transaction.atomic():
            schedule = _lock_schedule(doctor)
            _book_check(doctor=doctor, service=service, start=start, schedule=schedule, ignore_notice=True)
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
            appointment_availability_changed(appointment, state=BOOKED if appointment.status == Status.CONFIRMED else HELD, schedule=schedule)
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
    idempotency_key: str = "",
    request: HttpRequest | None = None,
) -> list[Appointment]:
    """Book a recurring series (e.g. weekly for 6 weeks) all or nothing: every occurrence must
    be a free slot, or none is booked (APPT_002 names the first that is not). Each occurrence is
    then an ordinary appointment, waiting for payment or confirmed when it costs nothing. The
    same ``idempotency_key`` again (a double click, a retry) returns the series already booked."""
    reason = (reason or "").strip()
    if not reason:
        raise ApplicationError("REQ_001", fields={"reason": [gettext("Tell the doctor briefly why you are booking.")]})
    if not 2 <= occurrences <= MAX_SERIES_OCCURRENCES or interval_days not in (7, 14, 28):
        raise ApplicationError("REQ_001", fields={"occurrences": [gettext("Book 2 to %(count)d occurrences, weekly, fortnightly or every four weeks.") % {"count": MAX_SERIES_OCCURRENCES}]})
    if first_start.tzinfo is None:
        raise ApplicationError("REQ_001", fields={"first_start": [gettext("Give the time with its offset.")]})
    _check_patient(patient)
    doctor = service.doctor
    if not service.is_active or not DoctorProfile.objects.listed().filter(pk=doctor.pk).exists():
        raise ApplicationError("APPT_001", fields={"service": [gettext("Not available for booking.")]})
    series_id = uuid.uuid4()
    starts = [first_start.astimezone(UTC) + timedelta(days=interval_days * n) for n in range(occurrences)]
    created: list[Appointment] = []
    key = idempotency_key[:90]  # each occurrence keeps "<key>:<number>" (at most 100 characters)
    try:
        with transaction.atomic():
            schedule = _lock_schedule(doctor)
            if key:  # decided under the schedule lock, so a concurrent duplicate waits and finds it
                first = Appointment.objects.filter(patient=patient, idempotency_key=f"{key}:1").first()
                if first is not None:
                    if first.series_id is None or first.start != starts[0] or first.service_id != service.pk:
                        raise ApplicationError("REQ_001", gettext("This Idempotency-Key was already used for a different booking."), fields={"idempotency_key": [gettext("Reused with different content.")]})
                    return list(Appointment.objects.filter(series_id=first.series_id).order_by("start"))
            for number, start in enumerate(starts, start=1):
                slot = selectors.slot_check(doctor=doctor, service=service, start=start, schedule=schedule)
                if not slot.free:
                    raise ApplicationError("APPT_002", gettext("Occurrence %(number)d (%(start)s UTC) is not available; nothing was booked.") % {"number": number, "start": f"{start:%Y-%m-%d %H:%M}"}, extra={"occurrence": number})
                holds_expire(slot.lapsed)
                end = start + timedelta(minutes=service.duration_minutes)
                price = appointment_price(patient=patient, service=service, start=start)
                appointment = Appointment.objects.create(
                    doctor=doctor, patient=patient, service=service, start=start, end=end,
                    blocked_start=start - timedelta(minutes=schedule.buffer_before_minutes),
                    blocked_end=end + timedelta(minutes=schedule.buffer_after_minutes),
                    status=Status.CONFIRMED if price == 0 else Status.PENDING_PAYMENT,
                    hold_expires_at=None if price == 0 else timezone.now() + timedelta(minutes=platform.hold_minutes()),
                    price_minor=price, currency=service.currency, reason=reason, series_id=series_id,
                    idempotency_key=f"{key}:{number}" if key else "",
                )
                _record(appointment, from_status="", by=patient, note=f"Series {number}/{occurrences}", request=request)
                appointment_availability_changed(appointment, state=BOOKED if appointment.status == Status.CONFIRMED else HELD, schedule=schedule)
                created.append(appointment)
            next_available_refresh_on_commit(doctor)
    except IntegrityError as exc:  # a concurrent booking won one of the slots: all or nothing
        raise ApplicationError("APPT_002", gettext("One of the occurrences was just taken; nothing was booked.")) from exc
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
    reason = _reason_check(reason)
    with transaction.atomic():
        # Locks the appointment row only; the parties come along for the answer.
        appointment = Appointment.objects.select_for_update(of=("self",)).select_related("doctor__user", "patient", "service").get(pk=appointment.pk)
        if appointment.patient_id != patient.pk:
            raise ApplicationError("APPT_006")
        if appointment.status != Status.HELD:
            raise ApplicationError("APPT_004", gettext("This appointment is not waiting for details."))
        if not appointment.is_hold_live:
            raise ApplicationError("APPT_003")
        if selectors.open_proposals_of(appointment).exists():
            raise ApplicationError("APPT_004", gettext("This time is proposed to you while your doctor is away: accept it on your appointment's page."))
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
            raise ApplicationError("APPT_003", gettext("The hold on this slot expired before the payment arrived."))
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
    policy = schedule.cancellation_policy or platform.cancellation_policy_default()
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
    role = appointment.cancelling_role(by)
    if role == "patient" and appointment.patient_id != by.pk:
        raise ApplicationError("APPT_006")
    reason = (reason or "").strip()
    if not reason:
        raise ApplicationError("REQ_001", fields={"reason": [gettext("Give a reason for cancelling.")]})
    with transaction.atomic():
        appointment = Appointment.objects.select_for_update().select_related("doctor").get(pk=appointment.pk)
        quote = cancellation_quote(appointment=appointment, by_role=role)
        if not quote.allowed:
            raise ApplicationError("APPT_004", gettext("A %(status)s appointment cannot be cancelled.") % {"status": appointment.get_status_display().lower()})
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
        appointment_availability_changed(appointment, state=FREED)
        _rebooking_offers_close(appointment, by=by, request=request)
        next_available_refresh_on_commit(appointment.doctor)
        waitlist_offer_on_commit(appointment.doctor_id)
        if from_status == Status.HELD:
            _plan_credits_return([appointment.pk])
        if from_status in (Status.PENDING_PAYMENT, Status.CONFIRMED):
            appointment_notify(appointment=appointment, change="cancelled")
        if appointment.refund_percent:
            transaction.on_commit(lambda: refund_for_cancellation(appointment_id=appointment.pk, percent=appointment.refund_percent))
    return appointment


def refund_for_cancellation(*, appointment_id: int, percent: int) -> None:
    """The payments app refunds ``percent`` of what was paid (approved at once, processed by
    Celery with retries); the percentage stays on the appointment (refund_percent)."""
    from payments.services import refund_for_cancellation as payments_refund

    payments_refund(appointment_id=appointment_id, percent=percent)


def appointment_reschedule_refusal(*, appointment: Appointment, by: User, schedule: DoctorSchedule | None = None, now: datetime | None = None) -> str:
    """Why ``by`` may not move this confirmed appointment now, or "" if they may. Doctors and
    staff are not bound by the patient limits (how often, how late)."""
    if appointment.doctor.user_id == by.pk or staff_can(by, "appointments.change_appointment") or closed_by_doctor(appointment):
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
        if appointment.patient_id != by.pk and not is_doctor and not staff_can(by, "appointments.change_appointment"):
            raise ApplicationError("APPT_006")
        if appointment.status != Status.CONFIRMED:
            raise ApplicationError("APPT_004", gettext("Only confirmed appointments can be rescheduled."))
        schedule = _lock_schedule(appointment.doctor)
        refusal = appointment_reschedule_refusal(appointment=appointment, by=by, schedule=schedule)
        if refusal:
            raise ApplicationError("APPT_007", refusal)
        _book_check(doctor=appointment.doctor, service=appointment.service, start=start, schedule=schedule, exclude=appointment, ignore_notice=is_doctor)
        appointment.reschedule_count += 1
        _move(appointment, start=start, schedule=schedule)
        _rebooking_offers_close(appointment, by=by, request=request)
        _record(appointment, from_status=Status.CONFIRMED, by=by, note=f"Rescheduled to {start.isoformat()}", request=request)
        next_available_refresh_on_commit(appointment.doctor)
        waitlist_offer_on_commit(appointment.doctor_id)
        appointment_notify(appointment=appointment, change="rescheduled")
    return appointment


def _move(appointment: Appointment, *, start: datetime, schedule: DoctorSchedule) -> None:
    """Give the appointment a new time (same duration, the schedule's buffers) and save it in a
    savepoint: a clash the exclusion constraints catch is SlotTaken."""
    duration = appointment.end - appointment.start
    given_back = {"start": appointment.start, "end": appointment.end, "blocked_start": appointment.blocked_start, "blocked_end": appointment.blocked_end}
    appointment.start, appointment.end = start, start + duration
    appointment.blocked_start = start - timedelta(minutes=schedule.buffer_before_minutes)
    appointment.blocked_end = appointment.end + timedelta(minutes=schedule.buffer_after_minutes)
    appointment.sequence += 1
    try:
        with transaction.atomic():
            appointment.save(update_fields=["start", "end", "blocked_start", "blocked_end", "reschedule_count", "sequence", "updated_at"])
    except IntegrityError as exc:
        raise SlotTaken from exc
    availability_changed_on_commit(doctor=appointment.doctor, state=FREED, schedule=schedule, **given_back)
    appointment_availability_changed(appointment, state=BOOKED, schedule=schedule)


def appointment_no_show(*, appointment: Appointment, party: str, note: str = "") -> Appointment:
    """The consultation's presence shows who did not come (consultations settle it after a grace
    period). A doctor who never joined: the patient is refunded in full. A patient who never
    joined: the cancellation policy applies as if they had cancelled at the start time."""
    if party not in ("doctor", "patient"):
        raise ValueError(party)
    with transaction.atomic():
        appointment = Appointment.objects.select_for_update().select_related("doctor").get(pk=appointment.pk)
        if appointment.status != Status.CONFIRMED:
            return appointment
        percent = 100 if party == "doctor" else cancellation_quote(appointment=appointment, by_role="patient", now=appointment.start).refund_percent
        appointment.status = Status.NO_SHOW
        appointment.no_show_party = party
        appointment.refund_percent = percent
        appointment.sequence += 1
        appointment.save(update_fields=["status", "no_show_party", "refund_percent", "sequence", "updated_at"])
        _record(appointment, from_status=Status.CONFIRMED, by=None, note=note or f"The {party} did not join the consultation.")
        appointment_notify(appointment=appointment, change=f"{party}_no_show")
        if percent:
            transaction.on_commit(lambda: refund_for_cancellation(appointment_id=appointment.pk, percent=percent))
    return appointment


def appointment_set_status(*, appointment: Appointment, by: User, status: str, request: HttpRequest | None = None) -> Appointment:
    """The doctor moves a booking along: in progress, completed, or no-show (attendance)."""
    with transaction.atomic():
        appointment = Appointment.objects.select_for_update().select_related("doctor").get(pk=appointment.pk)
        if appointment.doctor.user_id != by.pk and not staff_can(by, "appointments.change_appointment"):
            raise ApplicationError("APPT_006")
        if status not in (Status.IN_PROGRESS, Status.COMPLETED, Status.NO_SHOW) or not appointment.can_transition_to(status):
            raise ApplicationError("APPT_004", gettext("A %(status)s appointment cannot become %(new_status)s.") % {"status": appointment.get_status_display().lower(), "new_status": Status(status).label.lower() if status in Status.values else status})
        if status == Status.NO_SHOW and appointment.start > timezone.now():
            raise ApplicationError("APPT_004", gettext("A patient can only be marked absent once the appointment has started."))
        from_status = appointment.status
        appointment.status = status
        appointment.sequence += 1
        appointment.save(update_fields=["status", "sequence", "updated_at"])
        _record(appointment, from_status=from_status, by=by, request=request)
    return appointment


# --- Clinical notes and follow-up ---------------------------------------------------------------

NOTE_STATUSES = (Status.IN_PROGRESS, Status.COMPLETED)
MAX_NOTE_LENGTH = 20_000
FOLLOW_UP_SEARCH_DAYS = 14


def _note_writer_check(appointment: Appointment, by: User) -> None:
    if appointment.doctor.user_id != by.pk:
        raise ApplicationError("APPT_011", gettext("Only the appointment's doctor writes its clinical notes."))
    if appointment.status not in NOTE_STATUSES:
        raise ApplicationError("APPT_004", gettext("Notes and follow-ups are written once the consultation has started."))


def clinical_note_write(*, appointment: Appointment, by: User, text: str, request: HttpRequest | None = None) -> ClinicalNote:
    """The appointment's doctor writes (or rewrites) the consultation notes; audited, with no
    clinical content in the audit entry."""
    text = (text or "").strip()
    if len(text) > MAX_NOTE_LENGTH:
        raise ApplicationError("REQ_001", fields={"text": [gettext("Keep notes under %(count)s characters.") % {"count": f"{MAX_NOTE_LENGTH:,}"}]})
    with transaction.atomic():
        appointment = Appointment.objects.select_for_update().select_related("doctor", "patient").get(pk=appointment.pk)
        _note_writer_check(appointment, by)
        note, _ = ClinicalNote.objects.select_for_update().get_or_create(appointment=appointment, defaults={"author": by})
        note.text, note.author = text, by
        note.save(update_fields=["text", "author", "updated_at"])
        audit_record(action="clinical_note.written", actor=by, target=note, subject_user=appointment.patient, request=request, metadata={"appointment": str(appointment.public_id), "length": len(text)})
    return note


def clinical_note_read(*, appointment: Appointment, by: User, request: HttpRequest | None = None) -> ClinicalNote | None:
    """The notes and follow-up of an appointment, for its doctor and its patient only (staff
    get APPT_011); every read of an existing note is audited."""
    if by.pk not in (appointment.patient_id, appointment.doctor.user_id):
        raise ApplicationError("APPT_011")
    note = ClinicalNote.objects.select_related("follow_up_service", "follow_up_appointment").filter(appointment=appointment).first()
    if note is not None:
        audit_record(action="clinical_note.read", actor=by, target=note, subject_user=appointment.patient, request=request, metadata={"appointment": str(appointment.public_id)})
    return note


def follow_up_recommend(
    *, appointment: Appointment, by: User, on: date, note: str = "", service: DoctorService | None = None, request: HttpRequest | None = None
) -> ClinicalNote:
    """The doctor recommends a follow-up from ``on`` (today to a year ahead, in the doctor's
    zone) for ``service`` (default: the same one); the patient is emailed a link to book it
    with one click."""
    from zoneinfo import ZoneInfo

    note = (note or "").strip()
    if len(note) > 2000:
        raise ApplicationError("REQ_001", fields={"note": [gettext("Keep the note under 2,000 characters.")]})
    service = service or appointment.service
    if service.doctor_id != appointment.doctor_id or not service.is_active:
        raise ApplicationError("REQ_001", fields={"service": [gettext("Choose one of your active services.")]})
    today = timezone.now().astimezone(ZoneInfo(selectors.schedule_for(appointment.doctor).timezone)).date()
    if not today <= on <= today + timedelta(days=365):
        raise ApplicationError("REQ_001", fields={"on": [gettext("Choose a date from today to %(day)s.") % {"day": f"{today + timedelta(days=365):%d %b %Y}"}]})
    with transaction.atomic():
        appointment = Appointment.objects.select_for_update().select_related("doctor__user", "patient").get(pk=appointment.pk)
        _note_writer_check(appointment, by)
        record, _ = ClinicalNote.objects.select_for_update().get_or_create(appointment=appointment, defaults={"author": by})
        record.follow_up_on, record.follow_up_note, record.follow_up_service = on, note, service
        record.save(update_fields=["follow_up_on", "follow_up_note", "follow_up_service", "updated_at"])
        audit_record(action="clinical_note.follow_up_recommended", actor=by, target=record, subject_user=appointment.patient, request=request, metadata={"appointment": str(appointment.public_id)})
        transaction.on_commit(lambda: _notify_follow_up(appointment, on))
    return record


def _notify_follow_up(appointment: Appointment, on: date) -> None:
    _email_patient(appointment=appointment, event="appointment.follow_up_recommended", follow_up_on=on)


def _email_patient(*, appointment: Appointment, event: str, **context: Any) -> None:
    """Notify the appointment's patient of ``event``; the context always has the patient,
    the doctor and the appointment's page."""
    from django.urls import reverse

    from medimeet.core.notifications import notify

    notify(
        user=appointment.patient,
        event=event,
        context={
            "patient": appointment.patient,
            "doctor": appointment.doctor,
            "appointment": appointment,
            "appointment_url": settings.SITE_URL + reverse("appointments:detail", args=[appointment.public_id]),
            **context,
        },
    )


def follow_up_book(*, appointment: Appointment, patient: User, request: HttpRequest | None = None) -> Appointment:
    """The patient's one click on "Book your follow-up": hold the first free slot of the
    recommended service on or after the recommended date (the usual hold, priced by
    appointment_price, so a free follow-up window applies). A follow-up already held or booked
    from this recommendation is returned instead of a second one."""
    from zoneinfo import ZoneInfo

    if appointment.patient_id != patient.pk:
        raise ApplicationError("APPT_006")
    record = ClinicalNote.objects.select_related("follow_up_service__doctor", "follow_up_appointment").filter(appointment=appointment).first()
    if record is None or record.follow_up_on is None:
        raise ApplicationError("APPT_010")
    existing = record.follow_up_appointment
    if existing is not None and (existing.status in Appointment.BOOKED_STATUSES + (Status.COMPLETED,) or existing.is_hold_live):
        return existing
    service = record.follow_up_service
    tz = ZoneInfo(selectors.schedule_for(service.doctor).timezone)
    window_start = max(timezone.now(), datetime.combine(record.follow_up_on, time(0), tzinfo=tz))
    slots = selectors.free_slots(doctor=service.doctor, service=service, window_start=window_start, window_end=window_start + timedelta(days=FOLLOW_UP_SEARCH_DAYS))
    for slot in slots[:PROPOSAL_ATTEMPTS]:
        try:
            hold = appointment_hold(patient=patient, service=service, start=slot.start, request=request)
        except ApplicationError as exc:
            if exc.code in ("APPT_002", "APPT_005"):
                continue  # taken meanwhile, or the patient is busy then: the next one
            raise
        ClinicalNote.objects.filter(pk=record.pk).update(follow_up_appointment=hold)
        return hold
    raise ApplicationError("APPT_002", gettext("No free time from %(day)s in the following two weeks. Choose a time on the booking page.") % {"day": f"{record.follow_up_on:%d %b %Y}"})


# --- Waitlist -------------------------------------------------------------------------------


def waitlist_join(*, patient: User, service: DoctorService, first_day, last_day, request: HttpRequest | None = None) -> WaitlistEntry:
    """Wait for a slot of ``service`` between two dates; the first freed slot is offered."""
    _check_patient(patient)
    doctor = service.doctor
    if not service.is_active or not DoctorProfile.objects.listed().filter(pk=doctor.pk).exists():
        raise ApplicationError("APPT_001", fields={"service": [gettext("Not available for booking.")]})
    today = timezone.localdate()
    horizon = today + timedelta(days=selectors.schedule_for(doctor).max_days_ahead)
    if first_day < today or last_day < first_day or last_day > horizon:
        raise ApplicationError("REQ_001", fields={"last_day": [gettext("Choose dates from today to %(day)s, the last not before the first.") % {"day": f"{horizon:%d %b %Y}"}]})
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
    _email_patient(appointment=hold, event="appointment.waitlist_offer", minutes=settings.WAITLIST_OFFER_MINUTES)


# --- Doctor-side control: emergency unavailability and vacations -----------------------------


def _notify_patient_cancelled(appointment: Appointment, *, event: str) -> None:
    from django.urls import reverse

    _email_patient(
        appointment=appointment,
        event=event,
        search_url=settings.SITE_URL + reverse("doctors:search") + f"?specialization={appointment.doctor.primary_specialization.slug}",
        rebook_url=settings.SITE_URL + reverse("doctors:detail", args=[appointment.doctor.slug]),
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
    appointment_availability_changed(appointment, state=FREED)
    _rebooking_offers_close(appointment, by=by, request=request)
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
            raise ApplicationError("REQ_001", fields={"until": [gettext("Give a time in the future.")]})
        day = today
        while datetime.combine(day, time(0), tzinfo=tz) < until:
            schedule.overrides.filter(date=day).delete()
            DateOverride.objects.create(schedule=schedule, date=day, is_closed=True, note="Emergency unavailability")
            day += timedelta(days=1)
        days_availability_changed(doctor=doctor, schedule=schedule, first_day=today, last_day=day - timedelta(days=1))
        affected = list(
            Appointment.objects.select_for_update()
            .select_related("patient", "doctor__primary_specialization", "service")
            .filter(doctor=doctor, status__in=Appointment.CONSTRAINED_STATUSES, start__lt=until, end__gt=now)
        )
        message = reason or "Your doctor is unavailable because of an emergency."
        for appointment in affected:
            _cancel_for_doctor(appointment, by=by, reason=message, request=request)
            transaction.on_commit(lambda a=appointment: _notify_patient_cancelled(a, event="appointment.cancelled_by_doctor"))
        audit_record(action="schedule.emergency_unavailable", actor=by, target=schedule, request=request, metadata={"until": until.isoformat(), "cancelled": len(affected)})
        next_available_refresh_on_commit(doctor)
    return affected


def doctor_vacation_set(*, doctor: DoctorProfile, first_day, last_day, by: User, note: str = "", request: HttpRequest | None = None) -> list[Appointment]:
    """Close every date from ``first_day`` to ``last_day`` to new bookings and return the
    appointments already booked in that range. After commit each patient is offered concrete
    new times, held for them (rebooking_offer_make), or may cancel with a full refund."""
    if last_day < first_day:
        raise ApplicationError("REQ_001", fields={"last_day": [gettext("The vacation ends before it starts.")]})
    if (last_day - first_day).days > 120:
        raise ApplicationError("REQ_001", fields={"last_day": [gettext("Set vacations of at most 120 days.")]})
    # A day of slack for the doctor's zone; far-past dates (year 1) overflowed the UTC range: a 500.
    if first_day < timezone.now().date() - timedelta(days=1):
        raise ApplicationError("REQ_001", fields={"first_day": [gettext("A vacation cannot start in the past.")]})
    with transaction.atomic():
        schedule = _lock_schedule(doctor)
        from zoneinfo import ZoneInfo

        tz = ZoneInfo(schedule.timezone)
        schedule.overrides.filter(date__range=(first_day, last_day)).delete()
        DateOverride.objects.bulk_create(
            [DateOverride(schedule=schedule, date=first_day + timedelta(days=n), is_closed=True, note=note or "Vacation") for n in range((last_day - first_day).days + 1)]
        )
        days_availability_changed(doctor=doctor, schedule=schedule, first_day=first_day, last_day=last_day)
        start = datetime.combine(first_day, time(0), tzinfo=tz)
        end = datetime.combine(last_day + timedelta(days=1), time(0), tzinfo=tz)
        affected = list(
            Appointment.objects.select_related("patient", "doctor__primary_specialization", "service")
            .filter(doctor=doctor, status__in=Appointment.BOOKED_STATUSES + ("pending_payment",), start__lt=end, end__gt=start)
        )

        from .tasks import make_rebooking_offer

        for appointment in affected:
            enqueue_on_commit(make_rebooking_offer, appointment_id=appointment.pk)
        audit_record(action="schedule.vacation_set", actor=by, target=schedule, request=request, metadata={"from": first_day.isoformat(), "to": last_day.isoformat(), "affected": len(affected)})
        next_available_refresh_on_commit(doctor)
    return affected


# --- Vacation rebooking offers ---------------------------------------------------------------

REBOOKABLE_STATUSES = (Status.CONFIRMED, Status.PENDING_PAYMENT)
PROPOSAL_ATTEMPTS = 3


def _busy_of(patient: User, *, exclude_pk: int | None = None) -> list[selectors.Interval]:
    """The patient's own bookings and live holds, as intervals (a proposal must not clash)."""
    rows = Appointment.objects.occupying().filter(patient=patient).exclude(pk=exclude_pk).values_list("start", "end")
    return [selectors.Interval(start, end) for start, end in rows]


def _hold_proposal(*, patient: User, choices: list[tuple[selectors.Slot, DoctorService]], until: datetime, busy: list[selectors.Interval]) -> Appointment | None:
    """Hold the first of ``choices`` the patient can take, until ``until`` (never past the slot's
    start). A doctor the patient already holds a time with is skipped: a proposal never replaces
    a hold the patient is using."""
    attempts = 0
    for slot, service in choices:
        if attempts == PROPOSAL_ATTEMPTS:
            break
        if any(b.start < slot.end and b.end > slot.start for b in busy):
            continue
        if Appointment.objects.filter(patient=patient, doctor_id=service.doctor_id, status=Status.HELD, hold_expires_at__gt=timezone.now()).exists():
            continue
        minutes = int((min(until, slot.start) - timezone.now()).total_seconds() // 60)
        if minutes < 1:
            continue
        attempts += 1
        try:
            return appointment_hold(patient=patient, service=service, start=slot.start, hold_minutes=minutes)
        except ApplicationError:
            continue  # taken meanwhile, or the patient is busy then: the next one
    return None


def rebooking_offer_make(*, appointment_id: int) -> RebookingOffer | None:
    """Propose new times to the patient of a booking that falls in its doctor's vacation: the
    same doctor's first free slot afterwards, and the closest slot of another doctor of the same
    specialization (same mode and duration), each held for the patient for VACATION_OFFER_HOURS
    (never past the original appointment). Emails the patient after commit; with nothing to
    propose, the patient is told they may move or cancel for free. Idempotent."""
    now = timezone.now()
    appointment = Appointment.objects.select_related("patient", "doctor__user", "doctor__primary_specialization", "service").filter(pk=appointment_id).first()
    if appointment is None or appointment.status not in REBOOKABLE_STATUSES or appointment.start <= now:
        return None
    if RebookingOffer.objects.filter(appointment=appointment, status=RebookingOffer.Status.OPEN, expires_at__gt=now).exists():
        return None
    RebookingOffer.objects.filter(appointment=appointment, status=RebookingOffer.Status.OPEN).update(status=RebookingOffer.Status.CLOSED, decided_at=now)
    until = min(now + timedelta(hours=settings.VACATION_OFFER_HOURS), appointment.start)
    patient, service = appointment.patient, appointment.service
    # The same doctor: the vacation's dates are closed, so the first free slot from the
    # original time on is the first one after the vacation.
    horizon = timedelta(days=selectors.schedule_for(appointment.doctor).max_days_ahead + 1)
    after = max(now, appointment.start)
    same_slots = selectors.free_slots(doctor=appointment.doctor, service=service, window_start=after, window_end=after + horizon)
    same = _hold_proposal(patient=patient, choices=[(slot, service) for slot in same_slots], until=until, busy=_busy_of(patient, exclude_pk=appointment.pk))
    # Another doctor: the original still stands until the patient chooses, so nothing may overlap it.
    other_slots = selectors.rebooking_other_doctor_slots(appointment=appointment, busy=_busy_of(patient), now=now)
    other = _hold_proposal(patient=patient, choices=other_slots, until=until, busy=_busy_of(patient))
    if same is None and other is None:
        transaction.on_commit(lambda: _notify_patient_cancelled(appointment, event="appointment.doctor_on_vacation"))
        return None
    with transaction.atomic():
        offer = RebookingOffer.objects.create(
            appointment=appointment, original_start=appointment.start, same_doctor_hold=same, other_doctor_hold=other,
            expires_at=min(hold.hold_expires_at for hold in (same, other) if hold is not None),
        )
        audit_record(action="rebooking_offer.made", target=offer, subject_user=patient, metadata={"appointment": str(appointment.public_id), "same_doctor": same is not None, "other_doctor": other is not None})
        transaction.on_commit(lambda: _notify_rebooking_offer(offer.pk))
    return offer


def _notify_rebooking_offer(offer_id: int) -> None:
    offer = RebookingOffer.objects.select_related("appointment__patient", "appointment__doctor", "appointment__service").get(pk=offer_id)
    appointment = offer.appointment
    proposals = [
        {"label": label, "doctor": hold.doctor.display_name, "start": hold.start, "price_minor": hold.price_minor, "currency": hold.currency}
        for label, hold in ((gettext_lazy("Same doctor, after the time away"), offer.same_doctor_hold), (gettext_lazy("Another doctor of the same specialization"), offer.other_doctor_hold))
        if hold is not None
    ]
    _email_patient(appointment=appointment, event="appointment.rebooking_offer", proposals=proposals, paid=appointment.status == Status.CONFIRMED, expires_at=offer.expires_at)


def _hold_release(hold: Appointment, *, by: User | None, note: str, request: HttpRequest | None = None) -> None:
    """Give a proposed hold's time back (the patient chose otherwise)."""
    hold.status = Status.CANCELLED
    hold.cancelled_by = Appointment.CancelledBy.PATIENT if by is not None else Appointment.CancelledBy.SYSTEM
    hold.cancelled_at = timezone.now()
    hold.cancellation_reason = note
    hold.hold_expires_at = None
    hold.sequence += 1
    hold.save(update_fields=["status", "cancelled_by", "cancelled_at", "cancellation_reason", "hold_expires_at", "sequence", "updated_at"])
    _record(hold, from_status=Status.HELD, by=by, note=note, request=request)
    appointment_availability_changed(hold, state=FREED)
    next_available_refresh_on_commit(hold.doctor)
    waitlist_offer_on_commit(hold.doctor_id)


def _rebooking_offers_close(
    appointment: Appointment, *, status: str = RebookingOffer.Status.CLOSED, choice: str = "", result: Appointment | None = None, by: User | None = None, request: HttpRequest | None = None
) -> None:
    """Close the appointment's open offers (the patient decided, or the appointment was
    cancelled or moved another way), releasing the proposed holds still held except ``result``."""
    offers = RebookingOffer.objects.select_for_update(of=("self",)).select_related("same_doctor_hold__doctor", "other_doctor_hold__doctor").filter(appointment=appointment, status=RebookingOffer.Status.OPEN)
    for offer in offers:
        for hold in (offer.same_doctor_hold, offer.other_doctor_hold):
            if hold is not None and hold.status == Status.HELD and hold != result:
                _hold_release(hold, by=by, note="Rebooking proposal not taken", request=request)
        offer.status, offer.choice, offer.result, offer.decided_at = status, choice, result, timezone.now()
        offer.save(update_fields=["status", "choice", "result", "decided_at", "updated_at"])


def rebooking_offer_accept(*, offer: RebookingOffer, patient: User, choice: str, request: HttpRequest | None = None) -> Appointment:
    """The patient's one click on a vacation rebooking offer. ``same_doctor``: the appointment
    moves into the held slot (a paid booking stays paid). ``other_doctor``: the appointment is
    cancelled as closed by the doctor (full refund) and the held slot becomes the patient's
    booking with the other doctor, waiting for payment unless free. ``cancel``: the appointment
    is cancelled with a full refund. The proposal not taken is released. A repeated click with
    the same choice returns the same booking."""
    if choice not in RebookingOffer.Choice.values:
        raise ApplicationError("REQ_001", fields={"choice": [gettext("Choose one of: %(values)s.") % {"values": ", ".join(RebookingOffer.Choice.values)}]})
    try:
        with transaction.atomic():
            return _rebooking_offer_accept(offer=offer, patient=patient, choice=choice, request=request)
    except SlotTaken:
        raise ApplicationError("APPT_002", gettext("The proposed time was just taken; nothing was changed.")) from None


def _rebooking_offer_accept(*, offer: RebookingOffer, patient: User, choice: str, request: HttpRequest | None) -> Appointment:
    offer = RebookingOffer.objects.select_for_update(of=("self",)).select_related("appointment").get(pk=offer.pk)
    if offer.appointment.patient_id != patient.pk:
        raise ApplicationError("APPT_006")
    if offer.status == RebookingOffer.Status.ACCEPTED and offer.choice == choice and offer.result_id:
        return Appointment.objects.get(pk=offer.result_id)  # a double click
    original = Appointment.objects.select_for_update().select_related("doctor__user", "patient", "service").get(pk=offer.appointment_id)
    if not offer.is_open or original.status not in REBOOKABLE_STATUSES or original.start != offer.original_start:
        raise ApplicationError("APPT_009")
    if choice == RebookingOffer.Choice.CANCEL:
        _rebooking_offers_close(original, status=RebookingOffer.Status.DECLINED, choice=choice, result=original, by=patient, request=request)
        audit_record(action="rebooking_offer.declined", actor=patient, target=offer, subject_user=patient, request=request)
        return appointment_cancel(appointment=original, by=patient, reason="Cancelled while the doctor is away", request=request)
    hold_id = offer.same_doctor_hold_id if choice == RebookingOffer.Choice.SAME_DOCTOR else offer.other_doctor_hold_id
    if hold_id is None:
        raise ApplicationError("REQ_001", fields={"choice": [gettext("This offer has no time of that kind.")]})
    hold = Appointment.objects.select_related("doctor__user", "service").get(pk=hold_id)
    schedule = _lock_schedule(hold.doctor)
    hold = Appointment.objects.select_for_update().select_related("doctor__user", "service").get(pk=hold_id)
    if hold.status != Status.HELD or not hold.is_hold_live:
        raise ApplicationError("APPT_003", gettext("The proposed time is no longer held for you."))
    audit_record(action="rebooking_offer.accepted", actor=patient, target=offer, subject_user=patient, request=request, metadata={"choice": choice})
    if choice == RebookingOffer.Choice.SAME_DOCTOR:
        # The hold gives its time back first, so the moved appointment never overlaps it.
        _hold_release(hold, by=patient, note="Used to move the appointment", request=request)
        _rebooking_offers_close(original, status=RebookingOffer.Status.ACCEPTED, choice=choice, result=original, by=patient, request=request)
        _move(original, start=hold.start, schedule=schedule)
        _record(original, from_status=original.status, by=patient, note=f"Rescheduled to {hold.start.isoformat()}", request=request)
        next_available_refresh_on_commit(original.doctor)
        appointment_notify(appointment=original, change="rescheduled")
        return original
    _rebooking_offers_close(original, status=RebookingOffer.Status.ACCEPTED, choice=choice, result=hold, by=patient, request=request)
    away = f"Rebooked with {hold.doctor.display_name} while {original.doctor.display_name} is away"
    _cancel_for_doctor(original, by=patient, reason=away, request=request)
    appointment_notify(appointment=original, change="cancelled")
    return appointment_confirm_details(appointment=hold, patient=patient, reason=original.reason or away, request=request)


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
        # The next day first: it nearly always holds a free slot, and the engine's cost grows
        # with the window; then the rest of the horizon.
        middle, end = now + timedelta(days=1), now + NEXT_AVAILABLE_HORIZON
        for window_start, window_end in ((now, middle), (middle, end)):
            slots = selectors.free_slots(doctor=doctor, service=service, window_start=window_start, window_end=window_end)
            if slots:
                first = slots[0].start
                break
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
            raise ApplicationError("REQ_001", fields={"weekly_hours": [gettext("Weekdays run from 0 (Monday) to 6 (Sunday).")]})
        if start >= end:
            raise ApplicationError("REQ_001", fields={"weekly_hours": [gettext("A range must end after it starts (%(start)s–%(end)s).") % {"start": f"{start:%H:%M}", "end": f"{end:%H:%M}"}]})
        by_day.setdefault(weekday, []).append((start, end))
    for day_ranges in by_day.values():
        day_ranges.sort()
        for (_, previous_end), (next_start, _) in zip(day_ranges, day_ranges[1:], strict=False):
            if next_start < previous_end:
                raise ApplicationError("REQ_001", fields={"weekly_hours": [gettext("Working ranges on one day must not overlap.")]})


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
        rules_availability_changed(doctor=doctor, schedule=schedule)
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
        days_availability_changed(doctor=doctor, schedule=schedule, first_day=day, last_day=day)
        next_available_refresh_on_commit(doctor)
    return rows


def override_clear(*, doctor: DoctorProfile, day, by: User, request: HttpRequest | None = None) -> int:
    """Let a date follow the weekly hours again."""
    with transaction.atomic():
        schedule = _lock_schedule(doctor)
        deleted, _ = schedule.overrides.filter(date=day).delete()
        if deleted:
            audit_record(action="schedule.override_cleared", actor=by, target=schedule, request=request, metadata={"date": day.isoformat()})
            days_availability_changed(doctor=doctor, schedule=schedule, first_day=day, last_day=day)
            next_available_refresh_on_commit(doctor)
    return deleted


# --- Reminders ------------------------------------------------------------------------------

# A reminder whose moment passed longer ago than this is skipped, not sent late: a booking made
# two hours ahead gets no "24 hours before" reminder, and a scan that was down catches up once.
REMINDER_LATENESS = timedelta(minutes=15)


def reminders_send_due(*, now: datetime | None = None) -> int:
    """Beat, every minute: remind the patient and the doctor of each confirmed appointment at
    each of their own offsets (default 24 h and 1 h before), by the channels they chose, with
    the service's preparation instructions and the calendar event.

    Idempotent: each reminder is a notification with the unique key (appointment, recipient, start,
    offset, channel), so a scan that runs twice, or on two workers at once, sends it once.
    The key holds the start time: a rescheduled appointment is reminded of its new time, and a
    cancelled one is no longer confirmed, so it is not reminded at all. Returns how many
    messages were queued."""
    from django.urls import reverse

    from medimeet.core.models import NotificationPreference
    from medimeet.core.notifications import notify

    now = now or timezone.now()
    stored = NotificationPreference.objects.values_list("user_id", "reminder_offsets")
    offsets_by_user = dict(stored)
    default_offsets = platform.reminder_offsets_default()
    all_offsets = {o for offsets in offsets_by_user.values() for o in offsets} | set(default_offsets)
    if not all_offsets:
        return 0
    # Appointments whose start is, for some offset o, within [now + o - lateness, now + o].
    windows = Q()
    for minutes in all_offsets:
        windows |= Q(start__gt=now + timedelta(minutes=minutes) - REMINDER_LATENESS, start__lte=now + timedelta(minutes=minutes))
    due = Appointment.objects.filter(windows, status=Status.CONFIRMED, start__gt=now).select_related("patient", "doctor__user", "service")
    queued = 0
    for appointment in due:
        url = settings.SITE_URL + reverse("appointments:detail", args=[appointment.public_id])
        for recipient, other, to_doctor in ((appointment.patient, appointment.doctor.user, False), (appointment.doctor.user, appointment.patient, True)):
            offsets = offsets_by_user.get(recipient.pk, default_offsets)
            reached = [m for m in offsets if appointment.start - timedelta(minutes=m) <= now < appointment.start - timedelta(minutes=m) + REMINDER_LATENESS]
            if not reached:
                continue
            minutes = min(reached)
            queued += len(
                notify(
                    user=recipient,
                    event="appointment.reminder",
                    context={
                        "appointment": appointment,
                        "to_doctor": to_doctor,
                        "other_zone": _zone_of(other, appointment, doctor=not to_doctor),
                        "preparation": "" if to_doctor else appointment.service.preparation_instructions,
                        "appointment_url": url,
                    },
                    attachments=[appointment_ics_attachment(appointment, recipient=recipient, for_doctor=to_doctor)],
                    dedupe_key=f"reminder:{appointment.pk}:{recipient.pk}:{int(appointment.start.timestamp())}:{minutes}",
                )
            )
    return queued
