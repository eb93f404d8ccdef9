"""Every API endpoint answers bad input with a 4xx and the error envelope, never a 500."""

from __future__ import annotations

import re
import uuid

import pytest
from django.urls import URLPattern, URLResolver, get_resolver
from rest_framework.test import APIClient

pytestmark = pytest.mark.django_db

GARBAGE_BODIES = [
    {},
    [],
    "just a string",
    {"email": ["a", "b"], "password": {"nested": True}},
    {"email": "x" * 10_000 + "@example.com", "password": "p" * 10_000},
    {"key": None, "refresh": 12345, "mfa_token": [], "code": {"x": 1}},
    {"first_name": ["list"], "timezone": 5, "date_of_birth": "31/31/2031", "include_current": "maybe"},
    {"reason": "", "picture": "not-a-file"},
]


def api_routes(resolver=None, prefix=""):
    for entry in (resolver or get_resolver()).url_patterns:
        route = prefix + str(entry.pattern)
        if isinstance(entry, URLResolver):
            yield from api_routes(entry, route)
        elif isinstance(entry, URLPattern) and route.startswith("api/v1/") and "schema" not in route:
            yield "/" + re.sub(r"<(?:\w+:)?\w+>", str(uuid.uuid4()), route)


def assert_clean_error(response):
    assert response.status_code < 500, (response.request["PATH_INFO"], response.status_code, response.content[:300])
    if response.status_code >= 400:
        error = response.json()["error"]
        assert set(error) >= {"code", "message", "fields"}
        assert isinstance(error["fields"], dict)


@pytest.fixture
def signed_in_clients():
    from accounts.tests.factories import StaffFactory, UserFactory
    from doctors.tests.factories import DoctorProfileFactory

    patient, doctor, staff = APIClient(), APIClient(), APIClient()
    patient.force_authenticate(UserFactory())
    doctor.force_authenticate(DoctorProfileFactory().user)
    staff.force_authenticate(StaffFactory())
    return {"anonymous": APIClient(), "patient": patient, "doctor": doctor, "staff": staff}


@pytest.mark.parametrize("who", ["anonymous", "patient", "doctor", "staff"])
def test_garbage_on_every_endpoint_gets_a_clean_4xx(signed_in_clients, who):
    client = signed_in_clients[who]
    routes = sorted(set(api_routes()))
    assert len(routes) >= 15

    for path in routes:
        for body in GARBAGE_BODIES:
            for method in ("post", "patch", "put", "delete"):
                assert_clean_error(getattr(client, method)(path, body, format="json"))
        assert_clean_error(client.post(path, b"\xff\xfe{not json", content_type="application/json"))
        assert_clean_error(client.post(path, "a=1&b=2", content_type="text/plain"))
        assert_clean_error(client.get(path, {"page": "-1", "page_size": "abc"}))
