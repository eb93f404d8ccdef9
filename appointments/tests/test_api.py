"""Appointments API: slots, booking flow, access control over the usual cast, calendar export."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta

import pytest
import time_machine
from icalendar import Calendar
from rest_framework.test import APIClient

from accounts.tests.factories import StaffFactory, UserFactory, staff_member
from appointments import services
from appointments.models import Appointment, DateOverride, DoctorSchedule, WeeklyHours
from doctors.tests.factories import DoctorProfileFactory, ServiceFactory
from medimeet.core import roles

pytestmark = pytest.mark.django_db

NOW = datetime(2026, 11, 2, 7, 0, tzinfo=UTC)  # Monday 07:00 UTC


@pytest.fixture(autouse=True)
def frozen():
    with time_machine.travel(NOW, tick=False) as traveller:
        yield traveller


@pytest.fixture
def clinic():
    doctor = DoctorProfileFactory(user__timezone="Asia/Kolkata")
    schedule = DoctorSchedule.objects.create(doctor=doctor, timezone="Asia/Kolkata", buffer_after_minutes=0, min_notice_minutes=60, max_days_ahead=30)
    WeeklyHours.objects.bulk_create([WeeklyHours(schedule=schedule, weekday=d, start_time=time(10), end_time=time(13)) for d in range(5)])
    service = ServiceFactory(doctor=doctor, duration_minutes=30, price_minor=80000)
    return {"doctor": doctor, "service": service}


def as_user(user=None) -> APIClient:
    client = APIClient()
    if user is not None:
        client.force_authenticate(user)
    return client


def slots(clinic, **params):
    query = {"service": str(clinic["service"].public_id), "start_date": "2026-11-03", "end_date": "2026-11-03", "timezone": "Europe/London", **params}
    return APIClient().get(f"/api/v1/doctors/{clinic['doctor'].slug}/slots/", query)


def test_slots_are_given_in_utc_and_in_the_viewers_zone(clinic):
    response = slots(clinic)

    assert response.status_code == 200
    body = response.json()
    assert body["doctor_timezone"] == "Asia/Kolkata"
    first = body["slots"][0]
    # 10:00 in Kolkata (UTC+5:30) is 04:30 UTC and 04:30 in London in November.
    assert first["start"] == "2026-11-03T04:30:00Z"
    assert first["local_start"] == "2026-11-03T04:30:00Z" or first["local_start"].startswith("2026-11-03T04:30:00")
    assert len(body["slots"]) == 6


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"timezone": "Mars/Base"}, "timezone"),
        ({"end_date": "2026-11-01"}, "end_date"),
        ({"end_date": "2027-03-01"}, "end_date"),
        ({"service": "not-a-uuid"}, "service"),
        ({"start_date": "yesterday"}, "start_date"),
    ],
)
def test_bad_slot_queries(clinic, params, field):
    response = slots(clinic, **params)

    assert response.status_code == 400
    assert field in response.json()["error"]["fields"]


def test_patient_books_through_the_api_with_an_idempotency_key(clinic):
    patient = UserFactory()
    api = as_user(patient)
    start = slots(clinic).json()["slots"][0]["start"]

    first = api.post("/api/v1/appointments/", {"service": str(clinic["service"].public_id), "start": start}, format="json", HTTP_IDEMPOTENCY_KEY="abc-123")
    retry = api.post("/api/v1/appointments/", {"service": str(clinic["service"].public_id), "start": start}, format="json", HTTP_IDEMPOTENCY_KEY="abc-123")
    confirmed = api.post(f"/api/v1/appointments/{first.json()['id']}/confirm/", {"reason": "Palpitations at night"}, format="json")

    assert first.status_code == 201 and retry.status_code == 201
    assert retry.json()["id"] == first.json()["id"]
    assert Appointment.objects.count() == 1
    assert first.json()["status"] == "held"
    assert first.json()["price"] == {"amount_minor": 80000, "currency": "INR", "exponent": 2, "display": "₹800.00"}
    assert confirmed.json()["status"] == "pending_payment"
    assert start not in [s["start"] for s in slots(clinic).json()["slots"]]


def test_booking_a_taken_slot_is_appt_002_with_suggestions(clinic):
    start = slots(clinic).json()["slots"][0]["start"]
    as_user(UserFactory()).post("/api/v1/appointments/", {"service": str(clinic["service"].public_id), "start": start}, format="json")

    response = as_user(UserFactory()).post("/api/v1/appointments/", {"service": str(clinic["service"].public_id), "start": start}, format="json")

    assert response.status_code == 409
    body = response.json()["error"]
    assert body["code"] == "APPT_002"
    assert body["next_free_slots"][0]["start"] == "2026-11-03T05:00:00+00:00"


@pytest.fixture
def booked(clinic):
    patient = UserFactory(timezone="Europe/London")
    start = datetime(2026, 11, 4, 4, 30, tzinfo=UTC)
    hold = services.appointment_hold(patient=patient, service=clinic["service"], start=start)
    appointment = services.appointment_confirm_details(appointment=hold, patient=patient, reason="Check-up")
    return services.appointment_mark_paid(appointment=appointment)


@pytest.mark.parametrize("who", ["other_patient", "other_doctor", "anonymous"])
def test_other_people_cannot_see_or_change_an_appointment(clinic, booked, who):
    user = {"other_patient": UserFactory(), "other_doctor": DoctorProfileFactory().user, "anonymous": None}[who]
    api = as_user(user)
    base = f"/api/v1/appointments/{booked.public_id}"

    responses = [
        api.get(f"{base}/"),
        api.get(f"{base}/cancellation/"),
        api.get(f"{base}/calendar.ics"),
        api.post(f"{base}/cancel/", {"reason": "mine now"}, format="json"),
        api.post(f"{base}/reschedule/", {"start": "2026-11-05T04:30:00Z"}, format="json"),
        api.post(f"{base}/status/", {"status": "completed"}, format="json"),
        api.post(f"{base}/confirm/", {"reason": "x"}, format="json"),
    ]

    expected = 401 if user is None else 404
    assert [r.status_code for r in responses] == [expected] * len(responses)
    if user is not None:
        assert {r.json()["error"]["code"] for r in responses} == {"APPT_006"}
    booked.refresh_from_db()
    assert (booked.status, booked.start) == ("confirmed", datetime(2026, 11, 4, 4, 30, tzinfo=UTC))


def test_lists_show_only_ones_own_appointments(clinic, booked):
    other = UserFactory()

    mine = as_user(booked.patient).get("/api/v1/appointments/").json()
    doctors = as_user(clinic["doctor"].user).get("/api/v1/appointments/").json()
    theirs = as_user(other).get("/api/v1/appointments/").json()
    staff = as_user(staff_member(roles.SUPPORT)).get(f"/api/v1/appointments/{booked.public_id}/")

    assert [a["id"] for a in mine["results"]] == [str(booked.public_id)]
    assert [a["id"] for a in doctors["results"]] == [str(booked.public_id)]
    assert theirs["results"] == []
    assert staff.status_code == 200


def test_list_filters_by_status_and_dates(clinic, booked):
    api = as_user(booked.patient)

    assert api.get("/api/v1/appointments/", {"status": "cancelled"}).json()["count"] == 0
    assert api.get("/api/v1/appointments/", {"start_date": "2026-11-04", "end_date": "2026-11-04"}).json()["count"] == 1
    assert api.get("/api/v1/appointments/", {"start_date": "2026-11-05"}).json()["count"] == 0
    assert api.get("/api/v1/appointments/", {"status": "bogus"}).status_code == 400


def test_list_query_count_is_constant(clinic, django_assert_max_num_queries):
    patient = UserFactory()
    for day in range(3, 8):
        hold = services.appointment_hold(patient=patient, service=clinic["service"], start=datetime(2026, 11, day, 4, 30, tzinfo=UTC) if date(2026, 11, day).weekday() < 5 else datetime(2026, 11, day + 2, 4, 30, tzinfo=UTC))
        Appointment.objects.filter(pk=hold.pk).update(status="confirmed", hold_expires_at=None)
        services.holds_release_expired()
    with django_assert_max_num_queries(3):
        response = as_user(patient).get("/api/v1/appointments/")
    assert response.json()["count"] >= 1


def test_cancellation_quote_then_cancel(clinic, booked, frozen):
    api = as_user(booked.patient)
    frozen.move_to(booked.start - timedelta(hours=5))

    quote = api.get(f"/api/v1/appointments/{booked.public_id}/cancellation/").json()
    cancelled = api.post(f"/api/v1/appointments/{booked.public_id}/cancel/", {"reason": "Travelling"}, format="json")
    again = api.post(f"/api/v1/appointments/{booked.public_id}/cancel/", {"reason": "Travelling"}, format="json")

    assert quote["refund_percent"] == 50 and quote["allowed"] is True
    assert cancelled.json()["status"] == "cancelled" and cancelled.json()["refund_percent"] == 50
    assert again.status_code == 409 and again.json()["error"]["code"] == "APPT_004"


def test_calendar_event_parses_back_with_stable_uid_and_increasing_sequence(clinic, booked):
    api = as_user(booked.patient)

    first = Calendar.from_ical(api.get(f"/api/v1/appointments/{booked.public_id}/calendar.ics").content)
    services.appointment_reschedule(appointment=booked, by=booked.patient, start=datetime(2026, 11, 5, 5, 0, tzinfo=UTC))
    second = Calendar.from_ical(api.get(f"/api/v1/appointments/{booked.public_id}/calendar.ics").content)
    services.appointment_cancel(appointment=booked, by=booked.patient, reason="No longer needed")
    third = Calendar.from_ical(api.get(f"/api/v1/appointments/{booked.public_id}/calendar.ics").content)

    events = [next(iter(c.walk("VEVENT"))) for c in (first, second, third)]
    assert len({str(e["uid"]) for e in events}) == 1
    assert [int(e["sequence"]) for e in events] == sorted(int(e["sequence"]) for e in events)
    assert int(events[1]["sequence"]) > int(events[0]["sequence"])
    assert events[0]["dtstart"].dt == datetime(2026, 11, 4, 4, 30, tzinfo=UTC)
    assert str(events[0]["dtstart"].dt.tzinfo) == "Europe/London"
    assert events[1]["dtstart"].dt == datetime(2026, 11, 5, 5, 0, tzinfo=UTC)
    assert list(first.walk("VTIMEZONE"))[0]["tzid"] == "Europe/London"
    assert list(events[0].walk("VALARM"))
    assert str(third["method"]) == "CANCEL" and str(events[2]["status"]) == "CANCELLED"


def test_doctor_edits_weekly_hours_and_closes_a_date(clinic):
    api = as_user(clinic["doctor"].user)

    saved = api.put(
        "/api/v1/doctors/me/schedule/",
        {"buffer_after_minutes": 10, "weekly_hours": [{"weekday": 1, "start": "09:00", "end": "11:00"}, {"weekday": 1, "start": "14:00", "end": "15:00"}]},
        format="json",
    )
    overlapping = api.put("/api/v1/doctors/me/schedule/", {"weekly_hours": [{"weekday": 1, "start": "09:00", "end": "11:00"}, {"weekday": 1, "start": "10:00", "end": "12:00"}]}, format="json")
    closed = api.post("/api/v1/doctors/me/schedule/overrides/", {"date": "2026-11-10", "closed": True}, format="json")

    assert saved.status_code == 200
    assert [(h["weekday"], h["start"], h["end"]) for h in saved.json()["weekly_hours"]] == [(1, "09:00:00", "11:00:00"), (1, "14:00:00", "15:00:00")]
    assert overlapping.status_code == 400 and "weekly_hours" in overlapping.json()["error"]["fields"]
    assert closed.status_code == 201
    tuesday = slots(clinic, start_date="2026-11-03", end_date="2026-11-03", timezone="Asia/Kolkata").json()["slots"]
    closed_day = slots(clinic, start_date="2026-11-10", end_date="2026-11-10", timezone="Asia/Kolkata").json()["slots"]
    assert [s["local_start"][11:16] for s in tuesday] == ["09:00", "09:40", "10:20", "14:00"]
    assert closed_day == []


@pytest.mark.parametrize("who", ["patient", "staff", None])
def test_schedule_endpoints_are_for_doctors(clinic, who):
    user = {"patient": UserFactory(), "staff": StaffFactory(), None: None}[who]

    response = as_user(user).put("/api/v1/doctors/me/schedule/", {"buffer_after_minutes": 1}, format="json")

    assert response.status_code == (401 if user is None else 403)


def test_private_calendar_feed_lists_bookings_tracks_syncs_and_rotates(client, clinic, booked):
    from appointments.models import CalendarFeed

    feed = services.calendar_feed_get(user=booked.patient)
    url = f"/calendar/{feed.token}.ics"

    response = client.get(url)
    rotated = services.calendar_feed_rotate(user=booked.patient)
    old = client.get(url)
    new = client.get(f"/calendar/{rotated.token}.ics")

    assert response.status_code == 200 and response["Content-Type"].startswith("text/calendar")
    events = list(Calendar.from_ical(response.content).walk("VEVENT"))
    assert [str(e["uid"]) for e in events] == [f"appointment-{booked.public_id}@medimeet"]
    assert CalendarFeed.objects.get(user=booked.patient).fetch_count == 2
    assert CalendarFeed.objects.get(user=booked.patient).last_fetched_at is not None
    assert old.status_code == 404
    assert new.status_code == 200
    assert client.get("/calendar/guess-a-token.ics").status_code == 404


def test_google_and_outlook_links_carry_the_utc_times(booked):
    from appointments.calendar import google_calendar_link, outlook_calendar_link

    assert "dates=20261104T043000Z%2F20261104T050000Z" in google_calendar_link(booked)
    assert "startdt=2026-11-04T04%3A30%3A00%2B00%3A00" in outlook_calendar_link(booked)


def test_doctor_declares_a_vacation_and_an_emergency_through_the_api(clinic, booked):
    api = as_user(clinic["doctor"].user)

    vacation = api.post("/api/v1/doctors/me/schedule/vacation/", {"first_day": "2026-11-04", "last_day": "2026-11-06"}, format="json")
    backwards = api.post("/api/v1/doctors/me/schedule/vacation/", {"first_day": "2026-11-06", "last_day": "2026-11-04"}, format="json")
    emergency = api.post("/api/v1/doctors/me/schedule/emergency/", {"reason": "Unwell"}, format="json")
    by_patient = as_user(booked.patient).post("/api/v1/doctors/me/schedule/emergency/", {}, format="json")

    assert vacation.status_code == 200 and [a["id"] for a in vacation.json()["affected"]] == [str(booked.public_id)]
    assert backwards.status_code == 400 and "last_day" in backwards.json()["error"]["fields"]
    assert emergency.status_code == 200 and emergency.json()["affected"] == []
    assert by_patient.status_code == 403


@pytest.mark.parametrize("first_day", ["0001-01-01", "2026-10-01"])
def test_a_vacation_starting_in_the_past_is_refused_and_closes_nothing(clinic, first_day):
    # API fuzzing found 0001-01-01 answered with a 500 (the day's start overflowed in UTC).
    api = as_user(clinic["doctor"].user)

    response = api.post("/api/v1/doctors/me/schedule/vacation/", {"first_day": first_day, "last_day": first_day}, format="json")

    assert response.status_code == 400 and "first_day" in response.json()["error"]["fields"]
    assert not DateOverride.objects.exists()


def test_waitlist_api_join_list_leave_and_others_cannot_touch_it(clinic):
    patient, other = UserFactory(), UserFactory()
    api = as_user(patient)

    joined = api.post("/api/v1/appointments/waitlist/", {"service": str(clinic["service"].public_id), "first_day": "2026-11-10", "last_day": "2026-11-12"}, format="json")
    again = api.post("/api/v1/appointments/waitlist/", {"service": str(clinic["service"].public_id), "first_day": "2026-11-10", "last_day": "2026-11-12"}, format="json")
    past = as_user(other).post("/api/v1/appointments/waitlist/", {"service": str(clinic["service"].public_id), "first_day": "2026-10-01", "last_day": "2026-10-02"}, format="json")
    entry_id = joined.json()["id"]
    stolen = as_user(other).delete(f"/api/v1/appointments/waitlist/{entry_id}/")
    listed = api.get("/api/v1/appointments/waitlist/").json()
    left = api.delete(f"/api/v1/appointments/waitlist/{entry_id}/")

    # The doctor has free slots on those days, so joining offers one at once.
    assert joined.status_code == 201 and joined.json()["status"] in ("waiting", "offered")
    assert again.status_code == 409 and again.json()["error"]["code"] == "APPT_008"
    assert past.status_code == 400
    assert stolen.status_code == 404
    assert [e["id"] for e in listed] == [entry_id]
    assert left.status_code == 204


def test_series_api_books_weekly_occurrences(clinic):
    api = as_user(UserFactory())

    response = api.post(
        "/api/v1/appointments/series/",
        {"service": str(clinic["service"].public_id), "first_start": "2026-11-03T04:30:00Z", "occurrences": 3, "reason": "Weekly review"},
        format="json",
    )
    bad = api.post("/api/v1/appointments/series/", {"service": str(clinic["service"].public_id), "first_start": "2026-11-03T04:30:00Z", "occurrences": 30, "reason": "x"}, format="json")

    assert response.status_code == 201
    assert [a["start"] for a in response.json()] == ["2026-11-03T04:30:00Z", "2026-11-10T04:30:00Z", "2026-11-17T04:30:00Z"]
    assert len({a["series_id"] for a in response.json()}) == 1
    assert bad.status_code == 400 and "occurrences" in bad.json()["error"]["fields"]


def test_slot_query_count_does_not_grow_with_the_range_or_bookings(clinic, django_assert_max_num_queries):
    for day in (3, 4, 5):
        hold = services.appointment_hold(patient=UserFactory(), service=clinic["service"], start=datetime(2026, 11, day, 4, 30, tzinfo=UTC))
        Appointment.objects.filter(pk=hold.pk).update(status="confirmed", hold_expires_at=None)

    with django_assert_max_num_queries(8):
        one_day = slots(clinic, start_date="2026-11-03", end_date="2026-11-03")
    with django_assert_max_num_queries(8):
        month = slots(clinic, start_date="2026-11-03", end_date="2026-12-02")

    assert len(month.json()["slots"]) > len(one_day.json()["slots"]) > 0



def test_patient_books_in_one_request_with_the_reason(clinic):
    from appointments.models import AppointmentEvent
    from medimeet.core.models import AuditEvent

    api = as_user(UserFactory())
    start = slots(clinic).json()["slots"][0]["start"]
    body = {"service": str(clinic["service"].public_id), "start": start, "reason": "Palpitations at night"}

    first = api.post("/api/v1/appointments/", body, format="json", HTTP_IDEMPOTENCY_KEY="one-step-1")
    retry = api.post("/api/v1/appointments/", body, format="json", HTTP_IDEMPOTENCY_KEY="one-step-1")

    assert first.status_code == 201 and retry.status_code == 201
    assert retry.json()["id"] == first.json()["id"]
    assert first.json()["status"] == "pending_payment"
    assert first.json()["reason"] == "Palpitations at night"
    assert first.json()["hold_expires_at"] == "2026-11-02T07:10:00Z"
    appointment = Appointment.objects.get()
    assert list(AppointmentEvent.objects.filter(appointment=appointment).values_list("from_status", "to_status")) == [("", "pending_payment")]
    assert list(AuditEvent.objects.filter(target_id=str(appointment.pk)).values_list("action", flat=True)) == ["appointment.pending_payment"]
    assert start not in [s["start"] for s in slots(clinic).json()["slots"]]


def test_a_blank_reason_books_nothing(clinic):
    start = slots(clinic).json()["slots"][0]["start"]

    response = as_user(UserFactory()).post("/api/v1/appointments/", {"service": str(clinic["service"].public_id), "start": start, "reason": "  "}, format="json")

    assert response.status_code == 400
    assert "reason" in response.json()["error"]["fields"]
    assert Appointment.objects.count() == 0


def test_booking_costs_a_fixed_number_of_queries(clinic, django_assert_max_num_queries):
    api = as_user(UserFactory())
    start = slots(clinic).json()["slots"][0]["start"]

    # 11 statements: the service with its doctor; in the transaction, the schedule lock, lapsed
    # holds, the rules (weekly hours, overrides, holidays) and the doctor's time that day, the
    # patient's appointments, then the appointment, its event and its audit entry. Plus the
    # test transaction's savepoint and release (BEGIN/COMMIT outside tests), and the platform
    # setting for hold minutes (a database read without Redis; Redis's cache in production).
    # One more: the patient's care plan (payments), which would cover the booking.
    with django_assert_max_num_queries(15):
        response = api.post(
            "/api/v1/appointments/", {"service": str(clinic["service"].public_id), "start": start, "reason": "Palpitations"}, format="json", HTTP_IDEMPOTENCY_KEY="k-1"
        )

    assert response.status_code == 201
