"""PDF documents (receipts, prescriptions): a template rendered by WeasyPrint, signed by the platform.

``pdf_render`` is called inside ``document_language(person)`` so that the words, dates and
numbers are in the language of the person the document is for (English or Hindi); the shared
style (``templates/includes/pdf_style.html``) carries a vendored Devanagari font, so a Hindi
document needs no system font.

``pdf_sign`` adds a PAdES baseline signature (pyHanko) with the platform's key: a certification
signature that permits no later change, so any edit after signing shows. The signed revision's
``/Keywords`` name the document (``medimeet:receipt:<verification code>``), which
``pdf_signature_check`` looks up to say which receipt or prescription a valid file is. Trust is
pinned: a signature counts as MediMeet's only when made with the configured certificate (or one
listed in ``PDF_SIGNING_PREVIOUS_CERTS_FILE``), whoever issued it.
"""

from __future__ import annotations

import asyncio
import hashlib
import io
import logging
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from pathlib import Path

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.template.loader import render_to_string
from django.utils import translation
from django.utils.module_loading import import_string

from .errors import ApplicationError

logger = logging.getLogger("medimeet.pdf")

SIGNATURE_FIELD = "MediMeetSignature"
KEYWORD_PREFIX = "medimeet:"
# Kinds of signed document and where each looks a verification code up (a function returning a
# ``SignedDocument`` or ``None``); core stays free of the apps' models.
SIGNED_DOCUMENT_KINDS = {
    "receipt": "payments.receipts.receipt_signed_document",
    "prescription": "records.prescriptions.prescription_signed_document",
}


def document_language(person):
    """``with document_language(patient):`` — their language while the document is made."""
    return translation.override(getattr(person, "language", "") or settings.LANGUAGE_CODE)


def pdf_render(template: str, context: dict) -> bytes:
    from weasyprint import HTML

    html = render_to_string(template, context)
    return HTML(string=html, base_url=str(settings.BASE_DIR)).write_pdf()


# --- Signing credentials --------------------------------------------------------------------


def signing_certificate_create(*, common_name: str = "MediMeet document signing (development)", days: int = 3650, valid_from: datetime | None = None) -> tuple[bytes, bytes]:
    """A new RSA key and a self-signed certificate for it (PEM), for the embedded default and
    tests. Production uses a certificate from a CA (docs/deployment.md)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import rsa
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    key = rsa.generate_private_key(public_exponent=65537, key_size=3072)
    name = x509.Name([
        x509.NameAttribute(NameOID.COMMON_NAME, common_name),
        x509.NameAttribute(NameOID.ORGANIZATION_NAME, settings.SITE_NAME),
    ])
    start = valid_from or datetime.now(UTC) - timedelta(hours=1)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(start + timedelta(days=days))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True, content_commitment=True, key_encipherment=False, data_encipherment=False,
                key_agreement=False, key_cert_sign=False, crl_sign=False, encipher_only=False, decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.EMAIL_PROTECTION]), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    key_pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    return key_pem, certificate.public_bytes(serialization.Encoding.PEM)


def _pem(inline: str, path: str, what: str, *, required: bool) -> bytes:
    if inline:
        return inline.encode()
    if not path:
        return b""
    try:
        return Path(path).read_bytes()
    except OSError as exc:
        if not required:
            return b""
        raise ImproperlyConfigured(
            f"The PDF signing {what} cannot be read from {path!r} ({exc.strerror}). Run `manage.py pdf_signing_cert` "
            f"for a development certificate, or set PDF_SIGNING_{what.upper()}_FILE (docs/deployment.md)."
        ) from exc


def _certificates(data: bytes) -> list:
    from pyhanko.keys import load_certs_from_pemder_data

    return list(load_certs_from_pemder_data(data)) if data.strip() else []


@dataclass(frozen=True)
class SigningCredentials:
    signer: object  # pyhanko.sign.signers.SimpleSigner
    certificate: object  # asn1crypto.x509.Certificate
    trusted: tuple  # our certificate and the previous ones: the only signers that count as MediMeet's


def _parsed_key_signer_class():
    from pyhanko.sign import signers

    class ParsedKeySigner(signers.SimpleSigner):
        """pyHanko's ``SimpleSigner`` parses the private key again for every signature, and
        cryptography re-validates an RSA key when it parses it: about 0.3 s for RSA-3072 on these
        machines, twice per document (size estimate, then the signature). This one parses it once
        per process (the signer is cached with the credentials); other mechanisms fall back."""

        def sign_raw(self, data: bytes, digest_algorithm: str) -> bytes:
            from cryptography.hazmat.primitives import serialization
            from cryptography.hazmat.primitives.asymmetric.ec import ECDSA
            from cryptography.hazmat.primitives.asymmetric.padding import PKCS1v15
            from pyhanko_certvalidator.util import get_pyca_cryptography_hash

            mechanism = self.get_signature_mechanism_for_digest(digest_algorithm).signature_algo
            if mechanism not in ("rsassa_pkcs1v15", "ecdsa"):
                return super().sign_raw(data, digest_algorithm)
            key = self.__dict__.get("_parsed_key")
            if key is None:
                key = self.__dict__["_parsed_key"] = serialization.load_der_private_key(self.signing_key.dump(), password=None)
            hash_algorithm = get_pyca_cryptography_hash(digest_algorithm)
            if mechanism == "ecdsa":
                return key.sign(data, ECDSA(hash_algorithm))
            return key.sign(data, PKCS1v15(), hash_algorithm)

    return ParsedKeySigner


@lru_cache(maxsize=4)
def _credentials_load(key_pem: bytes, cert_pem: bytes, chain_pem: bytes, previous_pem: bytes, passphrase: str) -> SigningCredentials:
    from pyhanko.keys import load_private_key_from_pemder_data
    from pyhanko_certvalidator.registry import SimpleCertificateStore

    try:
        key = load_private_key_from_pemder_data(key_pem, passphrase=passphrase.encode() or None)
        certificates = _certificates(cert_pem)
        chain = _certificates(chain_pem)
        previous = _certificates(previous_pem)
    except (ValueError, TypeError, OSError) as exc:
        raise ImproperlyConfigured(f"The PDF signing key or certificates are not valid PEM/DER: {exc}") from exc
    if len(certificates) != 1:
        raise ImproperlyConfigured("PDF_SIGNING_CERT must hold exactly one certificate (put intermediates in PDF_SIGNING_CHAIN).")
    certificate = certificates[0]
    signer = _parsed_key_signer_class()(signing_cert=certificate, signing_key=key, cert_registry=SimpleCertificateStore.from_certs([certificate, *chain]))
    return SigningCredentials(signer=signer, certificate=certificate, trusted=(certificate, *previous))


def signing_credentials() -> SigningCredentials:
    """The platform's signing key and certificate from settings (cached while the files are unchanged)."""
    return _credentials_load(
        _pem(settings.PDF_SIGNING_KEY, settings.PDF_SIGNING_KEY_FILE, "key", required=True),
        _pem(settings.PDF_SIGNING_CERT, settings.PDF_SIGNING_CERT_FILE, "cert", required=True),
        _pem(settings.PDF_SIGNING_CHAIN, settings.PDF_SIGNING_CHAIN_FILE, "chain", required=True),
        _pem("", settings.PDF_SIGNING_PREVIOUS_CERTS_FILE, "previous certificates", required=True),
        settings.PDF_SIGNING_KEY_PASSPHRASE,
    )


