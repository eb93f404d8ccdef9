"""Doctor onboarding and credential verification: applications, invitations, transitions, expiry."""

from __future__ import annotations

import re
from datetime import timedelta
from pathlib import Path

import pytest
from django.core import mail
from django.core.files.uploadedfile import SimpleUploadedFile
from django.utils import timezone
from rest_framework.test import APIClient

from accounts.models import User
from accounts.tests.factories import StaffFactory, UserFactory, staff_member
from doctors import services
from doctors.models import DoctorDocument, DoctorProfile, VerificationEvent
from medimeet.core import roles
from medimeet.core.models import AuditEvent

from .factories import DoctorProfileFactory, EducationFactory, SpecializationFactory, pdf_upload

pytestmark = pytest.mark.django_db
STRONG = "Vivid-Harbor-2026!"


def application(**overrides) -> dict:
    spec = overrides.pop("specialization", None) or SpecializationFactory(name="Cardiology", slug="cardiology")
    data = {
        "email": "new.doctor@example.com",
        "password": STRONG,
        "first_name": "Meera",
        "last_name": "Iyer",
        "licence_number": "7123456",
        "licence_authority": "General Medical Council",
        "licence_country": "GB",
        "licence_expiry": (timezone.localdate() + timedelta(days=400)).isoformat(),
        "primary_specialization": spec.slug,
        "licence_document": pdf_upload(),
    }
    data.update(overrides)
    return data


def staff_client(staff=None) -> APIClient:
    client = APIClient()
    client.force_authenticate(staff or staff_member(roles.VERIFICATION))
    return client


def media_files(settings) -> list[Path]:
    root = Path(settings.MEDIA_ROOT) / "doctor-documents"
    return [p for p in root.rglob("*") if p.is_file()] if root.exists() else []


def test_doctor_applies_by_api_with_a_licence_pdf(settings, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        response = APIClient().post("/api/v1/doctors/applications/", application(), format="multipart")

    assert response.status_code == 201, response.content
    body = response.json()
    assert body["verification_status"] == "submitted"
    assert body["listed"] is False
    assert [d["kind"] for d in body["documents"]] == ["licence"]
    doctor = DoctorProfile.objects.get(user__email="new.doctor@example.com")
    assert doctor.user.role == User.Role.DOCTOR
    assert doctor.licence_number == "7123456"
    document = doctor.documents.get()
    assert document.content_type == "application/pdf"
    assert document.file.name.endswith(".pdf")
    assert list(VerificationEvent.objects.filter(doctor=doctor).values_list("to_status", flat=True)) == ["submitted"]
    subjects = sorted(m.subject for m in mail.outbox)
    assert len(subjects) == 2
    assert any("received your application" in s for s in subjects)
    assert any("Confirm" in s or "confirm" in s or "Verify" in s for s in subjects)


@pytest.mark.parametrize(
    ("name", "content"),
    [
        ("licence.pdf", b"MZ\x90\x00\x03 a renamed windows executable" + b"\x00" * 100),
        ("licence.png", b"just text pretending to be an image"),
        ("licence.pdf", b"%PDF-1.4\n1 0 obj<</S/JavaScript/JS(app.alert(1))>>endobj\n%%EOF\n"),
    ],
)
def test_application_with_a_bad_document_is_refused_and_nothing_is_stored(settings, name, content):
    response = APIClient().post("/api/v1/doctors/applications/", application(licence_document=SimpleUploadedFile(name, content)), format="multipart")

    assert response.status_code == 400
    assert response.json()["error"]["code"] == "DOC_004"
    assert "licence_document" in response.json()["error"]["fields"]
    assert not User.objects.filter(email="new.doctor@example.com").exists()
    assert DoctorDocument.objects.count() == 0
    assert media_files(settings) == []
    assert mail.outbox == []


def test_oversized_document_is_refused(settings):
    settings.DOCTOR_DOCUMENT_MAX_BYTES = 1000
    big = pdf_upload(content=b"%PDF-1.4\n" + b"0" * 2000 + b"\n%%EOF\n")

    response = APIClient().post("/api/v1/doctors/applications/", application(licence_document=big), format="multipart")

    assert response.status_code == 400
    assert response.json()["error"]["code"] == "DOC_004"
    assert DoctorProfile.objects.count() == 0


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"licence_number": "12AB"}, "licence_number"),  # GB needs 7 digits
        ({"licence_country": "India"}, "licence_country"),
        ({"licence_expiry": "2001-01-01"}, "licence_expiry"),
        ({"licence_authority": " "}, "licence_authority"),
    ],
)
def test_invalid_licence_details_are_doc_003_with_field_messages(overrides, field):
    response = APIClient().post("/api/v1/doctors/applications/", application(**overrides), format="multipart")

    assert response.status_code == 400
    assert response.json()["error"]["code"] in {"DOC_003", "REQ_001"}
    assert field in response.json()["error"]["fields"]
    assert DoctorProfile.objects.count() == 0


