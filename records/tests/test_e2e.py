"""Step 7 in a real browser: the patient uploads a PDF and a DICOM file, gives a doctor one
day's access to documents only, the doctor opens one, the patient sees it in the access log and
revokes the grant, and the doctor is refused. Writes docs/screenshots/step7-*.png."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone
from playwright.sync_api import Page, expect

from accounts.tests.factories import UserFactory
from appointments.tests.test_e2e import PASSWORD, shot, sign_in
from medimeet.core.models import AuditEvent
from medimeet.core.tests.journey import prescription_issue
from records import services
from records.models import AccessGrant, Document

from . import samples
from .conftest import appointment_between

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


def test_patient_shares_documents_for_a_day_then_revokes(live_server, page: Page, browser, console_errors):
    from doctors.tests.factories import DoctorProfileFactory

    patient = UserFactory(email="asha.verma@example.com", first_name="Asha", last_name="Verma", password=PASSWORD)
    doctor = DoctorProfileFactory(user__email="omar.haddad@example.com", user__first_name="Omar", user__last_name="Haddad", user__password=PASSWORD, title="Dr.", licence_number="GMC-7713042")
    # Seen two months ago: outside the relationship window, so only a grant opens the record.
    appointment_between(doctor, patient, timezone.now() - timedelta(days=60))
    for category, payload in [
        ("allergy", {"substance": "Penicillin", "reaction": "Hives", "severity": "moderate"}),
        ("medication", {"name": "Amlodipine", "dose": "5 mg", "route": "oral", "frequency": "once daily"}),
        ("lab_result", {"name": "HbA1c", "value": "6.1", "unit": "%", "reference_range": "4.0-5.6", "flag": "high"}),
    ]:
        services.entry_create(by=patient, patient=patient, category=category, payload=payload)

    # The patient uploads a PDF and a DICOM file.
    sign_in(page, live_server.url, patient.email, path="/records/")
    expect(page.get_by_role("heading", name="My medical record")).to_be_visible()
    for title, name, mime, data in [("Lipid panel, October 2026", "lipids.pdf", "application/pdf", samples.pdf("Cholesterol 5.2 mmol/L")), ("CT chest", "ct-chest.dcm", "application/dicom", samples.dicom())]:
        page.get_by_label("Title").fill(title)
        page.get_by_label("File", exact=True).set_input_files({"name": name, "mimeType": mime, "buffer": data})
        page.get_by_role("button", name="Upload").click()
        expect(page.get_by_text("Document uploaded. It is stored encrypted.")).to_be_visible()
    assert sorted(Document.objects.values_list("kind", flat=True)) == ["dicom", "pdf"]

    # One day's access to documents only.
    grants = page.locator("#grants")
    grants.get_by_label("Doctor").select_option(label="Dr. Omar Haddad")
    grants.get_by_label("Documents").check()
    grants.get_by_label("For").select_option("1")
    grants.get_by_role("button", name="Give access").click()
    expect(page.get_by_text("Dr. Omar Haddad can now see your record for 1 day.")).to_be_visible()
    grant = AccessGrant.objects.get()
    assert (grant.categories, grant.whole_record) == (["documents"], False)

    # The doctor opens one document; structured entries stay hidden.
    doctor_page = browser.new_context(viewport={"width": 1280, "height": 800}, locale="en-GB", timezone_id="Europe/London").new_page()
    sign_in(doctor_page, live_server.url, doctor.user.email, path=f"/records/patients/{patient.public_id}/")
    expect(doctor_page.get_by_role("heading", name="Medical record of Asha Verma")).to_be_visible()
    expect(doctor_page.get_by_text("CT chest", exact=True)).to_be_visible()
    expect(doctor_page.get_by_text("Penicillin")).to_have_count(0)
    shot(doctor_page, "doctor-view", step=7)
    with doctor_page.expect_download() as download:
        doctor_page.locator(".mm-record-timeline-item", has_text="Lipid panel").get_by_role("link", name="Download").click()
    assert open(download.value.path(), "rb").read().startswith(b"%PDF-")
    assert AuditEvent.objects.filter(action="record.document_downloaded", actor=doctor.user, metadata__basis="grant").count() == 1

    # The patient sees it in the access log, then revokes.
    page.reload()
    log = page.locator("#access-log")
    expect(log.get_by_text("Dr. Omar Haddad").first).to_be_visible()
    expect(log.locator("li", has_text="Dr. Omar Haddad").filter(has_text="downloaded a document")).to_be_visible()
    shot(page, "patient-record", step=7)
    grants.get_by_role("button", name="Revoke").click()
    expect(page.get_by_text("Access revoked. The doctor can no longer see your record.")).to_be_visible()

    # The doctor is refused at once.
    doctor_page.reload()
    expect(doctor_page.get_by_role("heading", name="No access to this record")).to_be_visible()
    expect(doctor_page.get_by_text("Lipid panel")).to_have_count(0)
    shot(doctor_page, "doctor-refused", step=7)
    doctor_page.context.close()
    assert console_errors == []


def test_doctor_prescribes_and_a_pharmacist_checks_it(live_server, page: Page, browser, console_errors):
    from doctors.tests.factories import DoctorProfileFactory
    from records.models import Prescription

    patient = UserFactory(email="asha.verma@example.com", first_name="Asha", last_name="Verma", password=PASSWORD)
    doctor = DoctorProfileFactory(user__email="priya.raman@example.com", user__first_name="Priya", user__last_name="Raman", user__password=PASSWORD, title="Dr.", licence_number="MCI-445566")
    appointment = appointment_between(doctor, patient, timezone.now() - timedelta(hours=2))
    entry = services.entry_create(by=patient, patient=patient, category="allergy", payload={"substance": "Penicillin", "reaction": "Hives", "severity": "mild"})
    services.entry_update(by=doctor.user, entry=entry, payload={"substance": "Penicillin", "reaction": "Anaphylaxis", "severity": "severe"})

    sign_in(page, live_server.url, doctor.user.email, path=f"/appointments/{appointment.public_id}/")
    page.get_by_role("link", name="Prescription").click()
    prescription_issue(
        page,
        medicine={"Name": "Amoxicillin", "Dose": "500 mg", "Frequency": "Three times a day", "Duration": "5 days", "Instructions": "After food"},
        advice="Rest, fluids, paracetamol for fever.",
        follow_up="In one week if not better",
    )
    shot(page, "prescribe", step=7)
    page.goto(f"{live_server.url}/records/entries/{entry.public_id}/history/")
    expect(page.get_by_role("heading", name="Version 2 · updated")).to_be_visible()
    shot(page, "entry-history", step=7)

    rx = Prescription.objects.get()
    pharmacist = browser.new_context(viewport={"width": 1280, "height": 800}).new_page()
    pharmacist.goto(f"{live_server.url}/prescriptions/verify/{rx.verification_code}/")
    expect(pharmacist.get_by_text("Genuine and current.")).to_be_visible()
    expect(pharmacist.get_by_text("MCI-445566")).to_be_visible()
    shot(pharmacist, "prescription-verified", step=7)
    pharmacist.context.close()
    assert console_errors == []


def test_patient_edits_and_deletes_entries_and_the_doctor_adds_one(live_server, page: Page, browser, console_errors):
    """The entry pages: the patient changes an allergy (a new version) and deletes a medication
    with a reason; their doctor adds a vital on the record page. Writes step7-entries-*.png."""
    from doctors.tests.factories import DoctorProfileFactory

    patient = UserFactory(email="asha.verma@example.com", first_name="Asha", last_name="Verma", password=PASSWORD)
    doctor = DoctorProfileFactory(user__email="priya.raman@example.com", user__first_name="Priya", user__last_name="Raman", user__password=PASSWORD, title="Dr.", licence_number="MCI-445566")
    appointment_between(doctor, patient, timezone.now() - timedelta(days=1))
    allergy = services.entry_create(by=patient, patient=patient, category="allergy", payload={"substance": "Penicillin", "reaction": "Hives", "severity": "mild", "noted_on": "2019-04-12"})
    services.entry_create(by=patient, patient=patient, category="medication", payload={"name": "Amlodipine", "dose": "5 mg", "route": "oral", "frequency": "once daily"})
    services.entry_create(by=patient, patient=patient, category="lab_result", payload={"name": "HbA1c", "value": "6.1", "unit": "%", "reference_range": "4.0-5.6", "flag": "high"})

    # The patient changes the allergy: the form shows the current version.
    sign_in(page, live_server.url, patient.email, path="/records/")
    page.locator(".mm-record-timeline-item", has_text="Penicillin").get_by_role("link", name="Edit").click()
    expect(page.get_by_role("heading", name="Penicillin")).to_be_visible()
    expect(page.get_by_label("Reaction")).to_have_value("Hives")
    page.get_by_label("Reaction").fill("Swelling of the lips and hives")
    page.get_by_label("Severity").select_option("severe")
    shot(page, "entries-edit", step=7)
    page.get_by_role("button", name="Save as a new version").click()
    expect(page.get_by_text("Saved as version 2. The earlier versions stay in the history.")).to_be_visible()

    # ...and deletes the medication, with a reason.
    page.locator(".mm-record-timeline-item", has_text="Amlodipine").get_by_role("link", name="Delete").click()
    expect(page.get_by_role("heading", name="Delete “Amlodipine”?")).to_be_visible()
    page.get_by_label("Reason").fill("I stopped it in September; my doctor knows.")
    shot(page, "entries-delete", step=7)
    page.get_by_role("button", name="Delete the entry").click()
    expect(page.get_by_text("Entry deleted. Its history is kept.")).to_be_visible()
    expect(page.locator("#timeline").get_by_text("Amlodipine")).to_have_count(0)

    # The doctor adds a vital on the patient's record page.
    doctor_page = browser.new_context(viewport={"width": 1280, "height": 800}, locale="en-GB", timezone_id="Europe/London").new_page()
    sign_in(doctor_page, live_server.url, doctor.user.email, path=f"/records/patients/{patient.public_id}/")
    doctor_page.locator("#add-entry").get_by_text("Vitals and measurements").click()
    add = doctor_page.locator("#add-entry details[open]")
    add.get_by_label("Kind").select_option("blood_pressure")
    add.get_by_label("Value").fill("138/88")
    add.get_by_label("Unit").fill("mmHg")
    add.get_by_label("Measured at").fill("2026-11-20T09:30")
    add.get_by_role("button", name="Add").click()
    expect(doctor_page.get_by_text("Added to the patient's record.")).to_be_visible()
    expect(doctor_page.locator("#timeline").get_by_text("Blood pressure: 138/88 mmHg")).to_be_visible()
    shot(doctor_page, "entries-doctor", step=7)
    doctor_page.context.close()

    # The history compares each version with the one before.
    page.goto(f"{live_server.url}/records/entries/{allergy.public_id}/history/")
    expect(page.get_by_role("heading", name="Version 2 · updated")).to_be_visible()
    shot(page, "entries-history", step=7)
    assert console_errors == []
