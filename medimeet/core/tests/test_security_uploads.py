"""Upload attacks on the three places people upload files, filling the gaps of the apps' own tests
(records/tests/test_documents.py: executables, scripts, EICAR, PDF actions, ZIP, size, pages;
accounts/tests/test_api.py: renamed executables and PDFs as pictures, size):

- SVG with a script, as a profile picture, a review photo and a record document;
- polyglots (a real JPEG with HTML after its end): accepted only re-encoded, the HTML gone;
- a PNG whose header claims billions of pixels (decompression bomb): a clean 4xx, no 500;
- path traversal in the file name: stored under a generated name inside the app's folder;
- review photos: wrong magic bytes and oversized files.
"""

from __future__ import annotations

import io
import struct
import zlib
from datetime import timedelta
from pathlib import Path

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.utils import timezone
from rest_framework.test import APIClient

from accounts.tests.factories import UserFactory
from appointments.models import Appointment
from doctors.tests.factories import DoctorProfileFactory, ServiceFactory
from medimeet.core.errors import ApplicationError
from records import services as records_services
from records.models import Document
from records.tests.samples import pdf
from reviews.models import Review, ReviewPhoto
from reviews.services import review_create

from .security import jpeg_bytes

pytestmark = pytest.mark.django_db

SVG = b'<?xml version="1.0"?><svg xmlns="http://www.w3.org/2000/svg" onload="alert(1)"><script>alert(document.cookie)</script></svg>'
POLYGLOT = jpeg_bytes((40, 30)) + b"<html><script>alert(document.cookie)</script></html>"
TRAVERSAL = "../../../../etc/passwd.jpg"
REVIEW_TEXT = "The doctor listened carefully and explained my blood pressure readings clearly."


