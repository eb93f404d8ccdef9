"""Documents: type from content, limits, scanning (built in and clamd), envelope encryption
with key rotation, nothing stored when refused."""

from __future__ import annotations

import base64
import io
import os
import socket
import struct
import threading
from pathlib import Path

import pytest
from django.core.management import call_command
from django.db import connection
from django.test import override_settings

from medimeet.core import envelope
from medimeet.core.errors import ApplicationError
from medimeet.core.models import AuditEvent
from records import services
from records.models import Document

from . import samples

pytestmark = pytest.mark.django_db


def upload(cast, data: bytes, *, by=None, title="Blood test"):
    return services.document_upload(by=by or cast["patient"], patient=cast["patient"], file=io.BytesIO(data), size=len(data), title=title, original_name="file.bin")


def stored_files(settings) -> list[Path]:
    root = Path(settings.MEDIA_ROOT) / "records"
    return [p for p in root.rglob("*") if p.is_file()] if root.exists() else []


def content(document) -> bytes:
    return b"".join(services.document_content(document))


def test_a_pdf_is_stored_encrypted_and_reads_back_exactly(cast, settings):
    data = samples.pdf("Haemoglobin 13.2 g/dL")

    document = upload(cast, data)

    (stored,) = stored_files(settings)
    raw = stored.read_bytes()
    assert b"Haemoglobin" not in raw and b"%PDF" not in raw
    assert raw.startswith(envelope.MAGIC)
    assert content(document) == data
    assert (document.kind, document.content_type, document.size, document.metadata["pages"]) == ("pdf", "application/pdf", len(data), 1)
    assert document.text == "Haemoglobin 13.2 g/dL"
    event = AuditEvent.objects.get(action="record.document_uploaded")
    assert (event.actor, event.subject_user, event.metadata) == (cast["patient"], cast["patient"], {"basis": "owner", "kind": "pdf", "size": len(data)})


def test_sensitive_document_columns_are_not_plaintext(cast):
    upload(cast, samples.pdf("Haemoglobin 13.2 g/dL"), title="Blood test October")

    with connection.cursor() as cursor:
        cursor.execute("SELECT title, original_name, text FROM records_document")
        row = cursor.fetchone()
    assert all(value.startswith("gAAAAA") for value in row)
    assert not any("Blood" in v or "Haemoglobin" in v or "file.bin" in v for v in row)


def test_a_large_file_round_trips_through_chunked_encryption(cast):
    data = os.urandom(3 * envelope.CHUNK + 123)
    key, _wrapped = envelope.data_key_new()
    encrypted = io.BytesIO()

    envelope.encrypt_stream(key, io.BytesIO(data), encrypted)

    encrypted.seek(0)
    assert b"".join(envelope.decrypt_stream(key, encrypted)) == data


def test_a_truncated_or_altered_file_does_not_decrypt(cast):
    key, _wrapped = envelope.data_key_new()
    encrypted = io.BytesIO()
    envelope.encrypt_stream(key, io.BytesIO(os.urandom(2 * envelope.CHUNK + 5)), encrypted)
    whole = encrypted.getvalue()

    for broken in (whole[: envelope.HEADER + envelope.CHUNK + envelope.TAG], whole[:-1] + bytes([whole[-1] ^ 1])):
        with pytest.raises(envelope.EnvelopeError):
            b"".join(envelope.decrypt_stream(key, io.BytesIO(broken)))


def test_dicom_tags_are_indexed_without_identifying_data(cast):
    document = upload(cast, samples.dicom(), title="CT chest")

    assert document.kind == "dicom"
    assert document.metadata == {"modality": "CT", "study_date": "20261020", "body_part": "CHEST", "study_description": "CT chest without contrast", "series_description": "", "frames": 1, "rows": 4, "columns": 4}
    flat = str(document.metadata) + document.text
    assert not any(secret in flat for secret in ("Verma", "HOSP-99812", "19850214", "City General", "Raman"))


def test_image_dimensions_are_recorded(cast):
    document = upload(cast, samples.png(640, 480))

    assert (document.kind, document.metadata) == ("png", {"width": 640, "height": 480, "frames": 1})


