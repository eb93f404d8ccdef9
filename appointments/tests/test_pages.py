"""The server-rendered appointment pages: booking, the hold page, cancelling, rescheduling,
attendance, the lists, and the doctor's week and availability editor."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, time, timedelta

import pytest
import time_machine

from accounts.tests.factories import UserFactory, staff_member
from appointments import services
from appointments.models import Appointment, AppointmentEvent, DateOverride, DoctorSchedule, WeeklyHours
from doctors.tests.factories import DoctorProfileFactory, ServiceFactory
from medimeet.core import roles
from medimeet.core.models import AuditEvent

pytestmark = pytest.mark.django_db

NOW = datetime(2026, 11, 2, 7, 0, tzinfo=UTC)  # Monday, 07:00 in London, 12:30 in Kolkata
SLOT = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)


@pytest.fixture(autouse=True)
def frozen_time():
    with time_machine.travel(NOW, tick=False) as traveller:
        yield traveller


def open_mornings(doctor, weekdays=range(7), **fields) -> DoctorSchedule:
    defaults = {"timezone": "UTC", "buffer_before_minutes": 0, "buffer_after_minutes": 0, "min_notice_minutes": 60, "max_days_ahead": 30, "reschedule_min_notice_minutes": 60}
    schedule = DoctorSchedule.objects.create(doctor=doctor, **{**defaults, **fields})
    WeeklyHours.objects.bulk_create([WeeklyHours(schedule=schedule, weekday=d, start_time=time(9), end_time=time(11)) for d in weekdays])
    return schedule


@pytest.fixture
def clinic():
    doctor = DoctorProfileFactory(user__first_name="Priya", user__last_name="Raman", title="Dr.")
    open_mornings(doctor)
    return {
        "doctor": doctor,
        "service": ServiceFactory(doctor=doctor, name="Video consultation", duration_minutes=30, price_minor=50000),
        "follow_up": ServiceFactory(doctor=doctor, name="Follow-up", duration_minutes=20, price_minor=30000),
    }


@pytest.fixture
def patient():
    return UserFactory(first_name="Asha", last_name="Verma", timezone="Europe/London")


def book_url(clinic, service=None, day: date | None = None) -> str:
    url = f"/doctors/{clinic['doctor'].slug}/book/?service={(service or clinic['service']).public_id}"
    return url + (f"&date={day.isoformat()}" if day else "")


def slot_values(response) -> list[str]:
    return re.findall(r'name="start" value="([^"]+)"', response.content.decode())


def hold_for(clinic, patient, start=SLOT) -> Appointment:
    return services.appointment_hold(patient=patient, service=clinic["service"], start=start)


def confirmed(clinic, patient, start=SLOT) -> Appointment:
    hold = hold_for(clinic, patient, start)
    booked = services.appointment_confirm_details(appointment=hold, patient=patient, reason="Persistent cough")
    return services.appointment_mark_paid(appointment=booked)


def snapshot(appointment: Appointment) -> tuple:
    appointment.refresh_from_db()
    return (appointment.status, appointment.start, appointment.reason, appointment.reschedule_count, appointment.cancelled_at, appointment.events.count())


# --- Booking --------------------------------------------------------------------------------


def test_booking_page_lists_the_free_slots_of_the_day_in_the_patients_zone(client, clinic, patient):
    hold_for(clinic, UserFactory(), start=datetime(2026, 11, 3, 9, 30, tzinfo=UTC))  # someone holds Tuesday 09:30
    client.force_login(patient)

    monday = client.get(book_url(clinic))
    tuesday = client.get(book_url(clinic, day=date(2026, 11, 3)))

    # Monday: 07:00 now plus an hour's notice leaves 09:00–11:00 in 30-minute slots.
    assert monday.status_code == 200
    assert slot_values(monday) == ["2026-11-02T09:00:00+00:00", "2026-11-02T09:30:00+00:00", "2026-11-02T10:00:00+00:00", "2026-11-02T10:30:00+00:00"]
    assert slot_values(tuesday) == ["2026-11-03T09:00:00+00:00", "2026-11-03T10:00:00+00:00", "2026-11-03T10:30:00+00:00"]
    assert "Europe/London (GMT)" in monday.content.decode()
    assert monday.context["days"][0] == {"date": date(2026, 11, 2), "count": 4, "selected": True, "is_today": True}
    assert len(monday.context["days"]) == 14


def test_booking_page_names_the_zone_and_shows_the_doctors_local_time_when_it_differs(client, clinic):
    patient = UserFactory(timezone="Asia/Kolkata")
    client.force_login(patient)

    response = client.get(book_url(clinic, day=date(2026, 11, 3)))

    html = response.content.decode()
    assert "Asia/Kolkata (IST)" in html
    assert "The doctor works in UTC" in html
    first = response.context["slot_groups"][0][1][0]
    assert (first.value, first.label, first.doctor_label, first.period) == ("2026-11-03T09:00:00+00:00", "14:30", "09:00", "Afternoon")


def test_days_without_slots_are_marked_and_the_other_service_has_its_own_slots(client, clinic, patient):
    DateOverride.objects.create(schedule=clinic["doctor"].schedule, date=date(2026, 11, 4), is_closed=True)
    client.force_login(patient)

    response = client.get(book_url(clinic, service=clinic["follow_up"], day=date(2026, 11, 4)))

    days = {day["date"]: day["count"] for day in response.context["days"]}
    assert days[date(2026, 11, 4)] == 0
    assert days[date(2026, 11, 5)] == 6  # 09:00–11:00 in 20-minute slots
    assert slot_values(response) == []
    assert "No free times on this day" in response.content.decode()


def test_posting_a_slot_creates_a_hold_and_redirects_to_it(client, clinic, patient):
    client.force_login(patient)

    response = client.post(book_url(clinic), {"service": str(clinic["service"].public_id), "start": "2026-11-02T09:30:00+00:00", "key": "a" * 32})

    appointment = Appointment.objects.get()
    assert response.status_code == 302
    assert response["Location"] == f"/appointments/{appointment.public_id}/"
    assert (appointment.patient, appointment.status, appointment.start) == (patient, "held", datetime(2026, 11, 2, 9, 30, tzinfo=UTC))
    assert appointment.hold_expires_at == NOW + timedelta(minutes=10)


def test_a_double_submitted_slot_holds_once(client, clinic, patient):
    client.force_login(patient)
    data = {"service": str(clinic["service"].public_id), "start": "2026-11-02T09:30:00+00:00", "key": "b" * 32}

    first = client.post(book_url(clinic), data)
    second = client.post(book_url(clinic), data)

    assert first["Location"] == second["Location"]
    assert Appointment.objects.count() == 1


def test_a_taken_slot_shows_the_message_and_the_next_free_slots(client, clinic, patient):
    hold_for(clinic, UserFactory(), start=SLOT)
    client.force_login(patient)

    response = client.post(book_url(clinic), {"service": str(clinic["service"].public_id), "start": SLOT.isoformat(), "key": "c" * 32})

    html = response.content.decode()
    assert response.status_code == 409
    assert "That time is not available. Choose another slot." in html
    assert [choice.value for choice in response.context["suggestions"]] == ["2026-11-02T09:30:00+00:00", "2026-11-02T10:00:00+00:00", "2026-11-02T10:30:00+00:00"]
    assert Appointment.objects.filter(patient=patient).count() == 0


def test_doctors_cannot_use_the_booking_page_and_anonymous_visitors_sign_in_first(client, clinic):
    anonymous = client.get(book_url(clinic))
    client.force_login(clinic["doctor"].user)
    doctor = client.get(book_url(clinic))

    assert anonymous.status_code == 302 and anonymous["Location"].startswith("/accounts/login/?next=")
    assert doctor.status_code == 302 and doctor["Location"] == f"/doctors/{clinic['doctor'].slug}/"


def test_doctor_profile_links_each_service_to_the_booking_page(client, clinic):
    response = client.get(f"/doctors/{clinic['doctor'].slug}/")

    html = response.content.decode()
    assert f'href="/doctors/{clinic["doctor"].slug}/book/?service={clinic["service"].public_id}"' in html
    assert f'href="/doctors/{clinic["doctor"].slug}/book/?service={clinic["follow_up"].public_id}"' in html


# --- The hold page --------------------------------------------------------------------------


def test_hold_page_shows_countdown_summary_and_policy_before_booking(client, clinic, patient):
    hold = hold_for(clinic, patient)
    client.force_login(patient)

    response = client.get(f"/appointments/{hold.public_id}/")

    html = response.content.decode()
    assert response.status_code == 200
    assert 'data-mm-expires="2026-11-02T07:10:00.000+00:00"' in html
    assert "Held until <strong><time" in html and ">07:10</time>" in html
    assert "Cancel 24 h or more before: 100 % refund" in html
    assert "Cancel 2 h or more before: 50 % refund" in html
    assert "Cancel less than 2 h before: no refund" in html
    assert "₹500.00" in html and "Dr. Priya Raman" in html
    assert 'name="reason"' in html


def test_confirming_with_a_reason_goes_on_to_the_pay_page(client, clinic, patient):
    hold = hold_for(clinic, patient)
    client.force_login(patient)

    response = client.post(f"/appointments/{hold.public_id}/", {"reason": "Dry cough for three weeks"}, follow=True)

    hold.refresh_from_db()
    assert (hold.status, hold.reason) == ("pending_payment", "Dry cough for three weeks")
    assert response.redirect_chain[-1][0] == f"/appointments/{hold.public_id}/pay/"
    assert "Pay for your appointment" in response.content.decode()


def test_confirm_with_an_empty_reason_shows_the_field_error_and_changes_nothing(client, clinic, patient):
    hold = hold_for(clinic, patient)
    before = snapshot(hold)
    client.force_login(patient)

    response = client.post(f"/appointments/{hold.public_id}/", {"reason": "   "})

    assert response.status_code == 200
    assert response.context["reason_form"].errors == {"reason": ["Tell the doctor briefly why you are booking."]}
    assert 'id="id_reason_error"' in response.content.decode()
    assert snapshot(hold) == before


def test_an_expired_hold_says_so_and_cannot_be_confirmed(client, clinic, patient, frozen_time):
    hold = hold_for(clinic, patient)
    client.force_login(patient)
    frozen_time.shift(timedelta(minutes=11))

    page = client.get(f"/appointments/{hold.public_id}/")
    client.post(f"/appointments/{hold.public_id}/", {"reason": "Too late"})

    hold.refresh_from_db()
    assert "Your hold expired" in page.content.decode()
    assert (hold.status, hold.reason) == ("expired", "")


def test_another_patient_gets_404_and_cannot_confirm_cancel_or_reschedule(client, clinic, patient):
    held = hold_for(clinic, patient)
    booked = confirmed(clinic, UserFactory(), start=SLOT + timedelta(hours=1))
    before = (snapshot(held), snapshot(booked))
    audit_before = AuditEvent.objects.count()
    client.force_login(UserFactory())

    responses = [
        client.get(f"/appointments/{held.public_id}/"),
        client.post(f"/appointments/{held.public_id}/", {"reason": "Mine now"}),
        client.get(f"/appointments/{booked.public_id}/cancel/"),
        client.post(f"/appointments/{booked.public_id}/cancel/", {"reason": "Spite"}),
        client.post(f"/appointments/{booked.public_id}/reschedule/", {"start": (SLOT + timedelta(days=1)).isoformat()}),
        client.post(f"/appointments/{booked.public_id}/status/", {"status": "no_show"}),
        client.get(f"/api/v1/appointments/{booked.public_id}/calendar.ics"),
    ]

    assert [r.status_code for r in responses] == [404] * 7
    assert (snapshot(held), snapshot(booked)) == before
    assert AuditEvent.objects.count() == audit_before


def test_the_doctor_cannot_confirm_the_patients_hold(client, clinic, patient):
    hold = hold_for(clinic, patient)
    before = snapshot(hold)
    client.force_login(clinic["doctor"].user)

    response = client.post(f"/appointments/{hold.public_id}/", {"reason": "On their behalf"})

    assert response.status_code == 404
    assert snapshot(hold) == before


# --- Booked appointments --------------------------------------------------------------------


def test_confirmed_appointment_page_has_calendar_link_timeline_and_actions(client, clinic, patient):
    appointment = confirmed(clinic, patient, start=SLOT + timedelta(days=2))
    client.force_login(patient)

    response = client.get(f"/appointments/{appointment.public_id}/")

    html = response.content.decode()
    assert f'href="/api/v1/appointments/{appointment.public_id}/calendar.ics"' in html
    assert "Add to calendar (.ics)" in html
    assert [event["label"] for event in response.context["events"]] == ["Time held", "Details sent, awaiting payment", "Paid and confirmed"]
    assert f'href="/appointments/{appointment.public_id}/cancel/"' in html
    assert f'href="/appointments/{appointment.public_id}/reschedule/"' in html
    assert response.context["status_choices"] == []


def test_cancel_page_quotes_the_refund_then_cancels_with_a_reason(client, clinic, patient, frozen_time):
    appointment = confirmed(clinic, patient, start=SLOT + timedelta(days=2))
    client.force_login(patient)

    quote_page = client.get(f"/appointments/{appointment.public_id}/cancel/")
    without_reason = client.post(f"/appointments/{appointment.public_id}/cancel/", {"reason": ""})
    appointment.refresh_from_db()
    status_after_empty = appointment.status
    client.post(f"/appointments/{appointment.public_id}/cancel/", {"reason": "Feeling better"})

    appointment.refresh_from_db()
    assert "100 % refund" in quote_page.content.decode() and "₹500.00 of ₹500.00" in quote_page.content.decode()
    assert without_reason.context["form"].errors == {"reason": ["Give a reason for cancelling."]}
    assert status_after_empty == "confirmed"
    assert (appointment.status, appointment.refund_percent, appointment.cancellation_reason) == ("cancelled", 100, "Feeling better")


def test_late_cancellation_quotes_the_policy_refund(client, clinic, patient, frozen_time):
    appointment = confirmed(clinic, patient, start=SLOT + timedelta(days=1))
    frozen_time.move_to(SLOT + timedelta(days=1) - timedelta(hours=5))
    client.force_login(patient)

    response = client.get(f"/appointments/{appointment.public_id}/cancel/")

    assert "50 % refund" in response.content.decode() and "₹250.00 of ₹500.00" in response.content.decode()


def test_reschedule_page_offers_slots_and_moves_the_appointment(client, clinic, patient):
    appointment = confirmed(clinic, patient, start=SLOT + timedelta(days=1))
    client.force_login(patient)

    page = client.get(f"/appointments/{appointment.public_id}/reschedule/?date=2026-11-04")
    response = client.post(f"/appointments/{appointment.public_id}/reschedule/", {"start": "2026-11-04T10:00:00+00:00"})

    appointment.refresh_from_db()
    assert "2026-11-04T10:00:00+00:00" in slot_values(page)
    assert response.status_code == 302
    assert (appointment.start, appointment.reschedule_count) == (datetime(2026, 11, 4, 10, 0, tzinfo=UTC), 1)


def test_rescheduling_onto_a_taken_slot_shows_suggestions_and_keeps_the_time(client, clinic, patient):
    appointment = confirmed(clinic, patient, start=SLOT + timedelta(days=1))
    confirmed(clinic, UserFactory(), start=SLOT + timedelta(days=2))
    client.force_login(patient)

    response = client.post(f"/appointments/{appointment.public_id}/reschedule/", {"start": (SLOT + timedelta(days=2)).isoformat()})

    appointment.refresh_from_db()
    assert response.status_code == 409
    assert response.context["suggestions"][0].value == "2026-11-04T09:30:00+00:00"
    assert appointment.start == SLOT + timedelta(days=1)


def test_the_doctor_marks_attendance(client, clinic, patient, frozen_time):
    appointment = confirmed(clinic, patient)
    frozen_time.move_to(SLOT + timedelta(minutes=2))
    client.force_login(clinic["doctor"].user)

    page = client.get(f"/appointments/{appointment.public_id}/")
    client.post(f"/appointments/{appointment.public_id}/status/", {"status": "in_progress"})
    client.post(f"/appointments/{appointment.public_id}/status/", {"status": "completed"})

    appointment.refresh_from_db()
    assert [value for value, _ in page.context["status_choices"]] == ["in_progress", "completed", "no_show"]
    assert appointment.status == "completed"
    assert list(AppointmentEvent.objects.filter(appointment=appointment).values_list("to_status", flat=True))[-2:] == ["in_progress", "completed"]


def test_no_show_is_offered_only_once_the_appointment_started_and_patients_cannot_set_status(client, clinic, patient):
    appointment = confirmed(clinic, patient)
    client.force_login(clinic["doctor"].user)
    before_start = client.get(f"/appointments/{appointment.public_id}/")
    client.force_login(patient)

    response = client.post(f"/appointments/{appointment.public_id}/status/", {"status": "completed"})

    appointment.refresh_from_db()
    assert [value for value, _ in before_start.context["status_choices"]] == ["in_progress", "completed"]
    assert response.status_code == 404
    assert appointment.status == "confirmed"


def test_staff_can_open_any_appointment(client, clinic, patient):  # staff whose role covers appointments
    appointment = confirmed(clinic, patient)
    client.force_login(staff_member(roles.SUPPORT))

    assert client.get(f"/appointments/{appointment.public_id}/").status_code == 200


# --- Lists ----------------------------------------------------------------------------------


def test_my_appointments_splits_upcoming_and_past_and_filters(client, clinic, patient, frozen_time):
    past = confirmed(clinic, patient, start=SLOT)
    soon = confirmed(clinic, patient, start=SLOT + timedelta(days=1))
    later = confirmed(clinic, patient, start=SLOT + timedelta(days=3))
    services.appointment_cancel(appointment=later, by=patient, reason="Travel")
    frozen_time.move_to(SLOT + timedelta(hours=2))
    client.force_login(patient)

    upcoming = client.get("/appointments/")
    past_tab = client.get("/appointments/?tab=past")
    cancelled_only = client.get("/appointments/?status=cancelled")
    by_date = client.get("/appointments/?start_date=2026-11-03&end_date=2026-11-03")

    assert list(upcoming.context["appointments"]) == [soon, later]
    assert list(past_tab.context["appointments"]) == [past]
    assert list(cancelled_only.context["appointments"]) == [later]
    assert list(by_date.context["appointments"]) == [soon]
    assert "Dr. Priya Raman" in upcoming.content.decode()


def test_empty_lists_say_so(client, patient):
    client.force_login(patient)

    upcoming = client.get("/appointments/")
    filtered = client.get("/appointments/?status=completed")

    assert "No upcoming appointments" in upcoming.content.decode()
    assert "No appointments match these filters" in filtered.content.decode()


def test_doctors_list_shows_patients_but_not_holds_in_progress(client, clinic, patient):
    hold_for(clinic, UserFactory(), start=SLOT + timedelta(days=2))
    booked = confirmed(clinic, patient, start=SLOT + timedelta(days=1))
    client.force_login(clinic["doctor"].user)

    response = client.get("/appointments/")

    assert list(response.context["appointments"]) == [booked]
    assert "Asha Verma" in response.content.decode()


# --- Doctor portal: week and availability ---------------------------------------------------


def test_schedule_shows_the_week_from_monday_in_the_schedule_zone(client, clinic, patient):
    clinic["doctor"].schedule.timezone = "Asia/Kolkata"
    clinic["doctor"].schedule.save()
    booked = confirmed(clinic, patient, start=datetime(2026, 11, 4, 4, 0, tzinfo=UTC))  # Wed 09:30 in Kolkata
    client.force_login(clinic["doctor"].user)

    response = client.get("/portal/schedule/?week=2026-11-05")

    days = response.context["days"]
    html = response.content.decode()
    assert [day["date"] for day in days] == [date(2026, 11, 2) + timedelta(days=n) for n in range(7)]
    assert days[2]["appointments"] == [booked]
    assert "09:30–10:00" in html
    assert f'href="/appointments/{booked.public_id}/"' in html
    assert 'href="?week=2026-10-26"' in html and 'href="?week=2026-11-09"' in html


def test_schedule_and_availability_are_for_doctors(client, patient):
    client.force_login(patient)

    assert client.get("/portal/schedule/")["Location"] == "/doctors/apply/"
    assert client.get("/portal/availability/")["Location"] == "/doctors/apply/"


def availability_post(schedule_fields: dict | None = None, rows: list[tuple[str, str, str]] = (), saved: int = 0, delete: tuple[int, ...] = ()) -> dict:
    """The editor's POST: booking rules, and weekly hours rows of which the first ``saved`` were
    rendered from the database (as the page does)."""
    data = {
        "form": "schedule",
        "timezone": "Asia/Kolkata",
        "default_slot_minutes": "20",
        "buffer_before_minutes": "0",
        "buffer_after_minutes": "10",
        "min_notice_hours": "3",
        "max_days_ahead": "30",
        "daily_cap": "",
        "max_reschedules": "1",
        "reschedule_notice_hours": "24",
        "hours-TOTAL_FORMS": str(len(rows)),
        "hours-INITIAL_FORMS": str(saved),
        "hours-MIN_NUM_FORMS": "0",
        "hours-MAX_NUM_FORMS": "50",
        **(schedule_fields or {}),
    }
    for index, (weekday, start, end) in enumerate(rows):
        data.update({f"hours-{index}-weekday": weekday, f"hours-{index}-start": start, f"hours-{index}-end": end})
        if index in delete:
            data[f"hours-{index}-DELETE"] = "on"
    return data


def test_availability_editor_shows_saved_rows_and_an_empty_one(client, clinic):
    client.force_login(clinic["doctor"].user)

    page = client.get("/portal/availability/")

    hours = page.context["hours"]
    assert page.status_code == 200
    assert (hours.initial_form_count(), hours.total_form_count()) == (7, 8)
    assert hours.forms[1].initial == {"weekday": 1, "start": time(9), "end": time(11)}
    assert page.context["schedule_form"]["min_notice_hours"].value() == 1


def test_availability_editor_saves_rules_and_weekly_hours(client, clinic):
    doctor = clinic["doctor"]
    doctor.schedule.weekly_hours.all().delete()
    client.force_login(doctor.user)

    response = client.post("/portal/availability/", availability_post(rows=[("1", "09:00", "12:00"), ("1", "14:00", "17:30"), ("3", "10:00", "13:00"), ("", "", "")]))

    doctor.schedule.refresh_from_db()
    assert response.status_code == 302
    assert list(doctor.schedule.weekly_hours.values_list("weekday", "start_time", "end_time")) == [
        (1, time(9), time(12)),
        (1, time(14), time(17, 30)),
        (3, time(10), time(13)),
    ]
    schedule = doctor.schedule
    assert (schedule.timezone, schedule.buffer_after_minutes, schedule.min_notice_minutes, schedule.max_reschedules, schedule.reschedule_min_notice_minutes, schedule.daily_cap) == (
        "Asia/Kolkata", 10, 180, 1, 1440, None,
    )


def test_availability_editor_removes_rows_marked_for_removal(client, clinic):
    doctor = clinic["doctor"]
    doctor.schedule.weekly_hours.exclude(weekday__in=[0, 2]).delete()
    client.force_login(doctor.user)

    client.post("/portal/availability/", availability_post(rows=[("0", "09:00", "11:00"), ("2", "09:00", "11:00"), ("", "", "")], saved=2, delete=(1,)))

    assert list(doctor.schedule.weekly_hours.values_list("weekday", flat=True)) == [0]


def test_overlapping_ranges_are_rejected_with_a_field_error_and_nothing_changes(client, clinic):
    doctor = clinic["doctor"]
    before = list(doctor.schedule.weekly_hours.values_list("weekday", "start_time", "end_time"))
    client.force_login(doctor.user)

    response = client.post("/portal/availability/", availability_post(rows=[("1", "09:00", "12:00"), ("1", "11:00", "13:00")]))

    hours = response.context["hours"]
    assert response.status_code == 200
    assert hours.forms[1].errors == {"start": ["Overlaps 09:00–12:00 on Tuesday."]}
    assert 'id="id_hours-1-start_error"' in response.content.decode()
    assert list(doctor.schedule.weekly_hours.values_list("weekday", "start_time", "end_time")) == before
    doctor.schedule.refresh_from_db()
    assert doctor.schedule.timezone == "UTC"


def test_a_range_ending_before_it_starts_and_bad_rules_are_field_errors(client, clinic):
    client.force_login(clinic["doctor"].user)

    response = client.post("/portal/availability/", availability_post({"buffer_after_minutes": "500"}, rows=[("2", "12:00", "09:00")]))

    assert response.context["hours"].forms[0].errors == {"end": ["End after the start time."]}
    assert response.context["schedule_form"].errors == {"buffer_after_minutes": ["Ensure this value is less than or equal to 120."]}


def test_date_overrides_are_added_and_removed(client, clinic):
    doctor = clinic["doctor"]
    client.force_login(doctor.user)

    closed = client.post("/portal/availability/", {"form": "override", "date": "2026-11-10", "kind": "closed", "note": "Conference"})
    special = client.post("/portal/availability/", {"form": "override", "date": "2026-11-12", "kind": "hours", "start": "14:00", "end": "16:00"})
    page = client.get("/portal/availability/")
    removed = client.post("/portal/availability/overrides/2026-11-10/remove/")

    assert closed.status_code == special.status_code == removed.status_code == 302
    assert [item["date"] for item in page.context["overrides"]] == [date(2026, 11, 10), date(2026, 11, 12)]
    assert "Conference" in page.content.decode()
    assert list(doctor.schedule.overrides.values_list("date", "is_closed", "start_time", "end_time")) == [(date(2026, 11, 12), False, time(14), time(16))]


def test_override_form_errors_stay_next_to_their_fields(client, clinic):
    client.force_login(clinic["doctor"].user)

    past = client.post("/portal/availability/", {"form": "override", "date": "2026-11-01", "kind": "closed"})
    no_times = client.post("/portal/availability/", {"form": "override", "date": "2026-11-12", "kind": "hours", "start": "", "end": ""})

    assert past.context["override_form"].errors == {"date": ["Choose today or a later date."]}
    assert no_times.context["override_form"].errors == {"start": ["Give the start time."], "end": ["Give the end time."]}
    assert DateOverride.objects.count() == 0


def test_removing_an_override_needs_post_and_a_doctor(client, clinic, patient):
    schedule = clinic["doctor"].schedule
    DateOverride.objects.create(schedule=schedule, date=date(2026, 11, 10), is_closed=True)

    client.force_login(clinic["doctor"].user)
    get = client.get("/portal/availability/overrides/2026-11-10/remove/")
    client.force_login(patient)
    client.post("/portal/availability/overrides/2026-11-10/remove/")

    assert get.status_code == 405
    assert schedule.overrides.count() == 1


def test_portal_tabs_and_main_nav_link_the_new_pages(client, clinic, patient):
    client.force_login(clinic["doctor"].user)
    portal = client.get("/portal/schedule/").content.decode()
    client.force_login(patient)
    dashboard = client.get("/account/").content.decode()

    assert 'href="/portal/schedule/" aria-current="page"' in portal
    assert 'href="/portal/availability/"' in portal
    assert 'href="/appointments/"' in portal
    assert 'href="/appointments/"' in dashboard


def test_doctor_sets_a_vacation_and_declares_an_emergency_from_the_availability_page(client, clinic, patient):
    booked = confirmed(clinic, patient)
    later = confirmed(clinic, UserFactory(), start=SLOT + timedelta(days=3))
    client.force_login(clinic["doctor"].user)

    bad = client.post("/portal/availability/", {"form": "vacation", "first_day": "2026-11-08", "last_day": "2026-11-06"})
    vacation = client.post("/portal/availability/", {"form": "vacation", "first_day": "2026-11-05", "last_day": "2026-11-06"})
    emergency = client.post("/portal/availability/", {"form": "emergency", "reason": "Family emergency."})

    assert bad.status_code == 200 and "last_day" in bad.context["vacation_form"].errors
    assert vacation.status_code == 302 and emergency.status_code == 302
    assert snapshot(booked)[0] == "cancelled" and booked.refund_percent == 100
    later.refresh_from_db()
    assert later.status == "confirmed"
    assert services.cancellation_quote(appointment=later, by_role="patient").refund_percent == 100


def test_patient_joins_the_waitlist_from_the_booking_page(client, clinic, patient):
    from appointments.models import WaitlistEntry

    client.force_login(patient)

    page = client.get(book_url(clinic))
    joined = client.post(f"/doctors/{clinic['doctor'].slug}/waitlist/", {"service": str(clinic["service"].public_id), "first_day": "2026-11-05", "last_day": "2026-11-07"})
    twice = client.post(f"/doctors/{clinic['doctor'].slug}/waitlist/", {"service": str(clinic["service"].public_id), "first_day": "2026-11-05", "last_day": "2026-11-07"}, follow=True)

    assert b"Join the waitlist" in page.content
    assert joined.status_code == 302
    assert WaitlistEntry.objects.filter(patient=patient, doctor=clinic["doctor"]).count() == 1
    assert "already on this doctor" in twice.content.decode()


# --- Recurring series on the booking page ----------------------------------------------------------


def series_post(client, clinic, start=SLOT, **fields):
    data = {"service": str(clinic["service"].public_id), "key": "k" * 16, "start": start.isoformat(), "repeat": "7", "occurrences": "3", "reason": "Weekly physiotherapy review", **fields}
    return client.post(book_url(clinic), data)


def test_patient_books_a_weekly_series_from_the_booking_page(client, clinic, patient):
    client.force_login(patient)

    page = client.get(book_url(clinic)).content.decode()
    response = series_post(client, clinic)

    assert "Repeat this appointment" in page and 'name="repeat"' in page
    assert response.status_code == 302 and response["Location"] == "/appointments/"
    booked = list(Appointment.objects.filter(patient=patient).order_by("start"))
    assert [a.start for a in booked] == [SLOT, SLOT + timedelta(days=7), SLOT + timedelta(days=14)]
    assert len({a.series_id for a in booked}) == 1 and {a.status for a in booked} == {"pending_payment"}
    assert "3 appointments booked, every week from Monday 2 November at 09:00." in client.get("/appointments/").content.decode()


def test_a_double_click_on_a_series_slot_books_it_once_and_says_so(client, clinic, patient):
    client.force_login(patient)

    first, second = series_post(client, clinic), series_post(client, clinic)

    assert first.status_code == second.status_code == 302 and second["Location"] == "/appointments/"
    assert Appointment.objects.filter(patient=patient).count() == 3
    assert "is not free" not in client.get("/appointments/").content.decode()


def test_a_series_with_one_taken_occurrence_books_nothing_and_says_which(client, clinic, patient):
    confirmed(clinic, UserFactory(), start=SLOT + timedelta(days=14))
    client.force_login(patient)

    response = series_post(client, clinic)

    assert response.status_code == 200
    assert "The third appointment, Monday 16 November at 09:00, is not free, so nothing was booked." in response.content.decode()
    assert not Appointment.objects.filter(patient=patient).exists()


def test_a_series_needs_a_reason_and_a_count(client, clinic, patient):
    client.force_login(patient)

    response = series_post(client, clinic, reason="", occurrences="")

    assert response.status_code == 200
    assert set(response.context["series_form"].errors) == {"reason", "occurrences"}
    assert "<details class=\"mm-repeat\" open>" in response.content.decode()
    assert not Appointment.objects.filter(patient=patient).exists()


# --- The doctor books one of their patients ------------------------------------------------------


def test_doctor_books_their_patient_inside_their_own_notice_from_the_portal(client, clinic, patient):
    earlier = confirmed(clinic, patient, start=SLOT + timedelta(days=3))
    Appointment.objects.filter(pk=earlier.pk).update(status="completed")
    DoctorSchedule.objects.filter(doctor=clinic["doctor"]).update(min_notice_minutes=180)  # 09:00 today is inside it
    client.force_login(clinic["doctor"].user)
    query = f"patient={patient.email}&service={clinic['service'].public_id}"

    page = client.get(f"/portal/book-patient/?{query}")
    booked = client.post(f"/portal/book-patient/?{query}", {"reason": "Review results today", "start": SLOT.isoformat()})

    assert page.status_code == 200 and SLOT.isoformat() in slot_values(page)
    assert f'<option value="{patient.email}">' in page.content.decode()
    appointment = Appointment.objects.get(patient=patient, start=SLOT)
    assert booked.status_code == 302 and booked["Location"] == f"/appointments/{appointment.public_id}/"
    assert (appointment.status, appointment.reason) == ("pending_payment", "Review results today")


@pytest.mark.parametrize("email", ["stranger@example.com", "not-registered@example.com"])
def test_book_a_patient_refuses_people_who_are_not_the_doctors_patients_and_reveals_nothing(client, clinic, email):
    UserFactory(email="stranger@example.com")
    client.force_login(clinic["doctor"].user)

    page = client.get(f"/portal/book-patient/?patient={email}&service={clinic['service'].public_id}")
    posted = client.post(f"/portal/book-patient/?patient={email}&service={clinic['service'].public_id}", {"reason": "x", "start": SLOT.isoformat()})

    assert page.context["form"].errors["patient"] == ["None of your patients has this email address. Check it, or ask the patient to book themselves."]
    assert slot_values(page) == [] and posted.status_code == 200
    assert not Appointment.objects.exists()


def test_book_a_patient_needs_a_reason_and_is_for_doctors_only(client, clinic, patient):
    confirmed(clinic, patient, start=SLOT + timedelta(days=3))
    client.force_login(clinic["doctor"].user)
    query = f"patient={patient.email}&service={clinic['service'].public_id}"

    no_reason = client.post(f"/portal/book-patient/?{query}", {"reason": "", "start": (SLOT + timedelta(hours=1)).isoformat()})
    client.force_login(patient)
    as_patient = client.get(f"/portal/book-patient/?{query}")

    assert no_reason.status_code == 200 and "reason" in no_reason.context["reason_form"].errors
    assert as_patient.status_code == 302
    assert Appointment.objects.count() == 1