def _outside_event_loop(function, *args, **kwargs):
    """pyHanko's synchronous calls run an event loop of their own (``asyncio.run``): where one is
    already running in this thread (an async consumer, Playwright's sync API in tests) they run
    in a worker thread instead."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return function(*args, **kwargs)
    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(function, *args, **kwargs).result()


# --- Signing --------------------------------------------------------------------------------


def pdf_sign(data: bytes, *, reason: str, location: str = "", reference: str) -> bytes:
    """``data`` with the platform's PAdES signature (invisible, certifying: no change allowed
    after it). ``reference`` (``"receipt:<code>"``) is written into the signed revision's
    keywords, where ``pdf_signature_check`` finds it."""
    from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter
    from pyhanko.sign import fields, signers, timestamps

    credentials = signing_credentials()
    writer = IncrementalPdfFileWriter(io.BytesIO(data))
    writer.document_meta.keywords = [KEYWORD_PREFIX + reference]
    metadata = signers.PdfSignatureMetadata(
        field_name=SIGNATURE_FIELD,
        subfilter=fields.SigSeedSubFilter.PADES,
        md_algorithm="sha256",
        reason=reason,
        location=location or settings.SITE_URL,
        name=settings.SITE_NAME,
        certify=True,
        docmdp_permissions=fields.MDPPerm.NO_CHANGES,
    )
    timestamper = timestamps.HTTPTimeStamper(settings.PDF_SIGNING_TSA_URL, timeout=settings.PDF_SIGNING_TSA_TIMEOUT_SECONDS) if settings.PDF_SIGNING_TSA_URL else None
    signer = signers.PdfSigner(metadata, signer=credentials.signer, timestamper=timestamper)
    return _outside_event_loop(signer.sign_pdf, writer).getvalue()


# --- Verification ---------------------------------------------------------------------------


@dataclass(frozen=True)
class SignedDocument:
    """What a verification code names: e.g. kind "receipt", title "Receipt MM-2026-000123"."""

    kind: str
    title: str
    code: str
    verify_url: str
    current: bool = True  # False: e.g. a superseded prescription


@dataclass(frozen=True)
class SignatureCheck:
    VALID = "valid"  # signed by MediMeet, unchanged since, and it names a real document
    ALTERED = "altered"  # the signed bytes no longer match, or something was added after signing
    NOT_OURS = "not_ours"  # a signature, but not made with a MediMeet certificate
    UNKNOWN_DOCUMENT = "unknown_document"  # MediMeet's signature, but no document has the code

    verdict: str
    intact: bool  # the signed bytes hash to what was signed and the signature over them is sound
    unchanged: bool  # nothing but validation data was added after signing
    ours: bool  # made with one of the platform's certificates (and that certificate validates)
    signer: str
    signed_at: datetime | None
    reference: str
    document: SignedDocument | None

    @property
    def valid(self) -> bool:
        return self.verdict == self.VALID


def _document_lookup(reference: str) -> SignedDocument | None:
    kind, _, code = reference.partition(":")
    path = SIGNED_DOCUMENT_KINDS.get(kind)
    return import_string(path)(code) if path and code else None


def _signed_reference(reader, embedded) -> str:
    """The document reference in the keywords of the revision the signature covers (not in a
    later revision, which anyone could append)."""
    info = reader.get_historical_resolver(embedded.signed_revision).trailer_view.get("/Info")
    keywords = str(info.get_object().get("/Keywords", "")) if info is not None else ""
    for keyword in keywords.split(","):
        if keyword.strip().startswith(KEYWORD_PREFIX):
            return keyword.strip()[len(KEYWORD_PREFIX):]
    return ""


def _certificate_name(certificate) -> str:
    """"MediMeet document signing, MediMeet": the subject's common name and organisation."""
    subject = certificate.subject.native
    parts = [subject.get("common_name"), subject.get("organization_name")]
    return ", ".join(str(part) for part in parts if part) or certificate.subject.human_friendly


