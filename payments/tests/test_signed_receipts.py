"""Receipts carry MediMeet's PAdES signature; the public verifier (page and API) tells a genuine
receipt from an altered one or one signed by someone else."""

from __future__ import annotations

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from rest_framework.test import APIClient

from medimeet.core.pdf import SignatureCheck, pdf_render, pdf_signature_check
from medimeet.core.tests.signed_pdfs import (
    page_content_byte_flipped,
    page_overwritten,
    pyhanko_status,
    replace_in_signed_range,
    resigned_by_impostor,
)
from payments import services
from payments.models import Invoice
from payments.receipts import invoice_context, invoice_pdf

from .conftest import awaiting_payment
from .test_services import pay

pytestmark = pytest.mark.django_db


@pytest.fixture
def invoice(clinic, patient, frozen_time, django_capture_on_commit_callbacks) -> Invoice:
    payment = services.payment_create(patient=patient, appointment=awaiting_payment(clinic, patient))
    with django_capture_on_commit_callbacks(execute=True):
        pay(payment)
    return Invoice.objects.get(payment=payment)


@pytest.fixture
def receipt(invoice) -> bytes:
    return invoice_pdf(invoice)


def verify_api(content: bytes, name: str = "receipt.pdf", **extra):
    return APIClient().post("/api/v1/documents/verify/", {"file": SimpleUploadedFile(name, content, "application/pdf")}, format="multipart", **extra)


def verify_page(content: bytes, **extra):
    return Client().post("/documents/verify/", {"file": SimpleUploadedFile("receipt.pdf", content, "application/pdf")}, **extra)


def test_a_receipt_is_signed_pades_and_pyhankos_own_validation_trusts_it(invoice, receipt):
    status = pyhanko_status(receipt)

    assert (status.bottom_line, status.intact, status.valid, status.trusted, status.docmdp_ok) == (True, True, True, True, True)
    assert status.coverage.name == "ENTIRE_FILE"
    assert b"/ETSI.CAdES.detached" in receipt  # PAdES baseline, not adbe.pkcs7.detached
    assert "MediMeet document signing (tests)" in status.signing_cert.subject.human_friendly


def test_the_check_finds_the_receipt_the_signed_pdf_names(invoice, receipt):
    check = pdf_signature_check(receipt)

    assert (check.verdict, check.intact, check.unchanged, check.ours) == (SignatureCheck.VALID, True, True, True)
    assert (check.document.kind, check.document.title, check.document.code) == ("receipt", "Receipt MM-2026-000001", invoice.verification_code)
    assert check.document.verify_url == f"/receipts/verify/{invoice.verification_code}/"
    assert check.signed_at is not None


def test_changing_a_byte_of_the_page_inside_the_signed_range_is_detected(receipt):
    tampered = page_content_byte_flipped(receipt)

    check = pdf_signature_check(tampered)

    assert (check.verdict, check.intact, check.document) == (SignatureCheck.ALTERED, False, None)
    assert pyhanko_status(tampered).bottom_line is False


def test_editing_the_receipt_number_in_the_signed_bytes_is_detected(invoice, receipt):
    # The signature's /Reason, "MediMeet receipt MM-2026-000001" (pyHanko escapes "-" as \055).
    tampered = replace_in_signed_range(receipt, rb"MM\0552026\055000001", rb"MM\0552026\055000002")

    assert pdf_signature_check(tampered).verdict == SignatureCheck.ALTERED


def test_an_incremental_update_that_draws_on_the_page_is_detected(receipt):
    tampered = page_overwritten(receipt, "Total paid 5.00")

    check = pdf_signature_check(tampered)
    status = pyhanko_status(tampered)

    assert (check.verdict, check.intact, check.unchanged) == (SignatureCheck.ALTERED, True, False)  # the signed revision itself is untouched
    assert (status.docmdp_ok, status.modification_level.name, status.bottom_line) == (False, "OTHER", False)


def test_a_receipt_signed_with_another_key_under_medimeets_name_is_not_ours(invoice):
    forged = resigned_by_impostor(pdf_render("payments/invoice_pdf.html", invoice_context(invoice)), reference=f"receipt:{invoice.verification_code}")

    check = pdf_signature_check(forged)

    assert (check.verdict, check.intact, check.ours, check.document) == (SignatureCheck.NOT_OURS, True, False, None)
    assert check.signer == "MediMeet document signing, MediMeet"  # the name it claims; the key is not ours


def test_the_api_answers_a_genuine_receipt_with_the_verdict_and_the_receipt(invoice, receipt, django_assert_max_num_queries):
    with django_assert_max_num_queries(1):
        response = verify_api(receipt)

    body = response.json()
    assert response.status_code == 200
    assert (body["verdict"], body["valid"], body["intact"], body["unchanged"], body["signed_by_medimeet"]) == ("valid", True, True, True, True)
    assert body["document"] == {"kind": "receipt", "title": "Receipt MM-2026-000001", "code": invoice.verification_code, "verify_url": f"/receipts/verify/{invoice.verification_code}/", "current": True}
    assert body["message"].startswith("Valid: signed by MediMeet on ") and body["message"].endswith("Receipt MM-2026-000001.")


