"""Small, valid sample files for the record tests (built in memory, no fixtures on disk)."""

from __future__ import annotations

import io

from PIL import Image


def pdf(text: str = "Haemoglobin 13.2 g/dL within reference range", *, extra_catalog: str = "", pages: int = 1) -> bytes:
    """A valid PDF whose pages show ``text`` (pypdf extracts it back)."""
    objects = []
    kids = " ".join(f"{3 + 2 * i} 0 R" for i in range(pages))
    objects.append(f"<< /Type /Catalog /Pages 2 0 R {extra_catalog}>>")
    objects.append(f"<< /Type /Pages /Kids [{kids}] /Count {pages} >>")
    font = 3 + 2 * pages
    for i in range(pages):
        objects.append(f"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] /Resources << /Font << /F1 {font} 0 R >> >> /Contents {4 + 2 * i} 0 R >>")
        stream = f"BT /F1 12 Tf 72 760 Td ({text}) Tj ET"
        objects.append(f"<< /Length {len(stream)} >>\nstream\n{stream}\nendstream")
    objects.append("<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>")
    return pdf_file(objects)


def pdf_file(objects: list[str]) -> bytes:
    """A PDF of ``objects`` (numbered from 1, the first the catalogue) with its cross-reference table."""
    out = io.BytesIO()
    out.write(b"%PDF-1.4\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(out.tell())
        out.write(f"{number} 0 obj\n{body}\nendobj\n".encode())
    xref = out.tell()
    out.write(f"xref\n0 {len(objects) + 1}\n0000000000 65535 f \n".encode())
    for offset in offsets:
        out.write(f"{offset:010d} 00000 n \n".encode())
    out.write(f"trailer\n<< /Size {len(objects) + 1} /Root 1 0 R >>\nstartxref\n{xref}\n%%EOF\n".encode())
    return out.getvalue()


def png(width: int = 64, height: int = 48) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (width, height), (200, 220, 240)).save(out, format="PNG")
    return out.getvalue()


def dicom(*, frames: int = 1, rows: int = 4, columns: int = 4, bits: int = 8, pixels: bytes | None = None) -> bytes:
    """A CT-like DICOM file with identifying tags that must never be indexed; small unless given
    a size and ``pixels`` (``frames`` x ``rows`` x ``columns`` samples of ``bits`` bits)."""
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.uid import ExplicitVRLittleEndian, generate_uid

    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = "1.2.840.10008.5.1.4.1.1.2"
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = Dataset()
    ds.file_meta = meta
    ds.SOPClassUID = meta.MediaStorageSOPClassUID
    ds.SOPInstanceUID = meta.MediaStorageSOPInstanceUID
    ds.PatientName = "Verma^Asha"
    ds.PatientID = "HOSP-99812"
    ds.PatientBirthDate = "19850214"
    ds.InstitutionName = "City General Hospital"
    ds.ReferringPhysicianName = "Raman^Priya"
    ds.Modality = "CT"
    ds.StudyDate = "20261020"
    ds.BodyPartExamined = "CHEST"
    ds.StudyDescription = "CT chest without contrast"
    ds.Rows, ds.Columns = rows, columns
    ds.BitsAllocated, ds.BitsStored, ds.HighBit = bits, bits, bits - 1
    ds.SamplesPerPixel, ds.PhotometricInterpretation, ds.PixelRepresentation = 1, "MONOCHROME2", 0
    if frames > 1:
        ds.NumberOfFrames = frames
    ds.PixelData = bytes(rows * columns * bits // 8 * frames) if pixels is None else pixels
    out = io.BytesIO()
    ds.save_as(out, enforce_file_format=True)
    return out.getvalue()


EICAR = b"X5O!P%@AP[4\\PZX54(P^)7CC)7}$EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*"
WINDOWS_EXE = b"MZ\x90\x00\x03\x00\x00\x00\x04\x00\x00\x00\xff\xff" + bytes(200)
JAVASCRIPT_PDF_CATALOG = "/OpenAction << /S /JavaScript /JS (app.alert('hi')) >> "


def scanned_png(text: str = "CHOLESTEROL 5.2 MMOL") -> bytes:
    """A 'scanned' page: black text on white, large enough for Tesseract."""
    from PIL import ImageDraw, ImageFont

    image = Image.new("RGB", (1000, 160), "white")
    ImageDraw.Draw(image).text((30, 40), text, fill="black", font=ImageFont.load_default(size=56))
    out = io.BytesIO()
    image.save(out, format="PNG")
    return out.getvalue()


def scanned_pdf(text: str = "CHOLESTEROL 5.2 MMOL") -> bytes:
    """An image-only PDF (no text layer), as a scanner makes."""
    out = io.BytesIO()
    Image.open(io.BytesIO(scanned_png(text))).save(out, format="PDF")
    return out.getvalue()


def outlined_pdf(text: str = "CHOLESTEROL 5.2 MMOL") -> bytes:
    """A PDF with no text layer and no image: the text is drawn as filled rectangles (one per run
    of dark pixels of the rendered text), as "outline fonts" or some scanners' vector output do.
    Only rendering the page shows it; there is no embedded image to extract."""
    scan = Image.open(io.BytesIO(scanned_png(text))).convert("L")
    width, height = scan.size
    pixels = scan.load()
    rects = []
    for y in range(height):
        x = 0
        while x < width:
            if pixels[x, y] < 128:
                start = x
                while x < width and pixels[x, y] < 128:
                    x += 1
                rects.append(f"{start} {height - y - 1} {x - start} 1 re")
            x += 1
    stream = "0 g\n" + "\n".join(rects) + "\nf"
    objects = [
        "<< /Type /Catalog /Pages 2 0 R >>",
        "<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        f"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 {width} {height}] /Contents 4 0 R >>",
        f"<< /Length {len(stream)} >>\nstream\n{stream}\nendstream",
    ]
    return pdf_file(objects)