@pytest.mark.parametrize(
    ("data", "code", "message"),
    [
        (samples.EICAR, "REC_013", "The file contains a virus test signature (EICAR)."),
        (samples.WINDOWS_EXE, "REC_013", "The file is a Windows executable, not a document."),
        (b"\x7fELF\x02\x01\x01" + bytes(100), "REC_013", "The file is a Linux executable, not a document."),
        (b"#!/bin/sh\nrm -rf /\n", "REC_013", "The file is a script, not a document."),
        (samples.pdf(extra_catalog=samples.JAVASCRIPT_PDF_CATALOG), "REC_013", "PDFs with scripts, actions or embedded files are not accepted."),
        (samples.pdf(extra_catalog="/OpenAction << /S /Launch /F (cmd.exe) >> "), "REC_013", "PDFs with scripts, actions or embedded files are not accepted."),
        (b"PK\x03\x04 not a document" + bytes(200), "REC_010", "Upload a PDF, a DICOM file or an image (JPEG, PNG, WebP, TIFF, GIF); this file's content is none of those."),
        (b"%PDF-1.4 broken", "REC_010", "The PDF is damaged or cannot be read."),
    ],
    ids=["eicar", "windows-exe", "elf", "script", "pdf-javascript", "pdf-launch", "zip", "broken-pdf"],
)
def test_refused_files_are_never_stored(cast, settings, data, code, message):
    with pytest.raises(ApplicationError) as refused:
        upload(cast, data)

    assert (refused.value.code, refused.value.fields) == (code, {"file": [message]})
    assert Document.objects.count() == 0
    assert stored_files(settings) == []
    assert AuditEvent.objects.count() == 0


def test_an_oversized_file_is_refused_before_anything_is_stored(cast, settings):
    settings.RECORDS_DOCUMENT_MAX_BYTES = 1024 * 1024
    data = samples.png() + bytes(1024 * 1024)

    with pytest.raises(ApplicationError) as refused:
        upload(cast, data)

    assert (refused.value.code, refused.value.message) == ("REC_011", "The file is larger than 1 MB.")
    assert Document.objects.count() == 0 and stored_files(settings) == []


def test_page_and_frame_limits(cast, settings):
    settings.RECORDS_DOCUMENT_MAX_PAGES = 2
    settings.RECORDS_DOCUMENT_MAX_FRAMES = 3

    with pytest.raises(ApplicationError) as pages:
        upload(cast, samples.pdf(pages=3))
    with pytest.raises(ApplicationError) as frames:
        upload(cast, samples.dicom(frames=4))

    assert (pages.value.message, frames.value.message) == ("The PDF has 3 pages; the limit is 2.", "The DICOM file has 4 frames; the limit is 3.")
    assert Document.objects.count() == 0 and stored_files(settings) == []


class FakeClamd:
    """clamd's INSTREAM protocol on 127.0.0.1: replies FOUND when the stream holds ``signature``."""

    def __init__(self, signature: bytes) -> None:
        self.signature, self.received = signature, []
        self.server = socket.create_server(("127.0.0.1", 0))
        self.port = self.server.getsockname()[1]
        threading.Thread(target=self.serve, daemon=True).start()

    def serve(self) -> None:
        while True:
            try:
                conn, _ = self.server.accept()
            except OSError:
                return
            with conn:
                command = b""
                while not command.endswith(b"\0"):
                    command += conn.recv(1)
                stream = b""
                while True:
                    (length,) = struct.unpack(">I", self._exactly(conn, 4))
                    if length == 0:
                        break
                    stream += self._exactly(conn, length)
                self.received.append((command, stream))
                conn.sendall(b"stream: Test.Signature FOUND\0" if self.signature in stream else b"stream: OK\0")

    @staticmethod
    def _exactly(conn, n: int) -> bytes:
        data = b""
        while len(data) < n:
            data += conn.recv(n - len(data))
        return data

    def close(self) -> None:
        self.server.close()


