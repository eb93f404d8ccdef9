"""The platform's PDF signing key: the development certificate command, configuration errors,
and signing/checking where an event loop is already running."""

from __future__ import annotations

import asyncio
import stat

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.core.management import CommandError, call_command
from weasyprint import HTML

from medimeet.core.pdf import SignatureCheck, pdf_sign, pdf_signature_check


def plain_pdf() -> bytes:
    return HTML(string="<h1>Receipt MM-2026-999999</h1><p>Total paid ₹500.00</p>").write_pdf()


@pytest.fixture
def fresh_paths(settings, tmp_path):
    settings.PDF_SIGNING_KEY_FILE = str(tmp_path / "signing" / "key.pem")
    settings.PDF_SIGNING_CERT_FILE = str(tmp_path / "signing" / "cert.pem")
    return tmp_path / "signing"


@pytest.mark.django_db
def test_the_command_creates_a_private_key_and_a_certificate_that_sign_and_verify(fresh_paths):
    call_command("pdf_signing_cert")

    signed = pdf_sign(plain_pdf(), reason="test", reference="receipt:NOSUCHCODE")
    check = pdf_signature_check(signed)

    assert stat.S_IMODE((fresh_paths / "key.pem").stat().st_mode) == 0o600
    assert (fresh_paths / "cert.pem").read_bytes().startswith(b"-----BEGIN CERTIFICATE-----")
    # Ours and unchanged, but no receipt has that code.
    assert (check.verdict, check.ours, check.unchanged, check.reference) == (SignatureCheck.UNKNOWN_DOCUMENT, True, True, "receipt:NOSUCHCODE")
    assert check.signer == "MediMeet document signing (development), MediMeet"


def test_the_command_refuses_to_overwrite_without_force(fresh_paths):
    call_command("pdf_signing_cert")
    before = (fresh_paths / "cert.pem").read_bytes()

    with pytest.raises(CommandError, match="already exist"):
        call_command("pdf_signing_cert")
    call_command("pdf_signing_cert", "--if-missing")
    unchanged = (fresh_paths / "cert.pem").read_bytes()
    call_command("pdf_signing_cert", "--force")

    assert unchanged == before
    assert (fresh_paths / "cert.pem").read_bytes() != before


@pytest.mark.django_db
def test_documents_signed_before_a_key_rotation_still_verify_with_the_previous_certificate(fresh_paths, settings, tmp_path):
    call_command("pdf_signing_cert")
    old_cert = (fresh_paths / "cert.pem").read_bytes()
    signed = pdf_sign(plain_pdf(), reason="test", reference="receipt:NOSUCHCODE")
    call_command("pdf_signing_cert", "--force")

    before = pdf_signature_check(signed).ours
    (tmp_path / "previous.pem").write_bytes(old_cert)
    settings.PDF_SIGNING_PREVIOUS_CERTS_FILE = str(tmp_path / "previous.pem")

    assert (before, pdf_signature_check(signed).ours) == (False, True)


def test_signing_without_a_key_names_the_command_to_run(fresh_paths):
    with pytest.raises(ImproperlyConfigured, match="manage.py pdf_signing_cert"):
        pdf_sign(plain_pdf(), reason="test", reference="receipt:X")


def test_an_unsigned_pdf_and_garbage_are_refused_with_their_codes():
    from medimeet.core.errors import ApplicationError

    codes = []
    for data in (plain_pdf(), b"not a pdf", b"%PDF-1.7 truncated"):
        with pytest.raises(ApplicationError) as caught:
            pdf_signature_check(data)
        codes.append(caught.value.code)

    assert codes == ["SIGN_003", "SIGN_001", "SIGN_001"]


def test_signing_and_checking_work_where_an_event_loop_is_running():
    async def inside_a_loop() -> str:
        return pdf_signature_check(pdf_sign(plain_pdf(), reason="test", reference="")).verdict

    assert asyncio.run(inside_a_loop()) == SignatureCheck.UNKNOWN_DOCUMENT


@pytest.fixture
def local_tsa():
    """An RFC 3161 timestamp authority on 127.0.0.1 (pyHanko's test TSA behind a real HTTP server)."""
    import threading
    from datetime import UTC, datetime, timedelta
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    from asn1crypto import tsp
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import rsa
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
    from pyhanko.keys import load_certs_from_pemder_data, load_private_key_from_pemder_data
    from pyhanko.sign.timestamps.dummy_client import DummyTimeStamper

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Test TSA")])
    now = datetime.now(UTC)
    cert = (
        x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key()).serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(days=3650)).not_valid_after(now + timedelta(days=3650))
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.TIME_STAMPING]), critical=True)
        .sign(key, hashes.SHA256())
    )  # fmt: skip
    stamper = DummyTimeStamper(
        tsa_cert=next(iter(load_certs_from_pemder_data(cert.public_bytes(serialization.Encoding.PEM)))),
        tsa_key=load_private_key_from_pemder_data(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()), passphrase=None),
    )
    requests = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):
            request = tsp.TimeStampReq.load(self.rfile.read(int(self.headers["Content-Length"])))
            requests.append(self.headers["Content-Type"])
            body = stamper.request_tsa_response(request).dump()
            self.send_response(200)
            self.send_header("Content-Type", "application/timestamp-reply")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}/tsr", requests
    server.shutdown()


def test_with_a_timestamp_authority_each_signature_carries_its_timestamp(settings, local_tsa):
    from medimeet.core.tests.signed_pdfs import pyhanko_status

    settings.PDF_SIGNING_TSA_URL, requests = local_tsa

    signed = pdf_sign(plain_pdf(), reason="test", reference="")
    status = pyhanko_status(signed)

    # Two requests: pyHanko sizes the signature container with a first timestamp, then signs.
    assert requests == ["application/timestamp-query"] * 2
    assert status.timestamp_validity is not None and status.timestamp_validity.intact and status.timestamp_validity.valid
    assert pdf_signature_check(signed).verdict == SignatureCheck.UNKNOWN_DOCUMENT  # ours and unchanged (no document for "")
