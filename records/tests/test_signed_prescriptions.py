"""Prescriptions carry MediMeet's PAdES signature: a pharmacist who uploads one learns whether it
is genuine, unchanged and still current."""

from __future__ import annotations

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client

from medimeet.core.pdf import SignatureCheck, pdf_signature_check
from medimeet.core.tests.signed_pdfs import page_overwritten, pyhanko_status
from records import prescriptions

from .test_prescriptions_exports import AMOXICILLIN, issue

pytestmark = pytest.mark.django_db


def upload(content: bytes, **extra):
    return Client().post("/documents/verify/", {"file": SimpleUploadedFile("prescription.pdf", content, "application/pdf")}, **extra)


def test_a_prescription_pdf_is_signed_and_names_its_prescription(cast):
    rx = issue(cast)
    content = prescriptions.prescription_pdf(rx)

    status = pyhanko_status(content)
    check = pdf_signature_check(content)

    assert (status.bottom_line, status.coverage.name) == (True, "ENTIRE_FILE")
    assert (check.verdict, check.document.kind, check.document.code, check.document.current) == (SignatureCheck.VALID, "prescription", rx.verification_code, True)
    assert check.document.verify_url == f"/prescriptions/verify/{rx.verification_code}/"


def test_a_superseded_prescription_is_genuine_but_the_verdict_says_not_to_dispense(cast):
    rx = issue(cast)
    content = prescriptions.prescription_pdf(rx)
    issue(cast, content={**AMOXICILLIN, "advice": "Rest."}, supersedes=rx)

    page = upload(content).content.decode()

    assert 'data-verdict="valid"' in page and f"Prescription {rx.verification_code}" in page
    assert "The doctor has since replaced it: do not dispense from it." in page


def test_a_prescription_with_a_medicine_drawn_on_after_signing_is_altered(cast):
    content = prescriptions.prescription_pdf(issue(cast))

    check = pdf_signature_check(page_overwritten(content, "Morphine 100 mg"))

    assert (check.verdict, check.unchanged) == (SignatureCheck.ALTERED, False)


def test_a_hindi_pharmacist_reads_the_verdict_in_hindi(cast):
    rx = issue(cast)

    page = upload(prescriptions.prescription_pdf(rx), HTTP_ACCEPT_LANGUAGE="hi").content.decode()

    assert "मान्य: MediMeet ने" in page and f"पर्चा {rx.verification_code}" in page


def test_the_prescription_code_page_links_to_the_signature_check(cast):
    rx = issue(cast)

    assert 'href="/documents/verify/"' in Client().get(f"/prescriptions/verify/{rx.verification_code}/").content.decode()