def test_clamd_scans_the_stream_and_its_verdict_refuses_a_file(cast, settings):
    clamd = FakeClamd(signature=b"Haemoglobin 99")
    settings.CLAMAV_URL = f"tcp://127.0.0.1:{clamd.port}"
    try:
        clean = samples.pdf("Haemoglobin 13.2")
        document = upload(cast, clean)
        with pytest.raises(ApplicationError) as refused:
            upload(cast, samples.pdf("Haemoglobin 99"))
    finally:
        clamd.close()

    assert [command for command, _ in clamd.received] == [b"zINSTREAM\0", b"zINSTREAM\0"]
    assert clamd.received[0][1] == clean
    assert (refused.value.code, refused.value.message) == ("REC_013", "The malware scanner refused the file (Test.Signature).")
    assert list(Document.objects.all()) == [document]


def test_an_unreachable_clamd_refuses_the_upload_rather_than_skipping_the_scan(cast, settings):
    probe = socket.create_server(("127.0.0.1", 0))
    port = probe.getsockname()[1]
    probe.close()
    settings.CLAMAV_URL = f"tcp://127.0.0.1:{port}"

    with pytest.raises(ApplicationError) as refused:
        upload(cast, samples.png())

    assert refused.value.code == "REC_012"
    assert Document.objects.count() == 0 and stored_files(settings) == []


def new_master_key(key_id: str) -> str:
    return f"{key_id}:{base64.urlsafe_b64encode(os.urandom(32)).decode()}"


def test_key_rotation_rewraps_every_data_key_and_the_old_key_can_go(cast, settings):
    old, new = new_master_key("k2025"), new_master_key("k2026")
    with override_settings(ENVELOPE_MASTER_KEYS=[old]):
        documents = [upload(cast, samples.pdf(f"Report {n}")) for n in range(3)]
        originals = [content(d) for d in documents]
    stored_before = {p: p.read_bytes() for p in stored_files(settings)}

    with override_settings(ENVELOPE_MASTER_KEYS=[new, old]):
        out = io.StringIO()
        call_command("records_rotate_keys", stdout=out)
        assert out.getvalue().strip() == "Re-wrapped 3 document key(s) under master key 'k2026'; every document key unwraps."

    with override_settings(ENVELOPE_MASTER_KEYS=[new]):  # the old master key is gone
        refreshed = [Document.objects.get(pk=d.pk) for d in documents]
        assert {d.key_id for d in refreshed} == {"k2026"}
        assert [content(d) for d in refreshed] == originals
    assert {p: p.read_bytes() for p in stored_files(settings)} == stored_before  # contents untouched


def test_a_document_whose_master_key_is_missing_does_not_decrypt(cast):
    with override_settings(ENVELOPE_MASTER_KEYS=[new_master_key("gone")]):
        document = upload(cast, samples.png())
    with override_settings(ENVELOPE_MASTER_KEYS=[new_master_key("other")]):
        with pytest.raises(envelope.EnvelopeError):
            content(document)


def noise_png(side: int = 720) -> bytes:
    """A PNG of random pixels: a few MB that do not compress, so it spans several chunks."""
    from PIL import Image

    out = io.BytesIO()
    Image.frombytes("RGB", (side, side), os.urandom(side * side * 3)).save(out, format="PNG", compress_level=0)
    return out.getvalue()


def test_documents_are_stored_encrypted_on_s3_and_stream_back(cast, settings):
    boto3 = pytest.importorskip("boto3")
    moto = pytest.importorskip("moto")
    data = noise_png()
    assert len(data) > envelope.CHUNK
    with moto.mock_aws():
        boto3.client("s3", region_name="us-east-1").create_bucket(Bucket="medimeet-records-test")
        settings.STORAGES = {
            **settings.STORAGES,
            "default": {"BACKEND": "storages.backends.s3.S3Storage", "OPTIONS": {"bucket_name": "medimeet-records-test", "region_name": "us-east-1", "access_key": "test", "secret_key": "test", "default_acl": "private", "querystring_auth": True, "file_overwrite": False}},
        }

        document = upload(cast, data)

        stored = boto3.client("s3", region_name="us-east-1").get_object(Bucket="medimeet-records-test", Key=document.file_name)["Body"].read()
        assert stored.startswith(envelope.MAGIC) and b"PNG" not in stored[:64]
        assert len(stored) == envelope.HEADER + len(data) + envelope.TAG * -(-len(data) // envelope.CHUNK)
        assert content(document) == data