def test_the_api_answers_altered_and_foreign_documents_with_their_verdict(invoice, receipt):
    forged = resigned_by_impostor(pdf_render("payments/invoice_pdf.html", invoice_context(invoice)), reference=f"receipt:{invoice.verification_code}")

    altered = verify_api(page_overwritten(receipt)).json()
    foreign = verify_api(forged).json()

    # Drawn on after signing: the signed original still names its receipt, to compare with what was recorded.
    assert (altered["verdict"], altered["valid"], altered["document"]["code"]) == ("altered", False, invoice.verification_code)
    assert altered["message"].startswith("This document was altered after signing.")
    assert (foreign["verdict"], foreign["signed_by_medimeet"]) == ("not_ours", False)
    assert foreign["message"] == "Not signed by MediMeet. The PDF carries a signature, but not one made by MediMeet."


@pytest.mark.parametrize(
    ("content", "status", "code"),
    [
        (b"\x89PNG\r\n\x1a\n not a pdf at all", 400, "SIGN_001"),
        (b"%PDF-1.7\n garbage that only starts like a PDF", 400, "SIGN_001"),
        (b"", 400, "SIGN_001"),
    ],
)
def test_the_api_refuses_what_is_not_a_pdf_with_a_stable_code(content, status, code):
    response = verify_api(content)

    assert (response.status_code, response.json()["error"]["code"]) == (status, code)


def test_the_api_refuses_an_unsigned_pdf_a_missing_file_and_a_too_large_one(invoice, settings):
    unsigned = pdf_render("payments/invoice_pdf.html", invoice_context(invoice))

    no_signature = verify_api(unsigned)
    no_file = APIClient().post("/api/v1/documents/verify/", {}, format="multipart")
    as_json = APIClient().post("/api/v1/documents/verify/", {"file": "x"}, format="json")
    settings.PDF_VERIFY_MAX_BYTES = 1000
    too_large = verify_api(unsigned)

    assert (no_signature.status_code, no_signature.json()["error"]["code"]) == (400, "SIGN_003")
    assert (no_file.status_code, no_file.json()["error"]["code"], list(no_file.json()["error"]["fields"])) == (400, "REQ_001", ["file"])
    assert (as_json.status_code, as_json.json()["error"]["code"]) == (415, "REQ_005")
    assert (too_large.status_code, too_large.json()["error"]["code"]) == (413, "SIGN_002")


def test_the_page_shows_a_clear_verdict_for_each_kind_of_document(invoice, receipt):
    unsigned = pdf_render("payments/invoice_pdf.html", invoice_context(invoice))

    form = Client().get("/documents/verify/")
    genuine = verify_page(receipt)
    altered = verify_page(page_content_byte_flipped(receipt))
    not_signed = verify_page(unsigned)
    garbage = verify_page(b"hello")
    no_file = Client().post("/documents/verify/", {})

    assert form.status_code == 200 and "Check a signed document" in form.content.decode()
    assert genuine.status_code == 200
    assert 'data-verdict="valid"' in genuine.content.decode() and "Receipt MM-2026-000001" in genuine.content.decode()
    assert f'href="/receipts/verify/{invoice.verification_code}/"' in genuine.content.decode()
    assert 'data-verdict="altered"' in altered.content.decode() and "This document was altered after signing." in altered.content.decode()
    assert 'data-verdict="unsigned"' in not_signed.content.decode() and "Not signed by MediMeet." in not_signed.content.decode()
    assert garbage.status_code == 400 and "The file is not a PDF document." in garbage.content.decode()
    assert no_file.status_code == 400 and "This field is required." in no_file.content.decode()


def test_the_page_speaks_hindi(receipt):
    page = verify_page(receipt, HTTP_ACCEPT_LANGUAGE="hi").content.decode()

    assert "हस्ताक्षरित दस्तावेज़ की जाँच करें" in page and "मान्य: MediMeet ने" in page and "रसीद MM-2026-000001" in page


def test_the_receipt_code_page_links_to_the_signature_check(invoice):
    page = Client().get(f"/receipts/verify/{invoice.verification_code}/").content.decode()

    assert 'href="/documents/verify/"' in page


def test_the_page_and_the_api_share_one_rate_limit(receipt, settings):
    settings.REST_FRAMEWORK = {**settings.REST_FRAMEWORK, "DEFAULT_THROTTLE_RATES": {**settings.REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"], "document_verify": "2/min"}}

    first, second = verify_page(receipt), verify_api(receipt)
    page_refused, api_refused = verify_page(receipt), verify_api(receipt)

    assert (first.status_code, second.status_code) == (200, 200)
    assert page_refused.status_code == 429 and "Too many requests." in page_refused.content.decode()
    assert (api_refused.status_code, api_refused.json()["error"]["code"]) == (429, "REQ_002")
