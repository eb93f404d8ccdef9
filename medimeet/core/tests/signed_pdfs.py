"""Ways to forge or tamper with a signed PDF, for the signature tests of receipts and prescriptions."""

from __future__ import annotations

import io
import re

from pyhanko.pdf_utils import generic
from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter
from pyhanko.pdf_utils.reader import PdfFileReader
from pyhanko.sign import signers
from pyhanko.sign.validation import validate_pdf_signature
from pyhanko_certvalidator import ValidationContext

from medimeet.core.pdf import signing_certificate_create, signing_credentials


def pyhanko_status(data: bytes):
    """pyHanko's own verdict on the first signature, trusting the platform's certificate."""
    signature = PdfFileReader(io.BytesIO(data)).embedded_signatures[0]
    return validate_pdf_signature(signature, ValidationContext(trust_roots=[signing_credentials().certificate], allow_fetching=False))


def signed_range(data: bytes) -> tuple[int, int, int, int]:
    return tuple(int(n) for n in re.search(rb"/ByteRange\s*\[\s*(\d+)\s+(\d+)\s+(\d+)\s+(\d+)\s*\]", data).groups())


def replace_in_signed_range(data: bytes, old: bytes, new: bytes) -> bytes:
    """The same file with ``old`` (inside the signed bytes) replaced by ``new`` of the same length."""
    assert len(old) == len(new)
    start, first_length, second_start, second_length = signed_range(data)
    position = data.index(old)
    assert start <= position < start + first_length or second_start <= position < second_start + second_length  # covered by the signature
    return data[:position] + new + data[position + len(old):]


def page_content_byte_flipped(data: bytes) -> bytes:
    """One byte changed inside the first page's (compressed) content stream; length unchanged."""
    reader = PdfFileReader(io.BytesIO(data))
    contents = reader.root["/Pages"]["/Kids"][0].get_object().raw_get("/Contents")
    reference = contents.reference if hasattr(contents, "reference") else contents[0].reference
    header = data.index(b"\n%d 0 obj" % reference.idnum) + 1
    stream = data.index(b"stream", header) + len(b"stream\n") + 40
    return data[:stream] + bytes([data[stream] ^ 0x01]) + data[stream + 1:]


def page_overwritten(data: bytes, text: str = "Total paid 5.00") -> bytes:
    """An incremental update after signing that draws new text on the first page (the signed
    revision stays byte for byte intact)."""
    writer = IncrementalPdfFileWriter(io.BytesIO(data))
    font = writer.add_object(generic.DictionaryObject({
        generic.pdf_name("/Type"): generic.pdf_name("/Font"),
        generic.pdf_name("/Subtype"): generic.pdf_name("/Type1"),
        generic.pdf_name("/BaseFont"): generic.pdf_name("/Helvetica"),
    }))
    stream = writer.add_object(generic.StreamObject(stream_data=f"q 1 1 1 rg 300 400 250 40 re f 0 0 0 rg BT /Forged 18 Tf 310 415 Td ({text}) Tj ET Q".encode()))
    resources = generic.DictionaryObject({generic.pdf_name("/Font"): generic.DictionaryObject({generic.pdf_name("/Forged"): font})})
    writer.add_stream_to_page(0, stream, resources=resources)
    output = io.BytesIO()
    writer.write(output)
    return output.getvalue()


def resigned_by_impostor(unsigned: bytes, *, reference: str) -> bytes:
    """The same document signed with another self-signed key that even claims MediMeet's name."""
    from pyhanko.keys import load_certs_from_pemder_data, load_private_key_from_pemder_data
    from pyhanko.sign import fields

    key_pem, cert_pem = signing_certificate_create(common_name="MediMeet document signing")
    signer = signers.SimpleSigner(signing_cert=next(iter(load_certs_from_pemder_data(cert_pem))), signing_key=load_private_key_from_pemder_data(key_pem, passphrase=None), cert_registry=None)
    writer = IncrementalPdfFileWriter(io.BytesIO(unsigned))
    writer.document_meta.keywords = [f"medimeet:{reference}"]
    metadata = signers.PdfSignatureMetadata(field_name="MediMeetSignature", subfilter=fields.SigSeedSubFilter.PADES, md_algorithm="sha256", reason="MediMeet receipt")
    return signers.PdfSigner(metadata, signer=signer).sign_pdf(writer).getvalue()
