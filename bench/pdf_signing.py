"""PDF signing benchmark: what the platform's PAdES signature adds to each receipt or prescription.

Renders a receipt-sized document once with WeasyPrint (the real invoice template, filled with a
made-up receipt), then times N × ``pdf_render`` of it, N × ``pdf_sign`` (pyHanko, RSA-3072,
SHA-256, certifying signature; no timestamp authority) and N × ``pdf_signature_check`` (pyHanko
validation with the platform certificate as trust root; the document lookup is left out: no
database). A throwaway key is made for the run. Prints a Markdown table for docs/performance.md.

    .venv/bin/python bench/pdf_signing.py [--count 50]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from types import SimpleNamespace

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "medimeet.settings.test")

import django  # noqa: E402

django.setup()

from django.conf import settings  # noqa: E402
from django.utils import timezone  # noqa: E402

from medimeet.core.pdf import pdf_render, pdf_sign, pdf_signature_check, signing_certificate_create  # noqa: E402


def receipt_context() -> dict:
    invoice = SimpleNamespace(
        number="MM-2026-000123", verification_code="3F9A1C2B7D4E5F60", buyer_name="Asha Verma", currency="INR",
        seller={"name": "Dr. Priya Raman", "registration": "MCI-445566", "clinic": "Raman Clinic", "city": "Pune"},
        payment_method="Visa •••• 4242", tax_name="GST", tax_rate=18,
    )
    line = {"description": "Video consultation, 30 minutes", "quantity": 1, "unit": "₹500.00", "total": "₹500.00"}
    payment = SimpleNamespace(get_gateway_display="Razorpay", gateway_payment_id="pay_Nc2bqX8")
    return {
        "invoice": invoice, "payment": payment, "issued_local": timezone.now().strftime("%d %B %Y, %H:%M") + " (Asia/Kolkata)",
        "lines": [line], "subtotal": "₹423.73", "tax": "₹76.27", "total": "₹500.00", "refunded": "",
        "verify_url": "https://medimeet.example.com/receipts/verify/3F9A1C2B7D4E5F60/", "SITE_NAME": "MediMeet", "SITE_URL": "https://medimeet.example.com",
    }


def timed(function, count: int) -> tuple[list[float], object]:
    result, times = None, []
    for _ in range(count):
        start = time.perf_counter()
        result = function()
        times.append((time.perf_counter() - start) * 1000)
    return times, result


def row(name: str, times: list[float]) -> str:
    ordered = sorted(times)
    p95 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.95))]
    return f"| {name} | {statistics.median(times):.1f} | {p95:.1f} | {1000 / statistics.mean(times):.0f} |"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=50)
    args = parser.parse_args()

    directory = Path(tempfile.mkdtemp(prefix="medimeet-bench-signing-"))
    key_pem, cert_pem = signing_certificate_create(common_name="MediMeet document signing (bench)")
    (directory / "key.pem").write_bytes(key_pem)
    (directory / "cert.pem").write_bytes(cert_pem)
    settings.PDF_SIGNING_KEY_FILE, settings.PDF_SIGNING_CERT_FILE = str(directory / "key.pem"), str(directory / "cert.pem")

    context = receipt_context()
    unsigned = pdf_render("payments/invoice_pdf.html", context)
    signed = pdf_sign(unsigned, reason="warm-up", reference="")  # imports, key loading
    pdf_signature_check(signed)

    render_times, _ = timed(lambda: pdf_render("payments/invoice_pdf.html", context), args.count)
    sign_times, signed = timed(lambda: pdf_sign(unsigned, reason="MediMeet receipt MM-2026-000123", reference=""), args.count)
    check_times, check = timed(lambda: pdf_signature_check(signed), args.count)
    assert check.ours and check.intact and check.unchanged

    print(f"{args.count} runs each, one process, receipt of {len(unsigned) / 1024:.0f} KiB → {len(signed) / 1024:.0f} KiB signed\n")
    print("| Step | Median (ms) | p95 (ms) | Per second (one core) |")
    print("| --- | --- | --- | --- |")
    print(row("`pdf_render` (WeasyPrint, for comparison)", render_times))
    print(row("`pdf_sign` (pyHanko PAdES, RSA-3072)", sign_times))
    print(row("`pdf_signature_check` (pyHanko validation)", check_times))


if __name__ == "__main__":
    main()
