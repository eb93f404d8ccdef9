"""The staff dashboard and custom reports on fixed data: every number, the period boundaries in a
non-UTC zone (Asia/Kolkata, +05:30), money per currency, permissions, CSV and bad input."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import time_machine
from allauth.mfa.models import Authenticator
from allauth.usersessions.models import UserSession
from django.conf import settings
from django.contrib.auth.models import Permission
from django.contrib.sessions.models import Session
from rest_framework.test import APIClient

from accounts.models import ApiSession
from accounts.tests.factories import StaffFactory, UserFactory, staff_member
from appointments.models import Appointment
from consultations.models import Consultation
from doctors.models import DoctorProfile, SearchTally
from doctors.services import search_tally_record
from doctors.tests.factories import DoctorProfileFactory, ServiceFactory, SpecializationFactory
from medimeet.core.audit import AuditEvent
from medimeet.core.dashboard import selectors
from medimeet.core.dashboard.failures import failed_task_record
from medimeet.core.dashboard.periods import period_resolve
from medimeet.core.errors import ApplicationError
from medimeet.core.models import FailedTask, Notification
from payments.models import Payment, Refund, WebhookEvent
from reviews.models import Review

NOW = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)  # 17:30 in Kolkata, Friday 20 November
ZONE = "Asia/Kolkata"
LONG_AGO = datetime(2020, 1, 1, tzinfo=UTC)


def at(day: int, hour: int = 10, minute: int = 0, month: int = 11) -> datetime:
    return datetime(2026, month, day, hour, minute, tzinfo=UTC)


@pytest.fixture
def frozen():
    with time_machine.travel(NOW, tick=False):
        yield


@pytest.fixture
def permission(db):
    return Permission.objects.get(content_type__app_label="core", codename="view_dashboard")


@pytest.fixture
def analyst(permission):
    staff = staff_member(email="analyst@medimeet.local", timezone=ZONE)
    staff.user_permissions.add(permission)
    return staff


def appointment(doctor, patient, *, status, created, start, cancelled_at=None, currency="INR"):
    service = doctor.services.first() or ServiceFactory(doctor=doctor)
    row = Appointment.objects.create(
        doctor=doctor, patient=patient, service=service, start=start, end=start + timedelta(minutes=20), blocked_start=start,
        blocked_end=start + timedelta(minutes=20), status=status, price_minor=50000, currency=currency,
        hold_expires_at=NOW + timedelta(minutes=10) if status in ("held", "pending_payment") else None,
        cancelled_by="patient" if status == "cancelled" else "", cancelled_at=cancelled_at,
    )  # fmt: skip
    Appointment.objects.filter(pk=row.pk).update(created_at=created)
    return row


def payment(appt, *, amount, currency, gateway, paid_at, refunded=0, status="succeeded"):
    return Payment.objects.create(
        appointment=appt, patient=appt.patient, doctor=appt.doctor, gateway=gateway, status=status, amount_minor=amount, currency=currency,
        amount_refunded_minor=refunded, paid_at=paid_at, gateway_reference=f"ref-{appt.pk}-{amount}",
    )  # fmt: skip


@pytest.fixture
def world(db, frozen, analyst, settings, tmp_path):
    """Two doctors (Mumbai cardiology, London dermatology), their appointments, money, reviews,
    searches and sessions around the edges of the last 7 days in Kolkata:
    [2026-11-14 00:00 IST, 2026-11-21 00:00 IST) = [2026-11-13 18:30 UTC, 2026-11-20 18:30 UTC)."""
    cardio, derm = SpecializationFactory(name="Cardiology"), SpecializationFactory(name="Dermatology")
    d1 = DoctorProfileFactory(slug="dr-anita-rao", user__first_name="Anita", user__last_name="Rao", city="Mumbai", primary_specialization=cardio, next_available_at=NOW + timedelta(hours=2))
    d2 = DoctorProfileFactory(slug="dr-tom-hale", user__first_name="Tom", user__last_name="Hale", city="London", country="GB", primary_specialization=derm, next_available_at=NOW + timedelta(hours=4))
    DoctorProfileFactory(verification_status=DoctorProfile.Status.UNDER_REVIEW, next_available_at=NOW + timedelta(hours=100))  # not listed
    DoctorProfileFactory(next_available_at=NOW - timedelta(hours=1))  # stale: the beat task will move it
    p = [UserFactory(email=f"patient{i}@example.com") for i in range(6)]

    a1 = appointment(d1, p[0], status="confirmed", created=at(15), start=at(25))
    a2 = appointment(d1, p[1], status="completed", created=at(16), start=at(17))
    a3 = appointment(d2, p[2], status="no_show", created=at(16), start=at(18))
    a4 = appointment(d2, p[3], status="cancelled", created=at(17), start=at(26), cancelled_at=at(18))
    appointment(d1, p[4], status="held", created=at(18), start=at(27))
    appointment(d1, p[5], status="expired", created=at(18), start=at(28))
    a7 = appointment(d1, p[2], status="completed", created=at(1), start=at(19))
    appointment(d2, p[4], status="cancelled", created=at(1), start=at(29), cancelled_at=at(13, 18, 29))  # 23:59 IST on the 13th
    appointment(d1, p[5], status="pending_payment", created=at(19, 20), start=at(30))  # 01:30 IST on the 20th
    a10 = appointment(d2, p[0], status="completed", created=at(1), start=at(30, month=10))

    Consultation.objects.create(appointment=a2, status="ended", started_at=at(17), ended_at=at(17, 10, 20))
    Consultation.objects.create(appointment=a7, status="ended", started_at=at(19), ended_at=at(19, 10, 20))
    Consultation.objects.create(appointment=a1, status="live", started_at=NOW - timedelta(minutes=10))
    Consultation.objects.create(appointment=a10, status="ended", started_at=at(30, month=10))

    payment(a2, amount=50000, currency="INR", gateway="razorpay", paid_at=at(16))
    payment(a3, amount=3000, currency="USD", gateway="stripe", paid_at=at(16))
    paid_a4 = payment(a4, amount=20000, currency="INR", gateway="razorpay", paid_at=at(17), refunded=20000)
    paid_a7 = payment(a7, amount=40000, currency="INR", gateway="razorpay", paid_at=at(1))
    Refund.objects.create(payment=paid_a4, amount_minor=20000, reason="Cancelled in time", source="policy", status="succeeded", processed_at=at(18))
    Refund.objects.create(payment=paid_a7, amount_minor=10000, reason="Asked", source="patient", status="requested")

    for appt, overall, status, created in ((a2, 5, "published", at(18)), (a7, 4, "published", at(19)), (a10, 1, "held", at(19))):
        review = Review.objects.create(appointment=appt, doctor=appt.doctor, author=appt.patient, overall=overall, text="x" * 30, status=status, published_at=created if status == "published" else None)
        Review.objects.filter(pk=review.pk).update(created_at=created)

    for moment in [at(14)] * 6 + [at(20, 11)] * 4 + [at(13, 18, 0)]:  # ten in the period, one before it
        search_tally_record(at=moment)

    Session.objects.create(session_key="live", session_data="", expire_date=NOW + timedelta(hours=1))
    Session.objects.create(session_key="over", session_data="", expire_date=NOW - timedelta(seconds=1))
    Session.objects.create(session_key="idle", session_data="", expire_date=NOW + timedelta(hours=1))
    for key, user, seen in (("live", p[0], NOW - timedelta(minutes=5)), ("over", p[1], NOW - timedelta(minutes=5)), ("idle", p[2], NOW - timedelta(hours=2))):
        UserSession.objects.create(user=user, session_key=key, ip="127.0.0.1", user_agent="test", last_seen_at=seen)
    ApiSession.objects.create(user=p[0], expires_at=NOW + timedelta(days=1))
    ApiSession.objects.create(user=p[3], expires_at=NOW + timedelta(days=1))
    ApiSession.objects.create(user=p[4], expires_at=NOW + timedelta(days=1), revoked_at=NOW - timedelta(hours=1))

    FailedTask.objects.create(task_name="payments.tasks.process", task_id="1", exception_type="builtins.RuntimeError", failed_at=NOW - timedelta(hours=1))
    FailedTask.objects.create(task_name="payments.tasks.process", task_id="2", exception_type="builtins.RuntimeError", failed_at=NOW - timedelta(days=2))
    Notification.objects.create(channel="email", event="appointment.update", language="en", status="failed")
    WebhookEvent.objects.create(gateway="stripe", event_id="evt_1", event_type="charge.failed", payload={}, status="failed")
    WebhookEvent.objects.create(gateway="stripe", event_id="evt_2", event_type="charge.succeeded", payload={}, status="processed")

    # Sign-ups: everyone above joined long ago, except four patients around the edges.
    from accounts.models import User

    User.objects.update(date_joined=LONG_AGO)
    for user, joined in ((p[0], at(13, 18, 29)), (p[1], at(13, 18, 30)), (p[2], at(14)), (p[3], at(19, 20))):
        User.objects.filter(pk=user.pk).update(date_joined=joined)

    settings.CELERY_BROKER_TRANSPORT_OPTIONS = {**settings.CELERY_BROKER_TRANSPORT_OPTIONS, "data_folder_in": str(tmp_path)}
    for name in ("1_a.celery.msg", "2_b.celery.msg", "3_c.other.msg"):
        (tmp_path / name).write_text("{}")
    return {"d1": d1, "d2": d2, "patients": p}


def last_7_days():
    return period_resolve(name="7d", zone=ZONE)


# --- The numbers ------------------------------------------------------------------------------


def test_period_is_the_last_seven_local_days_in_the_staff_zone(frozen):
    period = last_7_days()

    assert (period.first_day.isoformat(), period.last_day.isoformat(), period.interval) == ("2026-11-14", "2026-11-20", "day")
    assert (period.start.astimezone(UTC), period.end.astimezone(UTC)) == (at(13, 18, 30), at(20, 18, 30))


def test_sign_ups_count_local_days_not_utc_days(world):
    series = selectors.signups(last_7_days())

    assert series["total"] == 3  # 23:59 IST on the 13th is outside; 00:00 IST on the 14th is in
    assert {p["date"]: p["value"] for p in series["points"] if p["value"]} == {"2026-11-14": 2, "2026-11-20": 1}  # 20:00 UTC on the 19th is the 20th in Kolkata
    assert len(series["points"]) == 7


def test_bookings_exclude_holds_and_lapsed_holds(world):
    series = selectors.bookings(last_7_days())

    assert series["total"] == 5
    assert {p["date"]: p["value"] for p in series["points"] if p["value"]} == {"2026-11-15": 1, "2026-11-16": 2, "2026-11-17": 1, "2026-11-20": 1}


def test_bookings_include_pending_payment_at_the_end_of_the_local_day(world):
    # the pending_payment booking was created 20:00 UTC on the 19th = 01:30 IST on the 20th
    custom = period_resolve(name="custom", zone=ZONE, first="2026-11-20", last="2026-11-20")
    utc_view = period_resolve(name="custom", zone="UTC", first="2026-11-19", last="2026-11-19")

    assert selectors.bookings(custom)["total"] == 1
    assert selectors.bookings(utc_view)["total"] == 1


def test_consultations_and_cancellations(world):
    period = last_7_days()

    assert selectors.consultations(period)["total"] == 3
    assert selectors.cancellations(period)["total"] == 1
    assert selectors.active_consultations() == 1


def test_revenue_and_refunds_are_per_currency(world):
    period = last_7_days()

    revenue = {row["currency"]: (row["count"], row["amount_minor"], row["display"]) for row in selectors.revenue(period)}
    refunds = {row["currency"]: (row["count"], row["amount_minor"]) for row in selectors.refunds(period)}

    assert revenue == {"INR": (2, 70000, "₹700.00"), "USD": (1, 3000, "$30.00")}
    assert refunds == {"INR": (1, 20000)}


def test_performance_indicators(world):
    period = last_7_days()

    assert selectors.searches(period) == 10
    assert selectors.search_conversion(bookings_total=5, searches_total=10) == 0.5
    assert selectors.search_conversion(bookings_total=5, searches_total=0) is None
    assert selectors.no_show_rate(period) == {"no_shows": 1, "completed": 2, "rate": 0.3333}
    assert selectors.average_rating(period) == {"reviews": 2, "average": 4.5}
    assert selectors.average_wait_to_next_slot(now=NOW) == {"doctors": 2, "average_seconds": 3 * 3600}


def test_real_time_metrics(world):
    assert selectors.signed_in_users(now=NOW) == {"web": 1, "api": 2, "total": 2}  # patient 0 on both counts once
    assert selectors.failed_tasks(since=NOW - timedelta(hours=24)) == {"tasks": 1, "notifications": 1}
    assert selectors.webhook_failures() == 1


def test_queue_length_reads_the_broker(world, settings):
    if settings.CELERY_BROKER_URL.startswith("redis"):
        client = selectors._redis_client(settings.CELERY_BROKER_URL)
        client.delete("celery")
        client.lpush("celery", "a", "b")
        try:
            assert selectors.queue_lengths() == [{"queue": "celery", "messages": 2}]
        finally:
            client.delete("celery")
    else:
        assert selectors.queue_lengths() == [{"queue": "celery", "messages": 2}]


def test_unreadable_broker_is_reported_as_unknown(world, settings):
    settings.CELERY_BROKER_URL = "filesystem://localhost//"
    settings.CELERY_BROKER_TRANSPORT_OPTIONS = {"data_folder_in": "/nonexistent/medimeet-queue"}

    assert selectors.queue_lengths() == [{"queue": "celery", "messages": None}]


def test_whole_dashboard_takes_a_fixed_number_of_queries(world, django_assert_max_num_queries):
    with django_assert_max_num_queries(17):
        data = selectors.dashboard(last_7_days(), now=NOW)

    assert data["usage"]["bookings"]["total"] == 5
    assert data["performance"]["search_to_booking"] == 0.5


def test_the_periods_numbers_are_kept_a_minute_and_the_real_time_block_is_always_fresh(world, django_assert_max_num_queries):
    selectors.dashboard(last_7_days(), now=NOW)

    with django_assert_max_num_queries(7):  # the real-time block only (17 the first time)
        again = selectors.dashboard(last_7_days(), now=NOW)

    assert again["usage"]["bookings"]["total"] == 5
    assert selectors.dashboard(last_7_days(), now=NOW, fresh=True)["usage"] == again["usage"]


def test_weekly_and_monthly_buckets_start_on_monday_and_the_first(world):
    weekly = selectors.signups(period_resolve(name="30d", zone=ZONE, interval="week"))
    monthly = selectors.bookings(period_resolve(name="90d", zone=ZONE, interval="month"))

    assert [p["date"] for p in weekly["points"]][:2] == ["2026-10-19", "2026-10-26"]
    assert {p["date"]: p["value"] for p in weekly["points"] if p["value"]} == {"2026-11-09": 3, "2026-11-16": 1}  # the 13th 23:59 IST is in these 30 days
    assert [(p["date"], p["value"]) for p in monthly["points"]] == [("2026-08-01", 0), ("2026-09-01", 0), ("2026-10-01", 0), ("2026-11-01", 8)]  # with the three created on 1 November


# --- Reports ----------------------------------------------------------------------------------


def test_report_bookings_by_doctor(world):
    report = selectors.report(metric="bookings", group_by="doctor", period=last_7_days())

    assert report.columns == ["doctor", "doctor_name", "count"]
    assert report.table() == [["dr-anita-rao", "Anita Rao", 3], ["dr-tom-hale", "Tom Hale", 2]]


def test_report_revenue_by_gateway_and_city_per_currency(world):
    by_gateway = selectors.report(metric="revenue", group_by="gateway", period=last_7_days())
    by_city = selectors.report(metric="revenue", group_by="city", period=last_7_days())

    assert by_gateway.table() == [["razorpay", "INR", 2, 70000, "₹700.00"], ["stripe", "USD", 1, 3000, "$30.00"]]
    assert by_city.table() == [["Mumbai", "INR", 1, 50000, "₹500.00"], ["London", "INR", 1, 20000, "₹200.00"], ["London", "USD", 1, 3000, "$30.00"]]


def test_report_no_show_rate_and_rating_by_specialization(world):
    no_shows = selectors.report(metric="no_show_rate", group_by="specialization", period=last_7_days())
    rating = selectors.report(metric="average_rating", group_by="doctor", period=last_7_days())

    assert no_shows.table() == [["Dermatology", 1, 0, 1.0], ["Cardiology", 0, 2, 0.0]]
    assert rating.table() == [["dr-anita-rao", "Anita Rao", 2, 4.5]]


def test_report_refunds_by_day_in_the_staff_zone(world):
    report = selectors.report(metric="refunds", group_by="day", period=last_7_days())

    assert report.table() == [["2026-11-18", "INR", 1, 20000, "₹200.00"]]


def test_report_groupings_a_metric_does_not_have_are_refused(frozen):
    with pytest.raises(ApplicationError) as signups_by_doctor:
        selectors.report(metric="signups", group_by="doctor", period=last_7_days())
    with pytest.raises(ApplicationError) as bookings_by_gateway:
        selectors.report(metric="bookings", group_by="gateway", period=last_7_days())

    assert signups_by_doctor.value.code == bookings_by_gateway.value.code == "DASH_006"


def test_report_takes_one_query(world, django_assert_num_queries):
    with django_assert_num_queries(1):
        selectors.report(metric="revenue", group_by="doctor", period=last_7_days())


# --- Search tally and failed tasks ------------------------------------------------------------


def test_search_tally_counts_each_search_in_its_quarter_hour(db):
    search_tally_record(at=datetime(2026, 11, 20, 9, 14, 59, tzinfo=UTC))
    search_tally_record(at=at(20, 9, 0))
    search_tally_record(at=at(20, 9, 15))

    assert list(SearchTally.objects.order_by("bucket").values_list("bucket", "count")) == [(at(20, 9, 0), 2), (at(20, 9, 15), 1)]


def test_doctor_search_page_and_api_are_counted_but_not_their_later_pages(db, client):
    client.get("/doctors/")
    client.get("/doctors/?page=2")
    APIClient().get("/api/v1/doctors/")
    APIClient().get("/api/v1/doctors/?page=3")

    assert SearchTally.objects.get().count == 2


def test_failed_task_record_keeps_no_arguments_or_message(db):
    from medimeet.celery import app

    @app.task(name="medimeet.tests.always_fails")
    def always_fails(patient_note):
        raise ValueError(f"bad note {patient_note}")

    result = always_fails.apply(args=["chest pain since Monday"], throw=False)  # as a worker runs it

    assert result.failed()

    task = FailedTask.objects.get()
    assert (task.task_name, task.exception_type) == ("medimeet.tests.always_fails", "builtins.ValueError")
    assert "chest pain" not in str(FailedTask.objects.values().get())


def test_failed_task_record_directly(db):
    failed_task_record(task_name="x.y", task_id="abc", exception=KeyError("secret"))

    assert list(FailedTask.objects.values_list("task_name", "task_id", "exception_type")) == [("x.y", "abc", "builtins.KeyError")]


# --- Period errors ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("params", "code"),
    [
        ({"name": "fortnight"}, "DASH_001"),
        ({"name": "custom"}, "DASH_002"),
        ({"name": "custom", "first": "2026-11-10", "last": "2026-11-01"}, "DASH_002"),
        ({"name": "custom", "first": "10/11/2026", "last": "2026-11-12"}, "DASH_002"),
        ({"name": "custom", "first": "2020-01-01", "last": "2026-11-12"}, "DASH_002"),
        ({"name": "7d", "interval": "hour"}, "DASH_003"),
    ],
)
def test_bad_periods_are_refused_with_a_code(params, code):
    with pytest.raises(ApplicationError) as error:
        period_resolve(zone=ZONE, **params)

    assert error.value.code == code


# --- The API ----------------------------------------------------------------------------------


def api(user=None) -> APIClient:
    client = APIClient()
    if user is not None:
        client.force_authenticate(user)
    return client


def test_api_dashboard_gives_the_same_numbers(world, analyst):
    response = api(analyst).get("/api/v1/admin/dashboard/?period=7d")

    body = response.json()
    assert response.status_code == 200
    assert body["period"]["time_zone"] == ZONE and body["period"]["from"] == "2026-11-14"
    assert body["usage"]["signups"]["total"] == 3
    assert body["usage"]["bookings"]["total"] == 5
    assert body["real_time"]["signed_in_users"]["total"] == 2
    assert body["performance"]["no_shows"]["rate"] == 0.3333
    assert [(r["currency"], r["amount_minor"]) for r in body["performance"]["revenue"]] == [("INR", 70000), ("USD", 3000)]


def test_api_report_as_csv_escapes_formula_cells_and_is_audited(world, analyst):
    DoctorProfile.objects.filter(pk=world["d1"].pk).update(city="=HYPERLINK(\"http://evil\")")

    response = api(analyst).get("/api/v1/admin/reports/?metric=bookings&group_by=city&period=7d&format=csv")

    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/csv")
    assert response["Content-Disposition"] == 'attachment; filename="medimeet-bookings-by-city-2026-11-14-2026-11-20.csv"'
    rows = list(csv.reader(io.StringIO(b"".join(response.streaming_content).decode())))
    assert rows == [["city", "count"], ["'=HYPERLINK(\"http://evil\")", "3"], ["London", "2"]]
    assert AuditEvent.objects.filter(action="dashboard.report_export", actor=analyst).count() == 1


def test_api_report_as_json(world, analyst):
    response = api(analyst).get("/api/v1/admin/reports/?metric=consultations&group_by=specialization&period=7d")

    assert response.status_code == 200
    assert response.json()["rows"] == [{"specialization": "Cardiology", "count": 3}]


@pytest.mark.parametrize(
    ("query", "code"),
    [
        ("period=year", "DASH_001"),
        ("period=custom&from=2026-11-10", "DASH_002"),
        ("period=7d&interval=minute", "DASH_003"),
        ("metric=profit&group_by=doctor", "DASH_004"),
        ("metric=revenue&group_by=planet", "DASH_005"),
        ("metric=signups&group_by=city", "DASH_006"),
        ("metric=revenue&group_by=doctor&format=xlsx", "DASH_007"),
    ],
)
def test_api_bad_parameters_are_400_with_a_stable_code(frozen, analyst, query, code):
    path = "/api/v1/admin/reports/" if "metric" in query else "/api/v1/admin/dashboard/"

    response = api(analyst).get(f"{path}?{query}")

    assert response.status_code == 400
    assert response.json()["error"]["code"] == code


@pytest.mark.parametrize("who", ["patient", "doctor", "staff_without_permission"])
def test_api_refuses_everyone_but_staff_with_the_permission(db, who):
    user = {
        "patient": lambda: UserFactory(),
        "doctor": lambda: DoctorProfileFactory().user,
        "staff_without_permission": lambda: StaffFactory(),
    }[who]()

    dashboard = api(user).get("/api/v1/admin/dashboard/")
    report = api(user).get("/api/v1/admin/reports/?metric=bookings&group_by=doctor&format=csv")

    assert (dashboard.status_code, dashboard.json()["error"]["code"]) == (403, "AUTH_010")
    assert (report.status_code, report.json()["error"]["code"]) == (403, "AUTH_010")
    assert not AuditEvent.objects.filter(action="dashboard.report_export").exists()


def test_api_anonymous_is_401(db):
    assert api().get("/api/v1/admin/dashboard/").status_code == 401


# --- The admin page ---------------------------------------------------------------------------


def test_admin_page_shows_numbers_and_charts(world, analyst, client, django_assert_max_num_queries):
    client.force_login(analyst)

    with django_assert_max_num_queries(31):  # 17 for the numbers, the rest is the admin's chrome (roles, menus)
        response = client.get("/admin/dashboard/?period=7d")

    html = response.content.decode()
    assert response.status_code == 200
    assert 'data-metric="bookings">5<' in html
    assert 'data-metric="signed_in">3<' in html  # the analyst's own web session too
    assert 'data-metric="no_show_rate">33.3 %<' in html
    assert 'data-metric="revenue-INR">₹700.00<' in html
    assert html.count('<svg class="mm-chart-svg') == 6  # four usage charts, revenue in INR and in USD
    assert "<title id=\"chart-bookings-title\">Bookings</title>" in html


def test_admin_index_links_to_the_dashboard_for_staff_with_the_permission(analyst, client):
    client.force_login(analyst)

    assert 'href="/admin/dashboard/"' in client.get("/admin/").content.decode()


def test_admin_page_report_and_csv(world, analyst, client):
    client.force_login(analyst)

    page = client.get("/admin/dashboard/?period=7d&metric=revenue&group_by=gateway")
    download = client.get("/admin/dashboard/?period=7d&metric=revenue&group_by=gateway&format=csv")

    assert "razorpay" in page.content.decode() and "Download CSV" in page.content.decode()
    assert download["Content-Type"].startswith("text/csv")
    assert b"".join(download.streaming_content).decode().splitlines()[0] == "gateway,currency,count,amount_minor,amount"


def test_admin_page_bad_period_is_shown_not_a_500(frozen, analyst, client):
    client.force_login(analyst)

    response = client.get("/admin/dashboard/?period=custom&from=2026-11-10&to=2026-11-01")

    assert response.status_code == 400
    assert "The end date is before the start date." in response.content.decode()


@pytest.mark.parametrize("who", ["patient", "doctor", "staff_without_permission"])
def test_admin_page_refuses_everyone_but_staff_with_the_permission(db, client, who):
    user = {"patient": lambda: UserFactory(), "doctor": lambda: DoctorProfileFactory().user, "staff_without_permission": lambda: StaffFactory()}[who]()
    if user.is_staff:
        Authenticator.objects.create(user=user, type=Authenticator.Type.TOTP, data={"secret": "unused"})
    client.force_login(user)

    response = client.get("/admin/dashboard/")

    assert response.status_code in (302, 403)
    assert response.status_code == 403 if user.is_staff else response["Location"].startswith("/admin/login/")
    assert 'href="/admin/dashboard/"' not in client.get("/admin/").content.decode()


def test_brand_stylesheet_exists():
    assert (Path(settings.BASE_DIR) / "static" / "css" / "dashboard.css").exists()


def test_failed_tasks_are_listed_in_the_admin(db, client):
    from accounts.models import User

    admin_user = User.objects.create_superuser(email="root@medimeet.local", password="Correct-Horse-Battery-9")
    Authenticator.objects.create(user=admin_user, type=Authenticator.Type.TOTP, data={"secret": "unused"})
    failed_task_record(task_name="payments.tasks.process_webhook", task_id="abc", exception=RuntimeError("x"))
    client.force_login(admin_user)

    html = client.get("/admin/core/failedtask/").content.decode()

    assert "payments.tasks.process_webhook" in html and "builtins.RuntimeError" in html


@pytest.mark.django_db(transaction=True)
def test_search_tally_loses_no_count_when_searches_race():
    from concurrent.futures import ThreadPoolExecutor

    from django.db import connections

    moment = at(20, 9, 5)

    def searches(_):
        try:
            for _ in range(25):
                search_tally_record(at=moment)
        finally:
            connections.close_all()

    with ThreadPoolExecutor(max_workers=8) as pool:
        list(pool.map(searches, range(8)))

    assert SearchTally.objects.get(bucket=at(20, 9, 0)).count == 200


def test_admin_page_speaks_the_staff_members_language(world, analyst, client):
    analyst.language = "hi"
    analyst.save(update_fields=["language"])
    client.force_login(analyst)

    html = client.get("/admin/dashboard/?period=7d").content.decode()

    assert "डैशबोर्ड" in html and "खोज से बुकिंग" in html
