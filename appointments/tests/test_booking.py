"""Holds, bookings, cancellation and rescheduling — including concurrent attacks on one slot."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, time, timedelta

import pytest
import time_machine
from django.db import close_old_connections, connection
from django.utils import timezone

from accounts.tests.factories import StaffFactory, UserFactory
from appointments import services
from appointments.models import Appointment, AppointmentEvent, DoctorSchedule, WeeklyHours
from doctors.tests.factories import DoctorProfileFactory, ServiceFactory
from medimeet.core.errors import ApplicationError
from medimeet.core.models import AuditEvent

pytestmark = pytest.mark.django_db

NOW = datetime(2026, 11, 2, 7, 0, tzinfo=UTC)  # Monday
SLOT = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)


def open_all_week(doctor, **fields) -> DoctorSchedule:
    defaults = {"timezone": "UTC", "buffer_before_minutes": 0, "buffer_after_minutes": 0, "min_notice_minutes": 60, "max_days_ahead": 30}
    schedule = DoctorSchedule.objects.create(doctor=doctor, **{**defaults, **fields})
    WeeklyHours.objects.bulk_create([WeeklyHours(schedule=schedule, weekday=d, start_time=time(9), end_time=time(12)) for d in range(7)])
    return schedule


@pytest.fixture
def clinic():
    doctor = DoctorProfileFactory()
    open_all_week(doctor, reschedule_min_notice_minutes=60)
    return {"doctor": doctor, "service": ServiceFactory(doctor=doctor, duration_minutes=30, price_minor=50000)}


def free_hold(clinic, patient, start=SLOT) -> Appointment:
    """A hold that costs nothing (as a free follow-up will): booking it needs no payment."""
    hold = services.appointment_hold(patient=patient, service=clinic["service"], start=start)
    Appointment.objects.filter(pk=hold.pk).update(price_minor=0)
    hold.refresh_from_db()
    return hold


@pytest.fixture(autouse=True)
def frozen_time():
    with time_machine.travel(NOW, tick=False) as traveller:
        yield traveller


def test_hold_then_confirm_a_paid_booking_waits_for_payment(clinic):
    patient = UserFactory()

    hold = services.appointment_hold(patient=patient, service=clinic["service"], start=SLOT)
    booked = services.appointment_confirm_details(appointment=hold, patient=patient, reason="Chest pain when climbing stairs")
    paid = services.appointment_mark_paid(appointment=booked)

    assert hold.status == "held" and hold.hold_expires_at == NOW + timedelta(minutes=10)
    assert (hold.price_minor, hold.currency) == (50000, "INR")
    assert booked.status == "pending_payment"
    assert paid.status == "confirmed" and paid.hold_expires_at is None
    assert list(AppointmentEvent.objects.filter(appointment=hold).values_list("to_status", flat=True)) == ["held", "pending_payment", "confirmed"]
    assert AuditEvent.objects.filter(action="appointment.confirmed", target_id=str(hold.pk)).exists()


def test_a_free_booking_is_confirmed_directly(clinic):
    patient = UserFactory()
    hold = free_hold(clinic, patient)

    booked = services.appointment_confirm_details(appointment=hold, patient=patient, reason="Follow-up on blood tests")

    assert booked.status == "confirmed"


def test_a_held_slot_is_not_offered_to_others_and_booking_it_is_appt_002(clinic):
    services.appointment_hold(patient=UserFactory(), service=clinic["service"], start=SLOT)

    with pytest.raises(ApplicationError) as excinfo:
        services.appointment_hold(patient=UserFactory(), service=clinic["service"], start=SLOT)

    assert excinfo.value.code == "APPT_002"
    assert excinfo.value.extra["next_free_slots"][0]["start"] == "2026-11-02T09:30:00+00:00"
    assert Appointment.objects.count() == 1


def test_booking_with_the_reason_skips_the_details_step(clinic, django_capture_on_commit_callbacks):
    from django.core import mail

    from doctors.models import DoctorService

    paid = services.appointment_hold(patient=UserFactory(), service=clinic["service"], start=SLOT, reason=" Chest pain ")
    free_service = ServiceFactory(doctor=clinic["doctor"], duration_minutes=30, price_minor=50000, name="Follow-up", free_follow_up_days=7)
    patient = UserFactory()
    Appointment.objects.create(
        doctor=clinic["doctor"], patient=patient, service=free_service, start=SLOT - timedelta(days=3), end=SLOT - timedelta(days=3, minutes=-30),
        blocked_start=SLOT - timedelta(days=3), blocked_end=SLOT - timedelta(days=3, minutes=-30), status="completed", price_minor=50000, currency="INR",
    )
    with django_capture_on_commit_callbacks(execute=True):
        free = services.appointment_hold(patient=patient, service=DoctorService.objects.get(pk=free_service.pk), start=SLOT + timedelta(hours=1), reason="Follow-up")

    assert (paid.status, paid.reason, paid.hold_expires_at) == ("pending_payment", "Chest pain", NOW + timedelta(minutes=10))
    assert (free.status, free.price_minor, free.hold_expires_at) == ("confirmed", 0, None)
    assert list(AppointmentEvent.objects.filter(appointment=free).values_list("from_status", "to_status")) == [("", "confirmed")]
    assert AuditEvent.objects.filter(action="appointment.confirmed", target_id=str(free.pk)).exists()
    assert [m.to for m in mail.outbox] == [[patient.email], [clinic["doctor"].user.email]]


def test_a_patients_lapsed_hold_with_another_doctor_is_released_before_booking(clinic, frozen_time):
    patient = UserFactory()
    other_doctor = DoctorProfileFactory()
    open_all_week(other_doctor)
    lapsed = services.appointment_hold(patient=patient, service=ServiceFactory(doctor=other_doctor, duration_minutes=30), start=SLOT)
    frozen_time.shift(timedelta(minutes=11))

    booked = services.appointment_hold(patient=patient, service=clinic["service"], start=SLOT)

    lapsed.refresh_from_db()
    assert (lapsed.status, booked.status) == ("expired", "held")
    assert list(AppointmentEvent.objects.filter(appointment=lapsed).values_list("to_status", "note")) == [("held", ""), ("expired", "Hold expired")]


def test_a_booking_far_from_the_first_free_slot_leaves_it_to_the_periodic_refresh(clinic, django_capture_on_commit_callbacks):
    from doctors.models import DoctorProfile

    services.next_available_refresh(doctor=clinic["doctor"])
    doctor = DoctorProfile.objects.get(pk=clinic["doctor"].pk)
    service = clinic["service"]
    service.doctor = doctor

    with django_capture_on_commit_callbacks(execute=False) as far:
        services.appointment_hold(patient=UserFactory(), service=service, start=SLOT + timedelta(days=2))
    with django_capture_on_commit_callbacks(execute=False) as next_one:
        services.appointment_hold(patient=UserFactory(), service=service, start=SLOT + timedelta(minutes=30))
    with django_capture_on_commit_callbacks(execute=False) as first:
        services.appointment_hold(patient=UserFactory(), service=service, start=SLOT)

    from appointments.availability_events import _PendingEvent

    def refreshes(callbacks):  # every hold also tells the live availability subscribers
        return [callback for callback in callbacks if not isinstance(callback, _PendingEvent)]

    assert doctor.next_available_at == SLOT
    assert (len(refreshes(far)), len(refreshes(next_one))) == (0, 0)
    assert len(refreshes(first)) == 1  # it took the first free slot: recomputed after commit


def test_a_released_hold_gives_its_time_back_to_the_soonest_sort(clinic, frozen_time, django_capture_on_commit_callbacks):
    from doctors.models import DoctorProfile

    with django_capture_on_commit_callbacks(execute=True):
        services.appointment_hold(patient=UserFactory(), service=clinic["service"], start=SLOT)
    taken = DoctorProfile.objects.get(pk=clinic["doctor"].pk).next_available_at
    frozen_time.shift(timedelta(minutes=11))

    with django_capture_on_commit_callbacks(execute=True):
        released = services.holds_release_expired()

    assert (taken, released) == (SLOT + timedelta(minutes=30), 1)
    assert DoctorProfile.objects.get(pk=clinic["doctor"].pk).next_available_at == SLOT


def test_the_first_free_slot_is_found_beyond_the_next_day(clinic):
    from appointments.models import DateOverride

    schedule = DoctorSchedule.objects.get(doctor=clinic["doctor"])
    for day in range(3):
        DateOverride.objects.create(schedule=schedule, date=(NOW + timedelta(days=day)).date(), is_closed=True)

    first = services.next_available_refresh(doctor=clinic["doctor"])

    assert first == SLOT + timedelta(days=3)


def test_an_expired_hold_releases_the_slot(clinic, frozen_time):
    first = services.appointment_hold(patient=UserFactory(), service=clinic["service"], start=SLOT)
    frozen_time.shift(timedelta(minutes=11))

    second = services.appointment_hold(patient=UserFactory(), service=clinic["service"], start=SLOT)

    first.refresh_from_db()
    assert first.status == "expired"
    assert second.status == "held"


@pytest.mark.parametrize("path", ["hold", "doctor_books", "series", "reschedule"])
def test_every_booking_path_expires_the_lapsed_hold_in_its_way_and_takes_the_time(clinic, frozen_time, path):
    """The lapsed hold still reads as held until it is expired: on PostgreSQL the exclusion
    constraints would refuse the new booking if it were not expired first."""
    patient = UserFactory()
    moving = confirmed(clinic, patient=patient, start=SLOT + timedelta(days=3)) if path == "reschedule" else None
    if path == "doctor_books":
        Appointment.objects.create(doctor=clinic["doctor"], patient=patient, service=clinic["service"], start=SLOT - timedelta(days=9), end=SLOT - timedelta(days=9, minutes=-30),
                                   blocked_start=SLOT - timedelta(days=9), blocked_end=SLOT - timedelta(days=9, minutes=-30), status="completed", price_minor=0, currency="INR")
    lapsed = services.appointment_hold(patient=UserFactory(), service=clinic["service"], start=SLOT)
    frozen_time.shift(timedelta(minutes=11))

    if path == "hold":
        booked = [services.appointment_hold(patient=patient, service=clinic["service"], start=SLOT)]
    elif path == "doctor_books":
        booked = [services.appointment_book_by_doctor(doctor_user=clinic["doctor"].user, patient=patient, service=clinic["service"], start=SLOT, reason="Results")]
    elif path == "series":
        booked = services.appointment_series_book(patient=patient, service=clinic["service"], first_start=SLOT, occurrences=2, reason="Physiotherapy")
    else:
        booked = [services.appointment_reschedule(appointment=moving, by=patient, start=SLOT)]

    lapsed.refresh_from_db()
    assert lapsed.status == "expired"
    assert booked[0].start == SLOT and booked[0].status in ("held", "pending_payment", "confirmed")
    assert list(AppointmentEvent.objects.filter(appointment=lapsed).values_list("to_status", "note")) == [("held", ""), ("expired", "Hold expired")]


def test_a_booking_leaves_lapsed_holds_out_of_its_way_to_the_periodic_release(clinic, frozen_time):
    elsewhere = services.appointment_hold(patient=UserFactory(), service=clinic["service"], start=SLOT + timedelta(days=2))
    frozen_time.shift(timedelta(minutes=11))

    services.appointment_hold(patient=UserFactory(), service=clinic["service"], start=SLOT)
    elsewhere.refresh_from_db()
    left = elsewhere.status
    released = services.holds_release_expired()

    elsewhere.refresh_from_db()
    assert (left, released, elsewhere.status) == ("held", 1, "expired")


def test_confirming_after_the_hold_expired_is_appt_003(clinic, frozen_time):
    patient = UserFactory()
    hold = services.appointment_hold(patient=patient, service=clinic["service"], start=SLOT)
    frozen_time.shift(timedelta(minutes=11))

    with pytest.raises(ApplicationError) as excinfo:
        services.appointment_confirm_details(appointment=hold, patient=patient, reason="Rash")

    assert excinfo.value.code == "APPT_003"
    hold.refresh_from_db()
    assert hold.status == "held" and hold.reason == ""


def test_payment_after_the_hold_lapsed_is_refused(clinic, frozen_time):
    patient = UserFactory()
    booked = services.appointment_confirm_details(appointment=services.appointment_hold(patient=patient, service=clinic["service"], start=SLOT), patient=patient, reason="Rash")
    frozen_time.shift(timedelta(minutes=11))

    with pytest.raises(ApplicationError) as excinfo:
        services.appointment_mark_paid(appointment=booked)

    assert excinfo.value.code == "APPT_003"


def test_one_live_hold_per_patient_and_doctor(clinic):
    patient = UserFactory()
    first = services.appointment_hold(patient=patient, service=clinic["service"], start=SLOT)

    second = services.appointment_hold(patient=patient, service=clinic["service"], start=SLOT + timedelta(minutes=30))

    first.refresh_from_db()
    assert first.status == "cancelled"
    assert second.status == "held"
    assert Appointment.objects.filter(patient=patient, status="held").count() == 1


def test_a_patient_cannot_be_in_two_places_at_once(clinic):
    patient = UserFactory()
    other_doctor = DoctorProfileFactory()
    open_all_week(other_doctor)
    services.appointment_confirm_details(appointment=services.appointment_hold(patient=patient, service=clinic["service"], start=SLOT), patient=patient, reason="x")

    with pytest.raises(ApplicationError) as excinfo:
        services.appointment_hold(patient=patient, service=ServiceFactory(doctor=other_doctor, duration_minutes=30), start=SLOT + timedelta(minutes=15) - timedelta(minutes=15))

    assert excinfo.value.code == "APPT_005"


@pytest.mark.parametrize(
    "start",
    [
        datetime(2026, 11, 2, 7, 30, tzinfo=UTC),  # inside the minimum notice (and outside hours)
        datetime(2026, 11, 2, 9, 10, tzinfo=UTC),  # not on the slot grid
        datetime(2026, 11, 2, 13, 0, tzinfo=UTC),  # after hours
        datetime(2026, 10, 30, 9, 0, tzinfo=UTC),  # in the past
        datetime(2027, 1, 4, 9, 0, tzinfo=UTC),  # beyond max days ahead
    ],
)
def test_times_that_are_not_free_slots_are_refused(clinic, start):
    with pytest.raises(ApplicationError) as excinfo:
        services.appointment_hold(patient=UserFactory(), service=clinic["service"], start=start)

    assert excinfo.value.code == "APPT_002"
    assert Appointment.objects.count() == 0


def test_idempotency_key_replays_the_same_hold(clinic):
    patient = UserFactory()

    first = services.appointment_hold(patient=patient, service=clinic["service"], start=SLOT, idempotency_key="k-1")
    again = services.appointment_hold(patient=patient, service=clinic["service"], start=SLOT, idempotency_key="k-1")

    assert again.pk == first.pk
    assert Appointment.objects.count() == 1
    with pytest.raises(ApplicationError):
        services.appointment_hold(patient=patient, service=clinic["service"], start=SLOT + timedelta(minutes=30), idempotency_key="k-1")


def test_doctors_and_staff_cannot_book_as_patients(clinic):
    for user in (clinic["doctor"].user, StaffFactory()):
        with pytest.raises(ApplicationError) as excinfo:
            services.appointment_hold(patient=user, service=clinic["service"], start=SLOT)
        assert excinfo.value.code == "APPT_001"


def confirmed(clinic, patient=None, start=SLOT) -> Appointment:
    patient = patient or UserFactory()
    return services.appointment_confirm_details(appointment=free_hold(clinic, patient, start), patient=patient, reason="Check-up")


@pytest.mark.parametrize(
    ("hours_before", "refund"),
    [(48, 100), (24, 100), (23, 50), (2, 50), (1, 0)],
)
def test_patient_cancellation_follows_the_policy(clinic, frozen_time, hours_before, refund):
    start = NOW + timedelta(days=3)
    start = start.replace(hour=9)
    appointment = confirmed(clinic, start=start)
    frozen_time.move_to(start - timedelta(hours=hours_before))

    quote = services.cancellation_quote(appointment=appointment, by_role="patient")
    cancelled = services.appointment_cancel(appointment=appointment, by=appointment.patient, reason="Feeling better")

    assert quote.refund_percent == refund
    assert (cancelled.status, cancelled.refund_percent, cancelled.cancelled_by) == ("cancelled", refund, "patient")


def test_doctor_cancellation_always_refunds_in_full(clinic, frozen_time):
    appointment = confirmed(clinic)
    frozen_time.move_to(SLOT - timedelta(minutes=30))

    cancelled = services.appointment_cancel(appointment=appointment, by=clinic["doctor"].user, reason="Emergency surgery")

    assert (cancelled.refund_percent, cancelled.cancelled_by) == (100, "doctor")


def test_cancelling_frees_the_slot_and_cannot_happen_twice(clinic):
    appointment = confirmed(clinic)
    services.appointment_cancel(appointment=appointment, by=appointment.patient, reason="Travel")

    with pytest.raises(ApplicationError) as excinfo:
        services.appointment_cancel(appointment=appointment, by=appointment.patient, reason="Again")
    rebooked = services.appointment_hold(patient=UserFactory(), service=clinic["service"], start=SLOT)

    assert excinfo.value.code == "APPT_004"
    assert rebooked.status == "held"


def test_another_patient_cannot_cancel_or_reschedule(clinic):
    appointment = confirmed(clinic)
    intruder = UserFactory()

    for action in (
        lambda: services.appointment_cancel(appointment=appointment, by=intruder, reason="x"),
        lambda: services.appointment_reschedule(appointment=appointment, by=intruder, start=SLOT + timedelta(hours=1)),
        lambda: services.appointment_set_status(appointment=appointment, by=intruder, status="no_show"),
    ):
        with pytest.raises(ApplicationError) as excinfo:
            action()
        assert excinfo.value.code == "APPT_006"
    appointment.refresh_from_db()
    assert (appointment.status, appointment.start) == ("confirmed", SLOT)


def test_reschedule_moves_atomically_and_respects_limits(clinic):
    appointment = confirmed(clinic)
    blocker = confirmed(clinic, start=SLOT + timedelta(hours=1))

    with pytest.raises(ApplicationError) as taken:
        services.appointment_reschedule(appointment=appointment, by=appointment.patient, start=blocker.start)
    moved = services.appointment_reschedule(appointment=appointment, by=appointment.patient, start=SLOT + timedelta(days=1))
    services.appointment_reschedule(appointment=moved, by=moved.patient, start=SLOT + timedelta(days=2))
    with pytest.raises(ApplicationError) as limit:
        services.appointment_reschedule(appointment=moved, by=moved.patient, start=SLOT + timedelta(days=3))

    assert taken.value.code == "APPT_002"
    assert limit.value.code == "APPT_007"
    moved.refresh_from_db()
    assert (moved.start, moved.reschedule_count, moved.status) == (SLOT + timedelta(days=2), 2, "confirmed")
    assert moved.sequence > appointment.sequence - 1
    # The original time is free again.
    assert services.appointment_hold(patient=UserFactory(), service=clinic["service"], start=SLOT).status == "held"


def test_rescheduling_too_close_to_the_appointment_is_refused(clinic, frozen_time):
    appointment = confirmed(clinic)
    frozen_time.move_to(SLOT - timedelta(minutes=59))

    with pytest.raises(ApplicationError) as excinfo:
        services.appointment_reschedule(appointment=appointment, by=appointment.patient, start=SLOT + timedelta(days=1))

    assert excinfo.value.code == "APPT_007"


def test_status_lifecycle_has_no_jumps(clinic, frozen_time):
    appointment = confirmed(clinic)
    doctor = clinic["doctor"].user

    with pytest.raises(ApplicationError) as early:
        services.appointment_set_status(appointment=appointment, by=doctor, status="no_show")
    frozen_time.move_to(SLOT + timedelta(minutes=1))
    services.appointment_set_status(appointment=appointment, by=doctor, status="in_progress")
    with pytest.raises(ApplicationError) as backwards:
        services.appointment_set_status(appointment=appointment, by=doctor, status="no_show")
    done = services.appointment_set_status(appointment=appointment, by=doctor, status="completed")

    assert early.value.code == "APPT_004" and backwards.value.code == "APPT_004"
    assert done.status == "completed"


# --- Concurrency: PostgreSQL's exclusion constraint and the schedule lock ----------------------


def race(target, count: int) -> list:
    results: list = []
    barrier = threading.Barrier(count)

    def run(i):
        try:
            barrier.wait()
            results.append(target(i))
        except ApplicationError as exc:
            results.append(exc.code)
        except Exception as exc:  # noqa: BLE001 - a crash is a failed test, recorded as such
            results.append(f"crash: {exc!r}")
        finally:
            close_old_connections()
            connection.close()

    threads = [threading.Thread(target=run, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return results


@pytest.mark.django_db(transaction=True)
def test_twenty_patients_racing_for_one_slot_exactly_one_wins(clinic):
    for round_number in range(5):
        start = SLOT + timedelta(days=round_number)
        patients = [UserFactory() for _ in range(20)]

        results = race(lambda i, patients=patients, start=start: services.appointment_hold(patient=patients[i], service=clinic["service"], start=start).status, 20)

        assert sorted(results) == ["APPT_002"] * 19 + ["held"], results
        assert Appointment.objects.filter(start=start, status="held").count() == 1


@pytest.mark.django_db(transaction=True)
def test_overlapping_slots_of_different_lengths_never_both_win(clinic):
    long_service = ServiceFactory(doctor=clinic["doctor"], duration_minutes=60, name="Long")
    patients = [UserFactory() for _ in range(20)]

    # Half ask for 09:00–10:00, half for 09:30–10:00: they overlap, at most one may exist.
    results = race(
        lambda i: services.appointment_hold(
            patient=patients[i], service=long_service if i % 2 else clinic["service"], start=SLOT if i % 2 else SLOT + timedelta(minutes=30)
        ).status,
        20,
    )

    assert results.count("held") == 1, results
    assert all(r in ("held", "APPT_002") for r in results), results
    occupied = Appointment.objects.occupying().filter(doctor=clinic["doctor"])
    assert occupied.count() == 1


@pytest.mark.skipif("connection.vendor != 'postgresql'", reason="exclusion constraints are PostgreSQL's")
@pytest.mark.django_db(transaction=True)
def test_the_database_itself_refuses_overlapping_appointments(clinic):
    from django.db import IntegrityError, transaction

    patient_a, patient_b = UserFactory(), UserFactory()
    fields = {"doctor": clinic["doctor"], "service": clinic["service"], "status": "confirmed", "price_minor": 1, "currency": "INR"}
    Appointment.objects.create(patient=patient_a, start=SLOT, end=SLOT + timedelta(minutes=30), blocked_start=SLOT, blocked_end=SLOT + timedelta(minutes=30), **fields)

    with pytest.raises(IntegrityError), transaction.atomic():
        Appointment.objects.create(patient=patient_b, start=SLOT + timedelta(minutes=10), end=SLOT + timedelta(minutes=40), blocked_start=SLOT + timedelta(minutes=10), blocked_end=SLOT + timedelta(minutes=40), **fields)
    assert timezone.now()


def test_next_available_follows_bookings_for_the_soonest_sort(clinic, django_capture_on_commit_callbacks):
    from doctors.models import DoctorProfile

    services.next_available_refresh(doctor=clinic["doctor"])
    first = DoctorProfile.objects.get(pk=clinic["doctor"].pk).next_available_at
    with django_capture_on_commit_callbacks(execute=True):
        services.appointment_hold(patient=UserFactory(), service=clinic["service"], start=first)
    after = DoctorProfile.objects.get(pk=clinic["doctor"].pk).next_available_at

    assert first == datetime(2026, 11, 2, 9, 0, tzinfo=UTC)  # 08:00 is inside the 60-minute notice
    assert after == datetime(2026, 11, 2, 9, 30, tzinfo=UTC)


def test_emergency_unavailability_cancels_today_with_full_refunds_and_tells_patients(clinic, django_capture_on_commit_callbacks):
    from django.core import mail

    today = confirmed(clinic)
    later_today = confirmed(clinic, start=SLOT + timedelta(hours=2))
    tomorrow = confirmed(clinic, start=SLOT + timedelta(days=1))

    with django_capture_on_commit_callbacks(execute=True):
        affected = services.doctor_emergency_unavailable(doctor=clinic["doctor"], by=clinic["doctor"].user, reason="Called into surgery.")

    assert sorted(a.pk for a in affected) == sorted([today.pk, later_today.pk])
    for appointment in (today, later_today):
        appointment.refresh_from_db()
        assert (appointment.status, appointment.cancelled_by, appointment.refund_percent) == ("cancelled", "doctor", 100)
    tomorrow.refresh_from_db()
    assert tomorrow.status == "confirmed"
    assert sorted(m.to[0] for m in mail.outbox) == sorted([today.patient.email, later_today.patient.email])
    assert "Called into surgery." in mail.outbox[0].body
    with pytest.raises(ApplicationError) as excinfo:  # today is closed to new bookings now
        services.appointment_hold(patient=UserFactory(), service=clinic["service"], start=SLOT + timedelta(hours=1))
    assert excinfo.value.code == "APPT_002"


def test_vacation_closes_dates_and_affected_patients_may_cancel_for_free_or_move(clinic, frozen_time, django_capture_on_commit_callbacks):
    from django.core import mail

    appointment = confirmed(clinic, start=SLOT + timedelta(days=3))
    first_day = (SLOT + timedelta(days=2)).date()

    with django_capture_on_commit_callbacks(execute=True):
        affected = services.doctor_vacation_set(doctor=clinic["doctor"], first_day=first_day, last_day=first_day + timedelta(days=4), by=clinic["doctor"].user)
    frozen_time.move_to(appointment.start - timedelta(hours=1))  # late: normally no refund, no reschedule
    quote = services.cancellation_quote(appointment=appointment, by_role="patient")

    assert [a.pk for a in affected] == [appointment.pk]
    assert mail.outbox[0].to == [appointment.patient.email]
    assert quote.refund_percent == 100
    assert services.appointment_reschedule_refusal(appointment=appointment, by=appointment.patient) == ""
    with pytest.raises(ApplicationError):
        services.appointment_hold(patient=UserFactory(), service=clinic["service"], start=SLOT + timedelta(days=3, hours=1))


def test_booking_rescheduling_and_cancelling_email_both_parties_in_their_own_zones(clinic, django_capture_on_commit_callbacks):
    from django.core import mail

    patient = UserFactory(timezone="Asia/Kolkata")
    with django_capture_on_commit_callbacks(execute=True):
        appointment = services.appointment_mark_paid(
            appointment=services.appointment_confirm_details(appointment=services.appointment_hold(patient=patient, service=clinic["service"], start=SLOT), patient=patient, reason="Cough")
        )
    booked_mail = list(mail.outbox)
    with django_capture_on_commit_callbacks(execute=True):
        services.appointment_reschedule(appointment=appointment, by=patient, start=SLOT + timedelta(days=1))
    with django_capture_on_commit_callbacks(execute=True):
        services.appointment_cancel(appointment=appointment, by=patient, reason="Better now")

    assert sorted(m.to[0] for m in booked_mail) == sorted([patient.email, clinic["doctor"].user.email])
    to_patient = next(m for m in booked_mail if m.to == [patient.email])
    assert to_patient.subject == "MediMeet: Your appointment is confirmed"
    assert "Monday 2 November 2026, 14:30 (Asia/Kolkata)" in to_patient.body
    assert "(09:00 in UTC for the doctor)" in to_patient.body
    subjects = [m.subject for m in mail.outbox[len(booked_mail):]]
    assert "MediMeet: Your appointment has moved to a new time" in subjects
    assert "MediMeet: Your appointment is cancelled" in subjects
    assert "Refund: 100 %" in mail.outbox[-1].body or "Refund: 100 %" in mail.outbox[-2].body


def test_booking_messages_are_rendered_by_a_task_that_sends_them_once_however_often_it_runs(clinic, django_capture_on_commit_callbacks):
    from celery.signals import task_prerun
    from django.core import mail

    from appointments.tasks import send_appointment_update
    from medimeet.core.models import Notification

    ran = []

    def record(sender=None, **kwargs):
        ran.append(sender.name)

    task_prerun.connect(record)
    try:
        patient = UserFactory()
        hold = services.appointment_hold(patient=patient, service=clinic["service"], start=SLOT)
        with django_capture_on_commit_callbacks(execute=True):
            services.appointment_mark_paid(appointment=services.appointment_confirm_details(appointment=hold, patient=patient, reason="Cough"))
    finally:
        task_prerun.disconnect(record)

    assert "appointments.tasks.send_appointment_update" in ran  # rendered by the task (eager here), not in the request
    rows = Notification.objects.filter(event="appointment.update")
    assert sorted(rows.values_list("to", flat=True)) == sorted([patient.email, clinic["doctor"].user.email])
    token = rows.first().dedupe_key.split(":")[3]
    with django_capture_on_commit_callbacks(execute=True):
        send_appointment_update.apply(kwargs={"appointment_id": hold.pk, "change": "confirmed", "token": token})  # the worker died before acking: it runs again
    assert rows.count() == 2
    assert len(mail.outbox) == 2
    # Another change is new news, even to the same time.
    with django_capture_on_commit_callbacks(execute=True):
        services.appointment_notify(appointment=hold, change="confirmed")
    assert len(mail.outbox) == 4


def test_a_follow_up_inside_the_free_window_costs_nothing(clinic, frozen_time):
    from doctors.models import DoctorService

    DoctorService.objects.filter(pk=clinic["service"].pk).update(free_follow_up_days=7)
    clinic["service"].refresh_from_db()
    patient = UserFactory()
    first = confirmed(clinic, patient=patient)
    Appointment.objects.filter(pk=first.pk).update(status="completed")
    stranger = UserFactory()

    follow_up = services.appointment_hold(patient=patient, service=clinic["service"], start=SLOT + timedelta(days=3))
    stranger_hold = services.appointment_hold(patient=stranger, service=clinic["service"], start=SLOT + timedelta(days=4))
    late = services.appointment_price(patient=patient, service=clinic["service"], start=SLOT + timedelta(days=8))
    booked = services.appointment_confirm_details(appointment=follow_up, patient=patient, reason="Follow-up")

    assert (follow_up.price_minor, stranger_hold.price_minor, late) == (0, 50000, 50000)
    assert booked.status == "confirmed"  # nothing to pay


def test_waitlist_offers_a_freed_slot_first_come_first_served(clinic, frozen_time, django_capture_on_commit_callbacks):
    from django.core import mail

    from appointments.models import WaitlistEntry

    # Fill the whole day for the doctor (09:00–12:00, six 30-minute slots).
    day_patients = [UserFactory() for _ in range(6)]
    booked = [confirmed(clinic, patient=p, start=SLOT + timedelta(minutes=30 * i)) for i, p in enumerate(day_patients)]
    first, second = UserFactory(), UserFactory()
    with django_capture_on_commit_callbacks(execute=True):
        entry_one = services.waitlist_join(patient=first, service=clinic["service"], first_day=SLOT.date(), last_day=SLOT.date())
    with django_capture_on_commit_callbacks(execute=True):
        entry_two = services.waitlist_join(patient=second, service=clinic["service"], first_day=SLOT.date(), last_day=SLOT.date())
    assert mail.outbox == []  # nothing free yet
    with pytest.raises(ApplicationError) as duplicate:
        services.waitlist_join(patient=first, service=clinic["service"], first_day=SLOT.date(), last_day=SLOT.date())

    with django_capture_on_commit_callbacks(execute=True):
        services.appointment_cancel(appointment=booked[2], by=day_patients[2], reason="Cannot come")
    entry_one.refresh_from_db()
    offer = entry_one.offer

    assert duplicate.value.code == "APPT_008"
    assert entry_one.status == "offered" and offer.patient == first and offer.start == booked[2].start
    assert offer.hold_expires_at == NOW + timedelta(minutes=30)
    assert [m.to for m in mail.outbox if "is free for you" in m.subject] == [[first.email]]

    # The first patient lets the offer lapse: the second is offered the same time.
    frozen_time.shift(timedelta(minutes=31))
    with django_capture_on_commit_callbacks(execute=True):
        services.holds_release_expired()
    entry_one.refresh_from_db()
    entry_two.refresh_from_db()
    assert entry_one.status == "cancelled"
    assert entry_two.status == "offered" and entry_two.offer.start == booked[2].start

    booked_offer = services.appointment_confirm_details(appointment=entry_two.offer, patient=second, reason="Was waiting")
    entry_two.refresh_from_db()
    assert booked_offer.status == "pending_payment" and entry_two.status == "booked"
    assert WaitlistEntry.objects.filter(status__in=["waiting", "offered"]).count() == 0


def test_a_recurring_series_is_booked_all_or_nothing(clinic):
    patient = UserFactory()
    taken_week_three = confirmed(clinic, start=SLOT + timedelta(days=14, hours=1))

    series = services.appointment_series_book(patient=patient, service=clinic["service"], first_start=SLOT, occurrences=5, reason="Weekly physiotherapy review")
    with pytest.raises(ApplicationError) as excinfo:
        services.appointment_series_book(patient=UserFactory(), service=clinic["service"], first_start=taken_week_three.start - timedelta(days=14), occurrences=4, reason="x")

    assert [a.start for a in series] == [SLOT + timedelta(days=7 * n) for n in range(5)]
    assert {a.series_id for a in series} == {series[0].series_id}
    assert {a.status for a in series} == {"pending_payment"}
    assert excinfo.value.code == "APPT_002" and excinfo.value.extra == {"occurrence": 3}
    # Nothing of the failed series was written.
    assert Appointment.objects.filter(start=taken_week_three.start - timedelta(days=14)).count() == 0
    # Each occurrence is then its own appointment.
    services.appointment_cancel(appointment=series[1], by=patient, reason="Away that week")
    assert [a.status for a in Appointment.objects.filter(series_id=series[0].series_id).order_by("start")][:3] == ["pending_payment", "cancelled", "pending_payment"]


def test_booking_a_series_again_with_the_same_key_returns_it_instead_of_refusing(clinic):
    patient = UserFactory()
    book = lambda first_start: services.appointment_series_book(  # noqa: E731
        patient=patient, service=clinic["service"], first_start=first_start, occurrences=3, reason="Weekly review", idempotency_key="page-key"
    )

    first, again = book(SLOT), book(SLOT)
    with pytest.raises(ApplicationError) as reused:
        book(SLOT + timedelta(hours=1))

    assert [a.pk for a in again] == [a.pk for a in first]
    assert Appointment.objects.filter(patient=patient).count() == 3
    assert [a.idempotency_key for a in first] == ["page-key:1", "page-key:2", "page-key:3"]
    assert reused.value.code == "REQ_001" and "idempotency_key" in reused.value.fields


@pytest.mark.parametrize(("occurrences", "interval"), [(1, 7), (13, 7), (4, 3)])
def test_series_limits(clinic, occurrences, interval):
    with pytest.raises(ApplicationError) as excinfo:
        services.appointment_series_book(patient=UserFactory(), service=clinic["service"], first_start=SLOT, occurrences=occurrences, interval_days=interval, reason="x")

    assert excinfo.value.code == "REQ_001"
    assert Appointment.objects.count() == 0


def test_a_doctor_may_book_a_patient_inside_their_own_minimum_notice(clinic, django_capture_on_commit_callbacks):
    from django.core import mail

    patient = UserFactory()
    earlier = confirmed(clinic, patient=patient, start=SLOT + timedelta(days=5))
    Appointment.objects.filter(pk=earlier.pk).update(status="completed")  # the doctor's patient already
    soon = SLOT  # two hours from now, inside a three-hour minimum notice
    DoctorSchedule.objects.filter(doctor=clinic["doctor"]).update(min_notice_minutes=180)

    with pytest.raises(ApplicationError):
        services.appointment_hold(patient=UserFactory(), service=clinic["service"], start=soon)  # patients respect the notice
    with django_capture_on_commit_callbacks(execute=True):
        booked = services.appointment_book_by_doctor(doctor_user=clinic["doctor"].user, patient=patient, service=clinic["service"], start=soon, reason="Review results today")
    with pytest.raises(ApplicationError) as other_doctor:
        services.appointment_book_by_doctor(doctor_user=DoctorProfileFactory().user, patient=patient, service=clinic["service"], start=soon + timedelta(minutes=30), reason="x")

    assert (booked.status, booked.hold_expires_at) == ("pending_payment", soon)
    assert patient.email in [m.to[0] for m in mail.outbox]
    assert other_doctor.value.code == "APPT_001"


def test_a_doctor_books_only_their_own_patients(clinic):
    stranger = UserFactory()

    with pytest.raises(ApplicationError) as excinfo:
        services.appointment_book_by_doctor(doctor_user=clinic["doctor"].user, patient=stranger, service=clinic["service"], start=SLOT, reason="Review")

    assert excinfo.value.code == "APPT_001" and "patient" in excinfo.value.fields
    assert not Appointment.objects.filter(patient=stranger).exists()