def test_licence_formats_per_country():
    expiry = timezone.localdate() + timedelta(days=30)

    assert services.licence_clean(number="712 3456", authority="GMC", country="gb", expiry=expiry).number == "7123456"
    assert services.licence_clean(number="MMC-2012/12345", authority="MMC", country="IN", expiry=expiry).country == "IN"
    assert services.licence_clean(number="MED0001234567", authority="AHPRA", country="AU", expiry=expiry).number == "MED0001234567"
    assert services.licence_clean(number="RPPS-10001", authority="CNOM", country="FR", expiry=expiry).number == "RPPS-10001"
    for number, country in [("123456", "GB"), ("MED12", "AU"), ("!!", "FR")]:
        with pytest.raises(Exception) as excinfo:
            services.licence_clean(number=number, authority="x", country=country, expiry=expiry)
        assert excinfo.value.code == "DOC_003"


def test_duplicate_licence_number_is_refused():
    DoctorProfileFactory(licence_country="GB", licence_number="7123456")

    response = APIClient().post("/api/v1/doctors/applications/", application(), format="multipart")

    assert response.status_code == 400
    assert response.json()["error"]["fields"]["licence_number"] == ["This licence number is already registered."]


def test_duplicate_email_is_user_002():
    UserFactory(email="new.doctor@example.com")

    response = APIClient().post("/api/v1/doctors/applications/", application(), format="multipart")

    assert response.status_code == 409
    assert response.json()["error"]["code"] == "USER_002"


def test_full_verification_workflow_with_audit_and_emails(django_capture_on_commit_callbacks):
    staff = staff_member(roles.VERIFICATION)
    doctor = DoctorProfileFactory(verification_status="submitted")
    api = staff_client(staff)
    url = f"/api/v1/admin/doctors/{doctor.public_id}/transition/"

    jump = api.post(url, {"to_status": "approved"}, format="json")
    review = api.post(url, {"to_status": "under_review"}, format="json")
    no_reason = api.post(url, {"to_status": "changes_requested"}, format="json")
    with django_capture_on_commit_callbacks(execute=True):
        changes = api.post(url, {"to_status": "changes_requested", "reason": "Upload your MD certificate."}, format="json")
    services.doctor_resubmit(doctor=doctor)
    api.post(url, {"to_status": "under_review"}, format="json")
    with django_capture_on_commit_callbacks(execute=True):
        approved = api.post(url, {"to_status": "approved"}, format="json")

    assert jump.status_code == 409 and jump.json()["error"]["code"] == "DOC_005"
    assert review.status_code == 200 and review.json()["verification_status"] == "under_review"
    assert no_reason.status_code == 400 and "reason" in no_reason.json()["error"]["fields"]
    assert changes.json()["status_reason"] == "Upload your MD certificate."
    assert approved.status_code == 200 and approved.json()["listed"] is True
    history = list(VerificationEvent.objects.filter(doctor=doctor).order_by("created_at", "pk").values_list("to_status", flat=True))
    assert history == ["under_review", "changes_requested", "submitted", "under_review", "approved"]
    audit = AuditEvent.objects.filter(target_type="doctors.doctorprofile", target_id=str(doctor.pk), actor=staff)
    assert sorted(audit.values_list("action", flat=True)) == sorted(
        ["doctor.verification.under_review", "doctor.verification.changes_requested", "doctor.verification.under_review", "doctor.verification.approved"]
    )
    assert [m.subject for m in mail.outbox] == [
        "MediMeet: changes needed on your application",
        "MediMeet: your application is approved",
    ]
    assert "Upload your MD certificate." in mail.outbox[0].body


