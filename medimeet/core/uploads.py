"""Validation of uploaded documents by their content, never by name or declared type.

Used for doctors' licence documents now, and by records and reviews later. A file is accepted
only if its bytes are one of the allowed kinds, it is within the size limit and it parses.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from django.core.files.uploadedfile import UploadedFile
from PIL import Image, UnidentifiedImageError

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
}
# Active content in a PDF: scripts run by viewers, launch actions, embedded files.
PDF_ACTIVE_CONTENT = re.compile(rb"/(JavaScript|JS|Launch|EmbeddedFile|RichMedia|OpenAction\s*<<[^>]*/S\s*/JavaScript)\b")


def _sniff(head: bytes) -> str | None:
    if head.startswith(b"%PDF-"):
        return "pdf"
    if head.startswith(b"\xff\xd8\xff"):
        return "jpeg"
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "png"
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
    kind = _sniff(upload.read(16))
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
    from PIL import ImageOps

    detected = upload_validate(upload, allowed={"jpeg", "png"}, max_bytes=max_bytes, code=code, field=field)
    try:
        with Image.open(upload) as opened:
            if opened.width * opened.height > IMAGE_MAX_PIXELS:
                raise ApplicationError(code, "The image has too many pixels.", fields={field: ["The image dimensions are too large."]})
            image = ImageOps.exif_transpose(opened)
            image.load()
    except (UnidentifiedImageError, OSError, SyntaxError, Image.DecompressionBombError) as exc:
        raise ApplicationError(code, "The image is damaged or not a valid image.", fields={field: ["Not a valid image."]}) from exc
    upload.seek(0)
    return image, detected
