"""What an uploaded record document is, whether it may be stored, and what can be learnt from
it: type from content (magic bytes), size/page/frame limits, malware and active-content scanning,
metadata and text extraction, OCR. Nothing here stores anything.

Scanners share one interface (``scan(file) -> ScanVerdict``). The built-in scanner always runs
(EICAR, executables, active PDF content: a policy, not a signature database); clamd runs as well
when ``CLAMAV_SOCKET`` or ``CLAMAV_URL`` is set, over its INSTREAM protocol.
"""

from __future__ import annotations

import io
import itertools
import logging
import re
import shutil
import socket
import struct
import subprocess
import tempfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import IO, Protocol
from urllib.parse import urlparse

from django.conf import settings
from PIL import Image, UnidentifiedImageError

from medimeet.core.errors import ApplicationError
from medimeet.core.uploads import KINDS, PDF_ACTIVE_CONTENT, SNIFF_BYTES, DetectedType, sniff_kind

logger = logging.getLogger("medimeet.records")

RECORD_KINDS = {"pdf", "dicom", "jpeg", "png", "webp", "tiff", "gif"}
SCAN_BLOCK = 1024 * 1024
EICAR = b"X5O!P%@AP[4\\PZX54(P^)7CC)7}$EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*"
EXECUTABLE_MAGIC = {
    b"MZ": "a Windows executable",
    b"\x7fELF": "a Linux executable",
    b"\xfe\xed\xfa\xce": "a macOS executable",
    b"\xfe\xed\xfa\xcf": "a macOS executable",
    b"\xce\xfa\xed\xfe": "a macOS executable",
    b"\xcf\xfa\xed\xfe": "a macOS executable",
    b"\xca\xfe\xba\xbe": "a macOS executable",
    b"#!": "a script",
}
# Catalogue keys that make a PDF act on its own when opened (besides PDF_ACTIVE_CONTENT).
PDF_ACTIVE_KEYS = ("/JavaScript", "/JS", "/Launch", "/EmbeddedFiles", "/AA")
# DICOM attributes that may be indexed: nothing that identifies the patient or the institution.
DICOM_INDEXED = {"Modality": "modality", "StudyDate": "study_date", "BodyPartExamined": "body_part", "StudyDescription": "study_description", "SeriesDescription": "series_description"}


def refuse(message: str, code: str = "REC_010") -> ApplicationError:
    return ApplicationError(code, message, fields={"file": [message]})


@dataclass
class Inspection:
    detected: DetectedType
    metadata: dict = field(default_factory=dict)
    text: str = ""
    needs_ocr: bool = False


@dataclass(frozen=True)
class ScanVerdict:
    clean: bool
    reason: str = ""


class Scanner(Protocol):
    def scan(self, file: IO[bytes]) -> ScanVerdict: ...


def _blocks(file: IO[bytes], overlap: int = 256):
    """The file in blocks that overlap, so a pattern across a block boundary is still seen."""
    file.seek(0)
    tail = b""
    while block := file.read(SCAN_BLOCK):
        yield tail + block
        tail = block[-overlap:]
    file.seek(0)


class BuiltinScanner:
    """Refuses the EICAR test file, executables and scripts (by their magic, whatever the name),
    and PDFs with JavaScript, launch actions, automatic actions or embedded files."""

    def scan(self, file: IO[bytes]) -> ScanVerdict:
        file.seek(0)
        head = file.read(SNIFF_BYTES)
        for magic, what in EXECUTABLE_MAGIC.items():
            if head.startswith(magic):
                return ScanVerdict(False, f"The file is {what}, not a document.")
        is_pdf = head.startswith(b"%PDF-")
        for block in _blocks(file):
            if EICAR in block:
                return ScanVerdict(False, "The file contains a virus test signature (EICAR).")
            if is_pdf and PDF_ACTIVE_CONTENT.search(block):
                return ScanVerdict(False, "PDFs with scripts, actions or embedded files are not accepted.")
        if is_pdf and _pdf_has_active_catalogue(file):
            return ScanVerdict(False, "PDFs with scripts, actions or embedded files are not accepted.")
        return ScanVerdict(True)


def _pdf_has_active_catalogue(file: IO[bytes]) -> bool:
    """Active content hidden in compressed object streams, found through the parsed catalogue."""
    from pypdf import PdfReader
    from pypdf.errors import PdfReadError

    try:
        reader = PdfReader(file, strict=False)
        root = reader.trailer["/Root"]
        names = root.get("/Names") or {}
        open_action = root.get("/OpenAction")
        if any(key in names for key in PDF_ACTIVE_KEYS) or any(key in root for key in ("/AA",)):
            return True
        if open_action is not None and hasattr(open_action, "get") and open_action.get("/S") in ("/JavaScript", "/Launch"):
            return True
        return any("/AA" in page for page in reader.pages)
    except (PdfReadError, KeyError, ValueError, TypeError, OSError):
        return False  # not parseable: the limits check refuses it with its own message
    finally:
        file.seek(0)