def test_rejection_needs_a_reason_and_keeps_documents_and_history():
    doctor = DoctorProfileFactory(verification_status="under_review")

    services.doctor_transition(doctor=doctor, to_status="rejected", by=StaffFactory(), reason="Licence could not be verified with the council.")

    doctor.refresh_from_db()
    assert doctor.verification_status == "rejected"
    assert doctor.documents.count() == 1
    assert VerificationEvent.objects.filter(doctor=doctor, to_status="rejected", reason__startswith="Licence").exists()
    assert not doctor.is_listed


def test_approval_checks_required_qualifications():
    spec = SpecializationFactory(name="Cardiology X", required_qualifications=["MBBS", "MD"])
    doctor = DoctorProfileFactory(verification_status="under_review", primary_specialization=spec)
    EducationFactory(doctor=doctor, degree="MBBS")

    with pytest.raises(Exception) as excinfo:
        services.doctor_transition(doctor=doctor, to_status="approved", by=StaffFactory())
    EducationFactory(doctor=doctor, degree="md")
    services.doctor_transition(doctor=doctor, to_status="approved", by=StaffFactory())

    assert excinfo.value.code == "DOC_006"
    assert excinfo.value.fields["verification"] == ["Cardiology X requires: MD."]
    doctor.refresh_from_db()
    assert doctor.verification_status == "approved"


def test_approval_needs_a_licence_document():
    doctor = DoctorProfileFactory(verification_status="under_review", licence_document=False)

    with pytest.raises(Exception) as excinfo:
        services.doctor_transition(doctor=doctor, to_status="approved", by=StaffFactory())

    assert excinfo.value.fields["verification"] == ["No licence document has been uploaded."]


def test_staff_invites_a_doctor_who_sets_a_password_once(client, django_capture_on_commit_callbacks):
    spec = SpecializationFactory(slug="gp")
    payload = {
        "email": "invited@example.com", "first_name": "Arjun", "last_name": "Das", "licence_number": "45123",
        "licence_authority": "Karnataka Medical Council", "licence_country": "IN",
        "licence_expiry": (timezone.localdate() + timedelta(days=500)).isoformat(), "primary_specialization": "gp",
    }
    with django_capture_on_commit_callbacks(execute=True):
        response = staff_client().post("/api/v1/admin/doctors/", payload, format="json")
    link = re.search(r"http://\S+/doctors/invitation/(\S+)/", mail.outbox[0].body)

    page = client.get(f"/doctors/invitation/{link.group(1)}/")
    accepted = client.post(f"/doctors/invitation/{link.group(1)}/", {"password1": STRONG, "password2": STRONG})
    reused = client.get(f"/doctors/invitation/{link.group(1)}/")

    assert response.status_code == 201
    assert response.json()["verification_status"] == "under_review"
    assert spec.primary_doctors.count() == 1
    assert page.status_code == 200
    assert accepted.status_code == 302
    user = User.objects.get(email="invited@example.com")
    assert user.check_password(STRONG)
    assert reused.status_code == 400
    assert APIClient().post("/api/v1/auth/login/", {"email": "invited@example.com", "password": STRONG}, format="json").status_code == 200


