"""What API fuzzing (medimeet/core/tests/test_api_fuzz.py) found in the doctors API: answers
the OpenAPI schema did not document. Each answer here is checked against the schema."""

from __future__ import annotations

import pytest
from rest_framework.test import APIClient

from accounts.tests.factories import staff_member
from medimeet.core import roles
from medimeet.core.tests.openapi import assert_documented

from .factories import DoctorProfileFactory

pytestmark = pytest.mark.django_db


def as_user(user) -> APIClient:
    client = APIClient()
    client.force_authenticate(user)
    return client


def test_doctor_search_answers_a_documented_page_with_a_numeric_rating():
    doctor = DoctorProfileFactory()

    page = APIClient().get("/api/v1/doctors/")
    profile = APIClient().get(f"/api/v1/doctors/{doctor.slug}/")

    assert_documented(page, "GET", "/api/v1/doctors/")
    assert_documented(profile, "GET", f"/api/v1/doctors/{doctor.slug}/")
    assert page.json()["count"] == 1 and page.json()["results"][0]["rating"] == {"average": 0.0, "count": 0}
    assert profile.json()["rating"] == {"average": 0.0, "count": 0}


def test_staff_doctor_queue_is_a_documented_page_of_staff_cards():
    DoctorProfileFactory(verification_status="submitted")

    response = as_user(staff_member(roles.VERIFICATION)).get("/api/v1/admin/doctors/")

    assert_documented(response, "GET", "/api/v1/admin/doctors/")
    assert response.json()["results"][0]["verification_status"] == "submitted"


def test_refused_transition_and_invitation_are_documented_409s():
    doctor = DoctorProfileFactory()  # approved, with a password set
    staff = as_user(staff_member(roles.VERIFICATION))
    transition = f"/api/v1/admin/doctors/{doctor.public_id}/transition/"
    invitation = f"/api/v1/admin/doctors/{doctor.public_id}/invitation/"

    refused = staff.post(transition, {"to_status": "rejected", "reason": "Too late"}, format="json")
    invited = staff.post(invitation)

    assert (refused.status_code, refused.json()["error"]["code"]) == (409, "DOC_005")
    assert (invited.status_code, invited.json()["error"]["code"]) == (409, "DOC_008")
    assert_documented(refused, "POST", transition)
    assert_documented(invited, "POST", invitation)


def test_resubmitting_an_approved_application_is_a_documented_409():
    doctor = DoctorProfileFactory()

    response = as_user(doctor.user).post("/api/v1/doctors/me/resubmit/")

    assert (response.status_code, response.json()["error"]["code"]) == (409, "DOC_005")
    assert_documented(response, "POST", "/api/v1/doctors/me/resubmit/")
    doctor.refresh_from_db()
    assert doctor.verification_status == "approved"