class ClamdScanner:
    """clamd's INSTREAM command over a Unix socket or TCP: the file in length-prefixed chunks,
    a zero-length chunk to finish, and one line back ("stream: OK" or "... FOUND")."""

    def __init__(self, *, socket_path: str = "", url: str = "", timeout: float = 30) -> None:
        self.socket_path, self.url, self.timeout = socket_path, url, timeout

    def _connect(self) -> socket.socket:
        if self.socket_path:
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            sock.settimeout(self.timeout)
            sock.connect(self.socket_path)
            return sock
        parsed = urlparse(self.url)
        return socket.create_connection((parsed.hostname or "127.0.0.1", parsed.port or 3310), timeout=self.timeout)

    def scan(self, file: IO[bytes]) -> ScanVerdict:
        try:
            with self._connect() as sock:
                sock.sendall(b"zINSTREAM\0")
                file.seek(0)
                while block := file.read(64 * 1024):
                    sock.sendall(struct.pack(">I", len(block)) + block)
                sock.sendall(struct.pack(">I", 0))
                answer = b""
                while not answer.endswith(b"\0") and (data := sock.recv(4096)):
                    answer += data
        except OSError as exc:
            logger.warning("clamd unreachable", extra={"error": str(exc)})
            raise ApplicationError("REC_012") from exc
        finally:
            file.seek(0)
        reply = answer.rstrip(b"\0").decode("utf-8", "replace").strip()
        if reply.endswith("OK"):
            return ScanVerdict(True)
        if reply.endswith("FOUND"):
            return ScanVerdict(False, f"The malware scanner refused the file ({reply.split(':', 1)[-1].removesuffix('FOUND').strip()}).")
        logger.warning("clamd error", extra={"reply": reply[:200]})
        raise ApplicationError("REC_012")


def scanners() -> list[Scanner]:
    found: list[Scanner] = [BuiltinScanner()]
    if settings.CLAMAV_SOCKET or settings.CLAMAV_URL:
        found.append(ClamdScanner(socket_path=settings.CLAMAV_SOCKET, url=settings.CLAMAV_URL, timeout=settings.CLAMAV_TIMEOUT_SECONDS))
    return found


def document_inspect(file: IO[bytes], *, size: int) -> Inspection:
    """Validate an upload and extract what may be indexed; raises REC_010/REC_011 (refused)."""
    if size <= 0:
        raise refuse("The file is empty.")
    if size > settings.RECORDS_DOCUMENT_MAX_BYTES:
        raise refuse(f"The file is larger than {settings.RECORDS_DOCUMENT_MAX_BYTES // (1024 * 1024)} MB.", "REC_011")
    for scanner in scanners():
        verdict = scanner.scan(file)
        if not verdict.clean:
            raise refuse(verdict.reason, "REC_013")
    file.seek(0)
    kind = sniff_kind(file.read(SNIFF_BYTES))
    file.seek(0)
    if kind not in RECORD_KINDS:
        raise refuse("Upload a PDF, a DICOM file or an image (JPEG, PNG, WebP, TIFF, GIF); this file's content is none of those.")
    inspection = Inspection(KINDS[kind])
    try:
        {"pdf": _inspect_pdf, "dicom": _inspect_dicom}.get(kind, _inspect_image)(file, inspection)
    finally:
        file.seek(0)
    return inspection


def _inspect_pdf(file: IO[bytes], inspection: Inspection) -> None:
    from pypdf import PdfReader
    from pypdf.errors import PdfReadError

    try:
        reader = PdfReader(file, strict=False)
        pages = len(reader.pages)
        if pages > settings.RECORDS_DOCUMENT_MAX_PAGES:
            raise refuse(f"The PDF has {pages} pages; the limit is {settings.RECORDS_DOCUMENT_MAX_PAGES}.", "REC_011")
        text = "\n".join(page.extract_text() or "" for page in reader.pages)
        info = reader.metadata or {}
    except (PdfReadError, KeyError, ValueError, TypeError, OSError) as exc:
        raise refuse("The PDF is damaged or cannot be read.") from exc
    created = info.get("/CreationDate")
    inspection.metadata = {"pages": pages, "producer": str(info.get("/Producer") or "")[:120], "created": str(created)[:40] if created else ""}
    inspection.text = re.sub(r"[ \t]+", " ", text).strip()
    inspection.needs_ocr = not inspection.text