def test_forged_or_expired_invitation_is_refused(client, settings):
    doctor = DoctorProfileFactory()
    token = services.invitation_token_make(doctor.user)

    import time_machine

    with time_machine.travel(timezone.now() + timedelta(days=settings.DOCTOR_INVITATION_DAYS + 1)):
        expired = client.get(f"/doctors/invitation/{token}/")
    forged = client.get(f"/doctors/invitation/{token[:-3]}abc/")

    assert expired.status_code == 400
    assert forged.status_code == 400


def test_licence_expiry_task_flags_once_and_delists(django_capture_on_commit_callbacks):
    from doctors.tasks import flag_expired_licences

    valid = DoctorProfileFactory()
    expired = DoctorProfileFactory()
    DoctorProfile.objects.filter(pk=expired.pk).update(licence_expiry=timezone.localdate() - timedelta(days=1))

    with django_capture_on_commit_callbacks(execute=True):
        first = flag_expired_licences.delay().get()
        second = flag_expired_licences.delay().get()

    assert (first, second) == (1, 0)
    expired.refresh_from_db()
    assert expired.licence_expired_flagged_at is not None
    assert set(DoctorProfile.objects.listed()) == {valid}
    assert [m.subject for m in mail.outbox] == ["MediMeet: your licence has expired"]


def test_changing_the_licence_of_an_approved_doctor_sends_it_back_to_review():
    doctor = DoctorProfileFactory(licence_country="GB", licence_number="7000001")
    api = APIClient()
    api.force_authenticate(doctor.user)

    response = api.patch("/api/v1/doctors/me/", {"licence_number": "7000002"}, format="json")

    assert response.status_code == 200
    assert response.json()["verification_status"] == "under_review"
    assert response.json()["listed"] is False


def test_documents_are_served_only_to_their_doctor_and_staff_with_audit(client):
    doctor = DoctorProfileFactory()
    other_doctor = DoctorProfileFactory()
    document = doctor.documents.get()
    url = f"/portal/documents/{document.pk}/"
    staff = StaffFactory(is_superuser=True)
    from allauth.mfa.models import Authenticator

    Authenticator.objects.create(user=staff, type=Authenticator.Type.TOTP, data={"secret": "x"})

    anonymous = client.get(url)
    client.force_login(other_doctor.user)
    other = client.get(url)
    client.force_login(UserFactory())
    patient = client.get(url)
    client.force_login(doctor.user)
    own = client.get(url)
    client.force_login(staff)
    by_staff = client.get(url)

    assert anonymous.status_code == 302
    assert (other.status_code, patient.status_code) == (404, 404)
    assert own.status_code == 200 and own["Content-Type"] == "application/pdf"
    assert b"".join(own.streaming_content).startswith(b"%PDF-")
    assert by_staff.status_code == 200
    assert AuditEvent.objects.filter(action="doctor.document_viewed", actor=staff, target_id=str(document.pk)).count() == 1


def test_doctor_updates_the_licence_in_the_portal_and_goes_back_to_review(client):
    doctor = DoctorProfileFactory(licence_country="GB", licence_number="7000001")
    client.force_login(doctor.user)
    expiry = (timezone.localdate() + timedelta(days=900)).isoformat()

    bad = client.post("/portal/documents/", {"form": "licence", "licence_number": "12", "licence_authority": "GMC", "licence_country": "GB", "licence_expiry": expiry})
    good = client.post("/portal/documents/", {"form": "licence", "licence_number": "7000009", "licence_authority": "GMC", "licence_country": "GB", "licence_expiry": expiry})

    assert bad.status_code == 200
    assert "licence_number" in bad.context["licence_form"].errors
    assert good.status_code == 302
    doctor.refresh_from_db()
    assert (doctor.licence_number, doctor.verification_status) == ("7000009", "under_review")


def test_doctor_lands_on_the_portal_after_signing_in(client):
    from accounts.tests.factories import PASSWORD

    doctor = DoctorProfileFactory()

    response = client.post("/accounts/login/", {"login": doctor.user.email, "password": PASSWORD})

    assert response["Location"] == "/portal/"
