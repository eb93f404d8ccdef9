"""Doctor portal and staff API: permissions over the usual cast, profile and service rules."""

from __future__ import annotations

import pytest
from rest_framework.test import APIClient

from accounts.tests.factories import UserFactory, staff_member
from doctors.models import DoctorDocument, DoctorProfile, DoctorService
from medimeet.core import roles
from medimeet.core.models import AuditEvent

from .factories import DoctorProfileFactory, LanguageFactory, ServiceFactory, SpecializationFactory, pdf_upload

pytestmark = pytest.mark.django_db


def as_user(user) -> APIClient:
    client = APIClient()
    if user is not None:
        client.force_authenticate(user)
    return client


@pytest.fixture
def cast():
    doctor = DoctorProfileFactory()
    other = DoctorProfileFactory()
    return {
        "doctor": doctor,
        "other_doctor": other,
        "patient": UserFactory(),
        "staff": staff_member(roles.VERIFICATION),
    }


def test_doctor_reads_and_edits_only_their_own_profile(cast):
    spec = SpecializationFactory(slug="neuro")
    LanguageFactory(code="en", name="English")
    LanguageFactory(code="hi", name="Hindi")
    api = as_user(cast["doctor"].user)

    response = api.patch(
        "/api/v1/doctors/me/",
        {
            "bio": "Neurologist with 10 years of stroke care.",
            "languages": ["en", "hi"],
            "secondary_specializations": ["neuro"],
            "education": [{"degree": "MBBS", "institution": "AIIMS", "year": 2008}],
            "positions": [{"title": "Consultant", "organisation": "Apollo", "start_year": 2015}],
            "first_name": "Kavya",
        },
        format="json",
    )

    assert response.status_code == 200, response.content
    body = response.json()
    assert body["bio"].startswith("Neurologist")
    assert sorted(body["languages"]) == ["en", "hi"]
    assert body["secondary_specializations"] == [{"slug": "neuro", "name": spec.name}]
    assert body["education"] == [{"degree": "MBBS", "institution": "AIIMS", "year": 2008}]
    assert body["first_name"] == "Kavya"
    other = DoctorProfile.objects.get(pk=cast["other_doctor"].pk)
    assert other.bio == ""


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ({"years_experience": 90}, "years_experience"),
        ({"languages": ["xx"]}, "languages"),
        ({"education": [{"degree": "MD"}]}, "education.0.institution"),
        ({"positions": [{"title": "A", "organisation": "B", "start_year": 2010, "end_year": 2001}]}, "positions.0.end_year"),
        ({"offers_video": False}, "offers_video"),
        ({"verification_status": "approved"}, "verification_status"),
        ({"rating_average": "5.0"}, "rating_average"),
        ({"licence_expiry": "2000-01-01"}, "licence_expiry"),
    ],
)
def test_profile_update_rejects_bad_input_and_changes_nothing(cast, payload, field):
    doctor = cast["doctor"]
    doctor.refresh_from_db()
    before = (doctor.verification_status, doctor.years_experience, doctor.offers_video, str(doctor.rating_average))

    response = as_user(doctor.user).patch("/api/v1/doctors/me/", payload, format="json")

    assert response.status_code == 400, response.content
    assert field in response.json()["error"]["fields"]
    doctor.refresh_from_db()
    assert (doctor.verification_status, doctor.years_experience, doctor.offers_video, str(doctor.rating_average)) == before


@pytest.mark.parametrize("who", ["patient", "staff", None])
def test_doctor_portal_endpoints_are_for_doctors_only(cast, who):
    api = as_user(cast[who] if who else None)

    responses = [
        api.get("/api/v1/doctors/me/"),
        api.patch("/api/v1/doctors/me/", {"bio": "hijack"}, format="json"),
        api.post("/api/v1/doctors/me/services/", {"name": "x", "price_minor": 100, "currency": "USD", "duration_minutes": 10}, format="json"),
        api.post("/api/v1/doctors/me/resubmit/"),
    ]

    expected = 401 if who is None else 403
    assert [r.status_code for r in responses] == [expected] * 4
    assert DoctorService.objects.count() == 0