def _inspect_dicom(file: IO[bytes], inspection: Inspection) -> None:
    import pydicom
    from pydicom.errors import InvalidDicomError

    try:
        dataset = pydicom.dcmread(file, stop_before_pixels=True)
    except (InvalidDicomError, ValueError, EOFError, OSError, KeyError, TypeError) as exc:
        raise refuse("The DICOM file is damaged or cannot be read.") from exc
    frames = int(dataset.get("NumberOfFrames", 1) or 1)
    if frames > settings.RECORDS_DOCUMENT_MAX_FRAMES:
        raise refuse(f"The DICOM file has {frames} frames; the limit is {settings.RECORDS_DOCUMENT_MAX_FRAMES}.", "REC_011")
    # Only the whitelisted attributes are indexed: names, ids, dates of birth, institutions and
    # physicians stay inside the encrypted file.
    metadata: dict = {name: str(dataset.get(tag, "") or "")[:64] for tag, name in DICOM_INDEXED.items()}
    metadata.update(frames=frames, rows=int(dataset.get("Rows", 0) or 0), columns=int(dataset.get("Columns", 0) or 0))
    inspection.metadata = metadata
    inspection.text = " ".join(metadata[name] for name in DICOM_INDEXED.values() if metadata[name])


def _inspect_image(file: IO[bytes], inspection: Inspection) -> None:
    try:
        with Image.open(file) as image:
            width, height, frames = image.width, image.height, getattr(image, "n_frames", 1)
            if width * height > Image.MAX_IMAGE_PIXELS:
                raise refuse("The image is too large.", "REC_011")
            if frames > settings.RECORDS_DOCUMENT_MAX_FRAMES:
                raise refuse(f"The image has {frames} frames; the limit is {settings.RECORDS_DOCUMENT_MAX_FRAMES}.", "REC_011")
            image.verify()
    except (UnidentifiedImageError, OSError, SyntaxError, Image.DecompressionBombError) as exc:
        raise refuse("The image is damaged or not a valid image.") from exc
    inspection.metadata = {"width": width, "height": height, "frames": frames}
    inspection.needs_ocr = True


# --- OCR --------------------------------------------------------------------------------------------


def ocr_available() -> bool:
    return shutil.which(settings.TESSERACT_BINARY) is not None


# Pages are rendered at the resolution Tesseract reads best; a poster-sized page is scaled down
# so that its longest side stays within OCR_MAX_SIDE pixels (memory: one greyscale page at a time).
OCR_DPI = 300
OCR_MAX_SIDE = 5000


def ocr_images(kind: str, content: bytes) -> Iterator[bytes]:
    """The images to OCR, one at a time: the image itself, or the pages of an image-only PDF
    rendered to greyscale PNGs (the first RECORDS_OCR_MAX_PAGES), so that text drawn as vector
    shapes or split over several image strips is read as well as a single embedded scan."""
    if kind != "pdf":
        yield content
        return
    import pypdfium2 as pdfium

    try:
        pdf = pdfium.PdfDocument(content)
    except pdfium.PdfiumError:
        # PDFium refuses a file pypdf accepted at upload: OCR what images pypdf can extract.
        yield from _pdf_embedded_images(content)
        return
    try:
        for index in range(min(len(pdf), settings.RECORDS_OCR_MAX_PAGES)):
            page = pdf[index]
            try:
                width, height = page.get_size()
                scale = min(OCR_DPI / 72, OCR_MAX_SIDE / max(width, height, 1))
                image = page.render(scale=scale, grayscale=True).to_pil()
            except pdfium.PdfiumError as exc:
                raise ValueError(f"PDF page {index + 1} cannot be rendered") from exc
            finally:
                page.close()
            out = io.BytesIO()
            image.save(out, format="PNG", compress_level=1)
            yield out.getvalue()
    finally:
        pdf.close()


def _pdf_embedded_images(content: bytes) -> Iterator[bytes]:
    from pypdf import PdfReader

    reader = PdfReader(io.BytesIO(content), strict=False)
    images = (image.data for page in reader.pages[: settings.RECORDS_OCR_MAX_PAGES] for image in page.images)
    yield from itertools.islice(images, settings.RECORDS_OCR_MAX_PAGES)


def ocr_text(images: Iterable[bytes]) -> str:
    """Text that Tesseract reads in ``images`` (each written to a private temporary file)."""
    texts = []
    for data in images:
        with tempfile.NamedTemporaryFile(prefix="mm-ocr-") as image:
            image.write(data)
            image.flush()
            result = subprocess.run([settings.TESSERACT_BINARY, image.name, "stdout"], capture_output=True, timeout=120, check=False)  # noqa: S603
        if result.returncode == 0:
            texts.append(result.stdout.decode("utf-8", "replace").strip())
    return "\n".join(t for t in texts if t)