def png_claiming(width: int, height: int) -> bytes:
    """A tiny PNG whose header says ``width`` × ``height`` (a decompression bomb's shape)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"\x00" * 1024)) + chunk(b"IEND", b"")


def picture_upload(user, name: str, content: bytes, content_type: str = "image/jpeg"):
    api = APIClient()
    api.force_authenticate(user)
    return api.post("/api/v1/auth/me/picture/", {"picture": SimpleUploadedFile(name, content, content_type=content_type)}, format="multipart")


@pytest.fixture
def visit():
    doctor = DoctorProfileFactory()
    service = ServiceFactory(doctor=doctor)
    patient = UserFactory()
    start = timezone.now() - timedelta(days=1, hours=1)
    return Appointment.objects.create(
        doctor=doctor, patient=patient, service=service, start=start, end=start + timedelta(minutes=30), blocked_start=start,
        blocked_end=start + timedelta(minutes=30), status="completed", price_minor=50000, currency="INR",
    )  # fmt: skip


def review_with_photo(visit, name: str, content: bytes, content_type: str = "image/jpeg") -> Review:
    photo = SimpleUploadedFile(name, content, content_type=content_type)
    return review_create(appointment=visit, author=visit.patient, scores={"overall": 5}, text=REVIEW_TEXT, photos=[photo])


def media_files(settings, folder: str) -> list[Path]:
    root = Path(settings.MEDIA_ROOT) / folder
    return [p for p in root.rglob("*") if p.is_file()] if root.exists() else []


# --- SVG with a script ---------------------------------------------------------------------


def test_an_svg_with_a_script_is_not_a_profile_picture(settings):
    user = UserFactory()

    response = picture_upload(user, "avatar.svg", SVG, "image/svg+xml")

    assert response.status_code == 400 and response.json()["error"]["code"] == "USER_003"
    assert media_files(settings, "profile-pictures") == []


def test_an_svg_with_a_script_is_not_a_review_photo(visit, settings):
    with pytest.raises(ApplicationError) as refused:
        review_with_photo(visit, "clinic.svg", SVG, "image/svg+xml")

    assert "photos" in refused.value.fields or refused.value.code.startswith("REV_")
    assert ReviewPhoto.objects.count() == 0 and Review.objects.count() == 0


def test_an_svg_with_a_script_is_not_a_record_document(settings):
    patient = UserFactory()

    with pytest.raises(ApplicationError) as refused:
        records_services.document_upload(by=patient, patient=patient, file=io.BytesIO(SVG), size=len(SVG), title="Scan", original_name="scan.svg")

    assert refused.value.code in ("REC_010", "REC_013")
    assert Document.objects.count() == 0


# --- Polyglots ------------------------------------------------------------------------------


def test_a_jpeg_html_polyglot_profile_picture_is_stored_re_encoded_without_the_html(settings):
    user = UserFactory()

    response = picture_upload(user, "avatar.jpg", POLYGLOT)

    assert response.status_code == 200, response.content
    stored = media_files(settings, "profile-pictures")
    assert stored and all(b"<script" not in p.read_bytes() and p.read_bytes()[:3] == b"\xff\xd8\xff" for p in stored)


def test_a_jpeg_html_polyglot_review_photo_is_stored_re_encoded_without_the_html(visit, settings):
    review = review_with_photo(visit, "clinic.jpg", POLYGLOT)

    photo = review.photos.get()
    content = Path(photo.image.path).read_bytes()
    assert b"<script" not in content and content[:3] == b"\xff\xd8\xff"
    served = APIClient().get(f"/reviews/photos/{photo.public_id}.jpg")
    if served.status_code == 200:
        assert served["Content-Type"] == "image/jpeg" and served["X-Content-Type-Options"] == "nosniff"


def test_a_record_document_is_only_ever_downloaded_as_an_attachment_with_nosniff():
    """Record documents are kept as uploaded (they are evidence), so an HTML tail after a valid
    PDF stays in the file: the browser must never render it as a page."""
    patient = UserFactory()
    content = pdf() + b"<html><script>alert(document.cookie)</script></html>"
    document = records_services.document_upload(by=patient, patient=patient, file=io.BytesIO(content), size=len(content), title="Report", original_name="report.pdf")
    api = APIClient()
    api.force_authenticate(patient)

    response = api.get(f"/api/v1/records/documents/{document.public_id}/download/")

    assert response.status_code == 200
    assert response["Content-Disposition"].startswith("attachment;")
    assert response["Content-Type"] == "application/pdf" and response["X-Content-Type-Options"] == "nosniff"


# --- Decompression bombs --------------------------------------------------------------------


def test_a_decompression_bomb_profile_picture_is_a_clean_400(settings):
    response = picture_upload(UserFactory(), "bomb.png", png_claiming(60_000, 60_000), "image/png")

    assert response.status_code == 400 and response.json()["error"]["code"] == "USER_003"
    assert media_files(settings, "profile-pictures") == []


def test_a_decompression_bomb_review_photo_is_refused(visit):
    with pytest.raises(ApplicationError):
        review_with_photo(visit, "bomb.png", png_claiming(60_000, 60_000), "image/png")

    assert ReviewPhoto.objects.count() == 0


def test_a_decompression_bomb_record_image_is_refused():
    patient = UserFactory()
    bomb = png_claiming(60_000, 60_000)

    with pytest.raises(ApplicationError) as refused:
        records_services.document_upload(by=patient, patient=patient, file=io.BytesIO(bomb), size=len(bomb), title="X-ray", original_name="xray.png")

    assert refused.value.code in ("REC_010", "REC_011", "REC_013")
    assert Document.objects.count() == 0


# --- Path traversal in file names ---------------------------------------------------------------


def test_a_traversal_file_name_cannot_place_a_profile_picture_outside_its_folder(settings):
    response = picture_upload(UserFactory(), TRAVERSAL, jpeg_bytes())

    assert response.status_code == 200
    root = (Path(settings.MEDIA_ROOT) / "profile-pictures").resolve()
    files = [p.resolve() for p in Path(settings.MEDIA_ROOT).rglob("*") if p.is_file()]
    assert files and all(root in p.parents for p in files)
    assert not any("passwd" in p.name for p in files)


def test_a_traversal_file_name_cannot_place_a_review_photo_outside_its_folder(visit, settings):
    review = review_with_photo(visit, TRAVERSAL, jpeg_bytes())

    name = review.photos.get().image.name
    assert ".." not in name and "passwd" not in name
    assert Path(settings.MEDIA_ROOT).resolve() in Path(review.photos.get().image.path).resolve().parents


def test_a_traversal_file_name_on_a_record_document_is_only_a_label(settings):
    patient = UserFactory()
    content = pdf()

    document = records_services.document_upload(by=patient, patient=patient, file=io.BytesIO(content), size=len(content), title="", original_name="../../../../etc/passwd")

    assert ".." not in document.file_name and "passwd" not in document.file_name
    media = Path(settings.MEDIA_ROOT).resolve()
    assert all(media in p.resolve().parents for p in media.rglob("*") if p.is_file())


# --- Review photos: wrong magic bytes, oversized ------------------------------------------------


@pytest.mark.parametrize(
    ("name", "content", "content_type"),
    [("clinic.jpg", b"MZ\x90\x00 a renamed executable", "image/jpeg"), ("clinic.png", pdf(), "image/png"), ("clinic.jpg", b"GIF89a" + bytes(100), "image/jpeg")],
    ids=["exe-as-jpeg", "pdf-as-png", "gif-as-jpeg"],
)
def test_a_review_photo_is_checked_by_content_not_by_name(visit, name, content, content_type):
    with pytest.raises(ApplicationError):
        review_with_photo(visit, name, content, content_type)

    assert ReviewPhoto.objects.count() == 0 and Review.objects.count() == 0


def test_an_oversized_review_photo_is_refused(visit, settings):
    settings.REVIEWS_PHOTO_MAX_BYTES = 2_000

    with pytest.raises(ApplicationError):
        review_with_photo(visit, "big.jpg", jpeg_bytes((400, 400)) + bytes(4_000))

    assert ReviewPhoto.objects.count() == 0
