"""OCR of scanned documents (Tesseract, in the Celery task) and search over extracted text,
permission-filtered; PostgreSQL full-text when available, the decrypting fallback elsewhere."""

from __future__ import annotations

import io
import shutil
from datetime import timedelta

import pytest
from PIL import Image

from records import inspection, selectors, services
from records.models import Document

from . import samples
from .conftest import NOW

pytestmark = pytest.mark.django_db
needs_tesseract = pytest.mark.skipif(shutil.which("tesseract") is None, reason="tesseract-ocr is not installed (make ocr)")


def upload(cast, data: bytes, title: str) -> Document:
    return services.document_upload(by=cast["patient"], patient=cast["patient"], file=io.BytesIO(data), size=len(data), title=title)


@needs_tesseract
@pytest.mark.parametrize("make", [samples.scanned_png, samples.scanned_pdf, samples.outlined_pdf], ids=["image", "image-only-pdf", "outlined-text-pdf"])
def test_scanned_documents_are_read_by_ocr_in_the_task_and_become_searchable(cast, make, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):  # the indexing task runs after commit
        document = upload(cast, make(), "Scanned lab report")

    document.refresh_from_db()
    assert document.ocr_status == "done"
    assert "CHOLESTEROL" in document.text
    access = selectors.record_access(user=cast["patient"], patient=cast["patient"])
    assert selectors.documents_search(access=access, q="cholesterol") == [document]


def two_page_scan() -> bytes:
    first, second = (Image.open(io.BytesIO(samples.scanned_png(text))) for text in ("CHOLESTEROL 5.2 MMOL", "THYROID TSH 2.1"))
    out = io.BytesIO()
    first.save(out, format="PDF", save_all=True, append_images=[second])
    return out.getvalue()


def test_image_only_pdf_pages_are_rendered_for_ocr_up_to_the_page_limit(settings):
    settings.RECORDS_OCR_MAX_PAGES = 1

    outlined = list(inspection.ocr_images("pdf", samples.outlined_pdf()))
    limited = list(inspection.ocr_images("pdf", two_page_scan()))

    # The outlined PDF has no image to extract: only the rendered page shows the text.
    assert len(outlined) == 1 and len(limited) == 1
    with Image.open(io.BytesIO(outlined[0])) as page:
        assert (page.format, page.mode, page.size) == ("PNG", "L", (round(1000 * 300 / 72), round(160 * 300 / 72)))
        assert page.getextrema() == (0, 255)  # black text on white


@needs_tesseract
def test_only_the_first_pages_up_to_the_limit_are_read(cast, settings, django_capture_on_commit_callbacks):
    settings.RECORDS_OCR_MAX_PAGES = 1

    with django_capture_on_commit_callbacks(execute=True):
        document = upload(cast, two_page_scan(), "Two pages")

    document.refresh_from_db()
    assert document.ocr_status == "done"
    assert "CHOLESTEROL" in document.text and "THYROID" not in document.text


@pytest.mark.parametrize("make", [samples.scanned_png, samples.outlined_pdf], ids=["image", "outlined-text-pdf"])
def test_without_tesseract_documents_are_marked_ocr_unavailable(cast, settings, make, django_capture_on_commit_callbacks):
    settings.TESSERACT_BINARY = "/nonexistent/tesseract"

    with django_capture_on_commit_callbacks(execute=True):
        document = upload(cast, make(), "Scanned")

    document.refresh_from_db()
    assert (document.ocr_status, document.get_ocr_status_display(), document.text) == ("unavailable", "OCR unavailable", "")


def test_pdf_text_needs_no_ocr_and_indexing_twice_changes_nothing(cast):
    document = upload(cast, samples.pdf("Thyroid TSH 2.1 mIU/L"), "TSH")

    assert [services.document_index(document_id=document.pk) for _ in range(2)] == ["not_needed", "not_needed"]
    document.refresh_from_db()
    assert document.text == "Thyroid TSH 2.1 mIU/L"


def test_search_is_limited_to_what_the_access_covers(cast):
    patient = cast["patient"]
    shared = upload(cast, samples.pdf("Thyroid TSH 2.1"), "TSH")
    private = upload(cast, samples.pdf("Thyroid ultrasound normal"), "Ultrasound")
    for document in (shared, private):
        services.document_index(document_id=document.pk)
    grant = services.grant_create(patient=patient, doctor=cast["other_doctor"], documents=[shared], expires_at=NOW + timedelta(days=1))
    doctor_access = selectors.record_access(user=cast["other_doctor"], patient=patient)
    owner_access = selectors.record_access(user=patient, patient=patient)

    assert selectors.documents_search(access=doctor_access, q="thyroid") == [shared]
    assert sorted(d.pk for d in selectors.documents_search(access=owner_access, q="thyroid")) == sorted([shared.pk, private.pk])
    services.grant_revoke(grant=grant, by=patient)
    assert selectors.record_access(user=cast["other_doctor"], patient=patient) is None