def test_doctor_manages_services_and_the_fee_summary_follows(cast):
    api = as_user(cast["doctor"].user)

    created = api.post(
        "/api/v1/doctors/me/services/",
        {"name": "Video consultation", "price_minor": 60000, "currency": "INR", "duration_minutes": 20, "mode": "video"},
        format="json",
    )
    cheaper = api.post("/api/v1/doctors/me/services/", {"name": "Follow-up", "price_minor": 30000, "currency": "INR", "duration_minutes": 10}, format="json")
    api.delete(f"/api/v1/doctors/me/services/{cheaper.json()['id']}/")
    updated = api.patch(f"/api/v1/doctors/me/services/{created.json()['id']}/", {"price_minor": 55000}, format="json")

    assert created.status_code == 201 and cheaper.status_code == 201
    assert updated.status_code == 200 and updated.json()["price"]["display"] == "₹550.00"
    doctor = DoctorProfile.objects.get(pk=cast["doctor"].pk)
    assert (doctor.min_fee_minor, doctor.fee_currency) == (55000, "INR")
    assert DoctorService.objects.get(public_id=cheaper.json()["id"]).is_active is False
    assert AuditEvent.objects.filter(action="doctor.service_created").count() == 2


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ({"price_minor": 0}, "price_minor"),
        ({"price_minor": -5}, "price_minor"),
        ({"currency": "XYZ"}, "currency"),
        ({"duration_minutes": 7}, "duration_minutes"),
        ({"duration_minutes": 300}, "duration_minutes"),
        ({"duration_minutes": 0}, "duration_minutes"),
        ({"mode": "in_person"}, "mode"),  # the profile offers video only
        ({"name": ""}, "name"),
    ],
)
def test_service_validation(cast, payload, field):
    base = {"name": "Consultation", "price_minor": 1000, "currency": "USD", "duration_minutes": 20, "mode": "video"}

    response = as_user(cast["doctor"].user).post("/api/v1/doctors/me/services/", {**base, **payload}, format="json")

    assert response.status_code == 400
    assert response.json()["error"]["code"] in {"REQ_001", "DOC_007"}
    assert field in response.json()["error"]["fields"]
    assert DoctorService.objects.count() == 0


def test_doctor_cannot_touch_another_doctors_service(cast):
    service = ServiceFactory(doctor=cast["other_doctor"], price_minor=1000, currency="USD")
    api = as_user(cast["doctor"].user)

    patched = api.patch(f"/api/v1/doctors/me/services/{service.public_id}/", {"price_minor": 1}, format="json")
    deleted = api.delete(f"/api/v1/doctors/me/services/{service.public_id}/")

    assert (patched.status_code, deleted.status_code) == (404, 404)
    service.refresh_from_db()
    assert (service.price_minor, service.is_active) == (1000, True)


def test_doctor_uploads_a_qualification_document(cast, settings):
    api = as_user(cast["doctor"].user)

    ok = api.post("/api/v1/doctors/me/documents/", {"kind": "qualification", "document": pdf_upload("md.pdf")}, format="multipart")
    bad = api.post("/api/v1/doctors/me/documents/", {"kind": "qualification", "document": pdf_upload("x.pdf", b"<html>nope</html>")}, format="multipart")

    assert ok.status_code == 201 and ok.json()["content_type"] == "application/pdf"
    assert bad.status_code == 400 and bad.json()["error"]["code"] == "DOC_004"
    assert DoctorDocument.objects.filter(doctor=cast["doctor"], kind="qualification").count() == 1


@pytest.mark.parametrize("who", ["patient", "doctor", None])
def test_staff_doctor_endpoints_refuse_everyone_else(cast, who):
    target = cast["other_doctor"]
    target.verification_status = "under_review"
    target.save()
    actor = cast[who].user if who == "doctor" else (cast[who] if who else None)
    api = as_user(actor)

    responses = [
        api.get("/api/v1/admin/doctors/"),
        api.get(f"/api/v1/admin/doctors/{target.public_id}/"),
        api.post(f"/api/v1/admin/doctors/{target.public_id}/transition/", {"to_status": "approved"}, format="json"),
        api.post("/api/v1/admin/doctors/", {"email": "x@example.com"}, format="json"),
    ]

    expected = 401 if who is None else 403
    assert [r.status_code for r in responses] == [expected] * 4
    target.refresh_from_db()
    assert target.verification_status == "under_review"
    assert not AuditEvent.objects.filter(action__startswith="doctor.verification").exists()


def test_staff_queue_filters_by_status_oldest_first(cast):
    DoctorProfileFactory(verification_status="submitted", user__last_name="First")
    DoctorProfileFactory(verification_status="submitted", user__last_name="Second")

    response = as_user(cast["staff"]).get("/api/v1/admin/doctors/", {"status": "submitted"})

    assert response.status_code == 200
    assert [row["name"].split()[-1] for row in response.json()["results"]] == ["First", "Second"]
    assert {row["verification_status"] for row in response.json()["results"]} == {"submitted"}


def test_unknown_doctor_is_doc_001(cast):
    response = as_user(cast["staff"]).get("/api/v1/admin/doctors/00000000-0000-0000-0000-000000000000/")

    assert response.status_code == 404
    assert response.json()["error"]["code"] == "DOC_001"