def _fingerprint(certificate) -> str:
    return hashlib.sha256(certificate.dump()).hexdigest()


def pdf_signature_check(data: bytes) -> SignatureCheck:
    """Check an uploaded PDF's signature with pyHanko against the platform's certificates.

    Bad input raises ``ApplicationError``: SIGN_002 too large, SIGN_001 not a PDF, SIGN_003 no
    signature. Otherwise the verdict says whether it is a valid MediMeet document, and which."""
    from pyhanko.pdf_utils.misc import PdfError
    from pyhanko.pdf_utils.reader import PdfFileReader
    from pyhanko.sign.validation import validate_pdf_signature
    from pyhanko.sign.validation.errors import SignatureValidationError
    from pyhanko.sign.validation.status import ModificationLevel, SignatureCoverageLevel
    from pyhanko_certvalidator import ValidationContext

    if len(data) > settings.PDF_VERIFY_MAX_BYTES:
        raise ApplicationError("SIGN_002")
    if not data.lstrip()[:5] == b"%PDF-":
        raise ApplicationError("SIGN_001")
    try:
        reader = PdfFileReader(io.BytesIO(data), strict=False)
        signatures = reader.embedded_signatures
    except (PdfError, ValueError, KeyError, TypeError, AttributeError, IndexError) as exc:
        raise ApplicationError("SIGN_001") from exc
    if not signatures:
        raise ApplicationError("SIGN_003")
    embedded = next((sig for sig in signatures if sig.field_name == SIGNATURE_FIELD), signatures[0])

    credentials = signing_credentials()
    trusted = {_fingerprint(cert) for cert in credentials.trusted}
    context = ValidationContext(trust_roots=list(credentials.trusted), allow_fetching=False)
    try:
        signer_certificate = embedded.signer_cert
        status = _outside_event_loop(validate_pdf_signature, embedded, context)
    except (SignatureValidationError, PdfError, ValueError, KeyError, TypeError, AttributeError) as exc:
        # A signature whose CMS cannot even be read proves nothing: treated as tampered with.
        logger.info("pdf_signature_check: unreadable signature (%s)", exc)
        return SignatureCheck(verdict=SignatureCheck.ALTERED, intact=False, unchanged=False, ours=False, signer="", signed_at=None, reference="", document=None)

    intact = bool(status.intact and status.valid)
    ours = _fingerprint(signer_certificate) in trusted and bool(status.trusted)
    unchanged = status.coverage == SignatureCoverageLevel.ENTIRE_FILE or (
        status.modification_level in (ModificationLevel.NONE, ModificationLevel.LTA_UPDATES) and status.docmdp_ok is not False
    )
    reference = _signed_reference(reader, embedded) if intact else ""
    document = _document_lookup(reference) if intact and ours and reference else None
    if not intact or (ours and not unchanged):
        verdict = SignatureCheck.ALTERED
    elif not ours:
        verdict = SignatureCheck.NOT_OURS
    elif document is None:
        verdict = SignatureCheck.UNKNOWN_DOCUMENT
    else:
        verdict = SignatureCheck.VALID
    return SignatureCheck(
        verdict=verdict, intact=intact, unchanged=unchanged, ours=ours,
        signer=_certificate_name(signer_certificate), signed_at=status.signer_reported_dt,
        reference=reference, document=document,
    )
