"""Record pages: the patient's page (timeline, adding entries, upload, grants, access log) and
the doctor's view from the appointment, with the same access decision as the API."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from medimeet.core.models import AuditEvent
from records import services
from records.models import AccessGrant, Document, RecordEntry

from . import samples
from .conftest import NOW

pytestmark = pytest.mark.django_db


def test_the_patient_adds_an_entry_and_sees_it_on_the_timeline(client, cast):
    client.force_login(cast["patient"])

    answer = client.post("/records/", {"form": "entry:lab_result", "lab_result-name": "HbA1c", "lab_result-value": "6.1", "lab_result-unit": "%", "lab_result-reference_range": "4.0-5.6"}, follow=True)

    assert answer.status_code == 200
    page = answer.content.decode()
    assert "HbA1c: 6.1 %" in page and "Reference range 4.0-5.6" in page
    assert RecordEntry.objects.get().created_by == cast["patient"]


def test_an_invalid_entry_shows_the_error_next_to_the_field(client, cast):
    client.force_login(cast["patient"])

    answer = client.post("/records/", {"form": "entry:allergy", "allergy-substance": ""})

    assert answer.status_code == 400
    assert "This field is required." in answer.content.decode()
    assert RecordEntry.objects.count() == 0


def test_a_refused_upload_shows_why_and_stores_nothing(client, cast):
    client.force_login(cast["patient"])

    answer = client.post("/records/", {"form": "document", "title": "Invoice", "file": SimpleUploadedFile("invoice.pdf", samples.WINDOWS_EXE)})

    assert answer.status_code == 400
    assert "The file is a Windows executable, not a document." in answer.content.decode()
    assert Document.objects.count() == 0


def test_the_patient_grants_and_revokes_access_on_the_page(client, cast):
    client.force_login(cast["patient"])

    client.post("/records/", {"form": "grant", "doctor": str(cast["doctor"].public_id), "categories": ["documents"], "days": "1"})
    grant = AccessGrant.objects.get()
    assert (grant.categories, grant.expires_at) == (["documents"], NOW + timedelta(days=1))
    client.post(f"/records/grants/{grant.public_id}/revoke/")

    grant.refresh_from_db()
    assert grant.revoked_at == NOW


def test_the_doctor_opens_the_record_from_the_appointment_page(client, cast):
    services.entry_create(by=cast["patient"], patient=cast["patient"], category="allergy", payload={"substance": "Penicillin"})
    client.force_login(cast["doctor"])

    appointment_page = client.get(f"/appointments/{cast['appointment'].public_id}/").content.decode()
    record_page = client.get(f"/records/patients/{cast['patient'].public_id}/")

    assert f"/records/patients/{cast['patient'].public_id}/" in appointment_page
    assert record_page.status_code == 200
    assert "Penicillin" in record_page.content.decode()
    assert AuditEvent.objects.filter(action="record.read", actor=cast["doctor"], metadata__basis="relationship").count() == 1


def test_a_doctor_without_access_is_refused_and_offered_break_glass(client, cast):
    services.entry_create(by=cast["patient"], patient=cast["patient"], category="allergy", payload={"substance": "Penicillin"})
    client.force_login(cast["other_doctor"])

    answer = client.get(f"/records/patients/{cast['patient'].public_id}/")

    assert answer.status_code == 403
    page = answer.content.decode()
    assert "No access to this record" in page and "Penicillin" not in page


@pytest.mark.parametrize("who", ["other_patient", "staff"])
def test_others_get_not_found(client, cast, who):
    from allauth.mfa.models import Authenticator

    if who == "staff":  # staff pages need two-factor authentication first
        Authenticator.objects.create(user=cast["staff"], type=Authenticator.Type.TOTP, data={"secret": "unused"})
    client.force_login(cast[who])

    assert client.get(f"/records/patients/{cast['patient'].public_id}/").status_code == 404


def test_download_from_the_page_goes_through_a_signed_link(client, cast):
    data = samples.pdf("Lipids")
    document = services.document_upload(by=cast["patient"], patient=cast["patient"], file=SimpleUploadedFile("a.pdf", data), size=len(data), title="Lipids")
    client.force_login(cast["patient"])

    redirect = client.get(f"/records/documents/{document.public_id}/download/")

    assert redirect.status_code == 302 and redirect["Location"].startswith("/records/files/")
    assert b"".join(client.get(redirect["Location"]).streaming_content) == data


def test_the_history_page_compares_each_version_with_the_previous(client, cast):
    patient = cast["patient"]
    entry = services.entry_create(by=patient, patient=patient, category="allergy", payload={"substance": "Penicillin", "severity": "mild"})
    services.entry_update(by=cast["doctor"], entry=entry, payload={"substance": "Penicillin", "severity": "severe"})
    client.force_login(patient)

    page = client.get(f"/records/entries/{entry.public_id}/history/").content.decode()

    assert "Version 2 · updated" in page and "Priya Raman (doctor)" in page
    assert '<td class="mm-version-before">mild</td><td class="mm-version-after">severe</td>' in page.replace("\n", "")
    client.force_login(cast["other_patient"])
    assert client.get(f"/records/entries/{entry.public_id}/history/").status_code == 404


def test_the_patient_asks_for_erasure_from_the_page(client, cast):
    from records.models import ErasureRequest

    client.force_login(cast["patient"])

    client.post("/records/erasure/", {"reason": "Leaving the service"})

    assert list(ErasureRequest.objects.values_list("patient", "reason", "status")) == [(cast["patient"].pk, "Leaving the service", "pending")]


def test_the_doctor_issues_and_then_replaces_a_prescription_from_the_page(client, cast):
    from records.models import Prescription

    client.force_login(cast["doctor"])
    url = f"/records/appointments/{cast['appointment'].public_id}/prescribe/"
    base = {"medicine-TOTAL_FORMS": "3", "medicine-INITIAL_FORMS": "0", "medicine-0-name": "Amoxicillin", "medicine-0-dose": "500 mg", "medicine-0-route": "oral", "medicine-0-frequency": "three times a day", "medicine-0-duration": "5 days", "advice": "Fluids"}

    client.post(url, base)
    client.post(url, {**base, "medicine-0-dose": "250 mg", "supersede": "on"})

    assert list(Prescription.objects.order_by("issued_at", "pk").values_list("status", flat=True)) == ["superseded", "issued"]
    client.force_login(cast["other_doctor"])
    assert client.get(url).status_code == 404
