"""Validation of uploaded documents by their content, never by name or declared type.

Used for doctors' licence documents, review photos and records. A file is accepted only if its
bytes are one of the allowed kinds, it is within the size limit and it parses. Images that will
be shown to others go through ``image_reencode`` as well: decoded and written again as a new
JPEG, so EXIF (GPS position, camera serial) and anything appended to the file are dropped.
"""

from __future__ import annotations

import io
import re
from dataclasses import dataclass

from django.core.files.base import ContentFile
from django.core.files.uploadedfile import UploadedFile
from django.utils.translation import gettext
from PIL import Image, ImageOps, UnidentifiedImageError

from .errors import ApplicationError


@dataclass(frozen=True)
class DetectedType:
    kind: str  # "pdf", "jpeg", "png"
    content_type: str
    extension: str


KINDS = {
    "pdf": DetectedType("pdf", "application/pdf", ".pdf"),
    "jpeg": DetectedType("jpeg", "image/jpeg", ".jpg"),
    "png": DetectedType("png", "image/png", ".png"),
    "webp": DetectedType("webp", "image/webp", ".webp"),
    "tiff": DetectedType("tiff", "image/tiff", ".tif"),
    "gif": DetectedType("gif", "image/gif", ".gif"),
    "dicom": DetectedType("dicom", "application/dicom", ".dcm"),
}
# How many leading bytes sniff_kind needs (DICOM's "DICM" sits after a 128-byte preamble).
SNIFF_BYTES = 132
# Active content in a PDF: scripts run by viewers, launch actions, embedded files.
PDF_ACTIVE_CONTENT = re.compile(rb"/(JavaScript|JS|Launch|EmbeddedFile|RichMedia|OpenAction\s*<<[^>]*/S\s*/JavaScript)\b")


def sniff_kind(head: bytes) -> str | None:
    """The kind of a file from its first ``SNIFF_BYTES`` bytes (magic numbers), or None."""
    if head.startswith(b"%PDF-"):
        return "pdf"
    if head.startswith(b"\xff\xd8\xff"):
        return "jpeg"
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "png"
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "webp"
    if head[:4] in (b"II*\x00", b"MM\x00*"):
        return "tiff"
    if head[:6] in (b"GIF87a", b"GIF89a"):
        return "gif"
    if head[128:132] == b"DICM":
        return "dicom"
    return None


def upload_validate(upload: UploadedFile, *, allowed: set[str], max_bytes: int, code: str, field: str) -> DetectedType:
    """Return the detected type of ``upload`` or raise ``ApplicationError(code)`` naming ``field``."""

    def refuse(message: str) -> ApplicationError:
        return ApplicationError(code, message, fields={field: [message]})

    if upload.size is None or upload.size == 0:
        raise refuse("The file is empty.")
    if upload.size > max_bytes:
        raise refuse(f"The file is larger than {max_bytes // (1024 * 1024)} MB.")
    upload.seek(0)
    kind = sniff_kind(upload.read(SNIFF_BYTES))
    if kind is None or kind not in allowed:
        names = ", ".join(sorted(k.upper() for k in allowed))
        raise refuse(f"Upload a {names} file; this file's content is not one of those.")
    upload.seek(0)
    if kind == "pdf":
        content = upload.read()
        if b"%%EOF" not in content[-2048:]:
            raise refuse("The PDF is damaged or incomplete.")
        if PDF_ACTIVE_CONTENT.search(content):
            raise refuse("PDFs with scripts, actions or embedded files are not accepted.")
    else:
        try:
            with Image.open(upload) as image:
                image.verify()
        except (UnidentifiedImageError, OSError, SyntaxError, Image.DecompressionBombError) as exc:
            raise refuse("The image is damaged or not a valid image.") from exc
    upload.seek(0)
    return KINDS[kind]


IMAGE_MAX_PIXELS = 40_000_000


def image_load(upload: UploadedFile, *, max_bytes: int, code: str, field: str) -> tuple[Image.Image, DetectedType]:
    """A JPEG or PNG upload checked by ``upload_validate`` and opened upright (EXIF orientation
    applied), ready to be re-encoded, which drops its metadata (camera, GPS) and anything
    smuggled after the image data."""

    detected = upload_validate(upload, allowed={"jpeg", "png"}, max_bytes=max_bytes, code=code, field=field)
    try:
        with Image.open(upload) as opened:
            if opened.width * opened.height > IMAGE_MAX_PIXELS:
                raise ApplicationError(code, gettext("The image has too many pixels."), fields={field: [gettext("The image dimensions are too large.")]})
            image = ImageOps.exif_transpose(opened)
            image.load()
    except (UnidentifiedImageError, OSError, SyntaxError, Image.DecompressionBombError) as exc:
        raise ApplicationError(code, gettext("The image is damaged or not a valid image."), fields={field: [gettext("Not a valid image.")]}) from exc
    upload.seek(0)
    return image, detected


@dataclass(frozen=True)
class ReencodedImage:
    content: ContentFile
    width: int
    height: int


def image_reencode(upload: UploadedFile, *, max_bytes: int, max_side: int, code: str, field: str) -> ReencodedImage:
    """A JPEG or PNG upload (``image_load``) shrunk to ``max_side`` and encoded as a fresh JPEG
    without metadata."""
    image, _ = image_load(upload, max_bytes=max_bytes, code=code, field=field)
    image = image.convert("RGB")
    image.thumbnail((max_side, max_side))
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=85, optimize=True)  # no exif= argument: none is written
    return ReencodedImage(content=ContentFile(buffer.getvalue()), width=image.width, height=image.height)
