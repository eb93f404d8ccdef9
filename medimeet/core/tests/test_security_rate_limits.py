"""Rate limits: beyond its limit each sensitive endpoint answers 429, with `Retry-After` (and the
error envelope in the API). Limits are lowered per test with the settings the environment sets
(THROTTLE_*), so each test sends a handful of requests.

Already covered elsewhere: API login lockout and throttle (accounts/tests/test_api.py), the web
sign-in's allauth limits (accounts/tests/test_pages.py), SMS code sending and confirming
(NTF_002/NTF_004, medimeet/core/tests/test_sms.py).
"""

from __future__ import annotations

import copy
from datetime import timedelta

import pytest
from django.conf import settings
from django.test import Client
from django.urls import reverse
from django.utils import timezone
from rest_framework.test import APIClient

from accounts.tests.factories import UserFactory
from appointments.tests.test_booking import open_all_week
from doctors.tests.factories import DoctorProfileFactory, ServiceFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def rates(settings):
    """Set some scoped rates for the test (DRF reloads its settings when they change)."""

    def set_rates(**rates):
        rest = copy.deepcopy(settings.REST_FRAMEWORK)
        rest["DEFAULT_THROTTLE_RATES"].update(rates)
        settings.REST_FRAMEWORK = rest

    return set_rates


def assert_api_429(response):
    assert response.status_code == 429, response.content
    assert set(response.json()["error"]) >= {"code", "message", "fields"}
    assert int(response["Retry-After"]) > 0


@pytest.mark.parametrize(
    ("scope", "path", "body"),
    [
        ("login", "/api/v1/auth/login/", {"email": "nobody@example.com", "password": "wrong"}),
        ("register", "/api/v1/auth/register/", {"email": "x"}),
        ("password_reset", "/api/v1/auth/password/reset/", {"email": "nobody@example.com"}),
        ("password_reset", "/api/v1/auth/password/reset/confirm/", {"key": "x-y", "password": "p"}),
    ],
)
def test_the_public_auth_endpoints_answer_429_with_the_envelope_and_retry_after(rates, scope, path, body):
    rates(**{scope: "3/min"})
    api = APIClient()

    answers = [api.post(path, body, format="json") for _ in range(4)]

    assert [a.status_code for a in answers[:3]] != [429] * 3
    assert_api_429(answers[3])


@pytest.fixture
def clinic():
    doctor = DoctorProfileFactory()
    open_all_week(doctor)
    return {"doctor": doctor, "service": ServiceFactory(doctor=doctor, duration_minutes=30, price_minor=50000)}


def test_holding_slots_through_the_api_is_limited_per_person(rates, clinic):
    rates(booking="2/min")
    api = APIClient()
    api.force_authenticate(UserFactory())
    day = (timezone.now() + timedelta(days=2)).replace(hour=9, minute=0, second=0, microsecond=0)
    body = {"service": str(clinic["service"].public_id)}

    answers = [api.post("/api/v1/appointments/", body | {"start": (day + timedelta(minutes=30 * i)).isoformat()}, format="json") for i in range(3)]

    assert [a.status_code for a in answers[:2]] == [201, 201], [a.content for a in answers]
    assert_api_429(answers[2])
    assert api.get("/api/v1/appointments/").status_code == 200  # reading is not limited by the booking rate


def test_the_booking_page_limits_posts_but_not_viewing(rates, clinic):
    rates(booking="1/min")
    client = Client()
    client.force_login(UserFactory())
    url = reverse("appointments:book", kwargs={"slug": clinic["doctor"].slug})

    client.post(url, {"service": str(clinic["service"].public_id)})
    limited = client.post(url, {"service": str(clinic["service"].public_id)})

    assert limited.status_code == 429 and int(limited["Retry-After"]) > 0
    assert "Too many requests" in limited.content.decode()
    assert client.get(url).status_code == 200


@pytest.mark.parametrize("name", ["payments:verify-receipt", "records:verify-prescription"])
def test_the_public_verification_pages_answer_429_beyond_their_limit(rates, name):
    rates(verify="3/min")
    client = Client()
    url = reverse(name, kwargs={"code": "0123456789ABCDEF"})

    answers = [client.get(url) for _ in range(4)]

    assert [a.status_code for a in answers[:3]] == [404, 404, 404]
    assert answers[3].status_code == 429 and int(answers[3]["Retry-After"]) > 0


def test_the_default_rates_are_set_for_every_scope_in_use():
    assert {"login", "register", "password_reset", "booking", "verify"} <= set(settings.REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"])
