"""What API fuzzing (test_api_fuzz.py) found across the API: every paginated list was documented
as a bare array, and wall-clock times (schedules) as RFC 3339 times with a UTC offset they do
not have. Each answer here is checked against the schema."""

from __future__ import annotations

from datetime import time

import pytest
from rest_framework.test import APIClient

from accounts.tests.factories import UserFactory, staff_member
from appointments.models import DoctorSchedule, WeeklyHours
from doctors.tests.factories import DoctorProfileFactory
from medimeet.core import roles

from .openapi import assert_documented, openapi_schema

pytestmark = pytest.mark.django_db

PAGINATED = [
    ("patient", "/api/v1/appointments/"),
    ("patient", "/api/v1/consultations/"),
    ("patient", "/api/v1/notifications/"),
    ("patient", "/api/v1/payments/"),
    (None, "/api/v1/cms/posts/"),
    (None, "/api/v1/doctors/"),
    (roles.FINANCE, "/api/v1/admin/refunds/"),
    (roles.SUPPORT, "/api/v1/admin/users/"),
    (roles.VERIFICATION, "/api/v1/admin/doctors/"),
]


@pytest.mark.parametrize(("who", "url"), PAGINATED)
def test_paginated_lists_answer_the_documented_page(who, url):
    client = APIClient()
    if who == "patient":
        client.force_authenticate(UserFactory())
    elif who:
        client.force_authenticate(staff_member(who))

    response = client.get(url)

    assert response.status_code == 200
    assert set(response.json()) == {"count", "next", "previous", "results"}
    assert_documented(response, "GET", url)


def test_every_paginated_list_in_the_schema_is_documented_as_a_page():
    raw = openapi_schema().raw_schema
    pages = {name for name in raw["components"]["schemas"] if name.startswith("Paginated")}

    assert {tuple(raw["components"]["schemas"][name]["properties"]) for name in pages} == {("count", "next", "previous", "results")}
    assert len(pages) >= 10


def test_schedule_times_are_documented_as_wall_clock_times():
    doctor = DoctorProfileFactory(user__timezone="Asia/Kolkata")
    schedule = DoctorSchedule.objects.create(doctor=doctor, timezone="Asia/Kolkata")
    WeeklyHours.objects.create(schedule=schedule, weekday=0, start_time=time(9), end_time=time(13, 30))
    client = APIClient()
    client.force_authenticate(doctor.user)

    response = client.get("/api/v1/doctors/me/schedule/")

    assert response.status_code == 200
    assert '"09:00:00"' in response.content.decode() and '"13:30:00"' in response.content.decode()
    assert_documented(response, "GET", "/api/v1/doctors/me/schedule/")


def test_a_body_in_an_unsupported_media_type_is_a_documented_415():
    response = APIClient().post("/api/v1/auth/login/", b"email=a", content_type="text/csv")

    assert (response.status_code, response.json()["error"]["code"]) == (415, "REQ_005")
    assert_documented(response, "POST", "/api/v1/auth/login/")
    raw = openapi_schema().raw_schema
    with_body = [op for ops in raw["paths"].values() for op in ops.values() if isinstance(op, dict) and "requestBody" in op]
    assert with_body and {"415" in op["responses"] for op in with_body} == {True}


@pytest.mark.parametrize("url", ["/api/v1/specializations/", "/api/v1/doctors/", "/api/v1/reviews/categories/"])
def test_a_public_operation_refuses_a_bad_bearer_token_with_a_documented_401(url):
    # A long fuzzing run found public lists answering an expired token with an undocumented 401.
    response = APIClient().get(url, HTTP_AUTHORIZATION="Bearer not-a-token")

    assert (response.status_code, response.json()["error"]["code"]) == (401, "AUTH_004")
    assert_documented(response, "GET", url)


def test_a_page_past_the_end_is_a_documented_404():
    response = APIClient().get("/api/v1/doctors/", {"page": 99})

    assert (response.status_code, response.json()["error"]["code"]) == (404, "REQ_004")
    assert_documented(response, "GET", "/api/v1/doctors/")
