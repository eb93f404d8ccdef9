"""Receipts: the invoice PDF (WeasyPrint) and the payment/refund emails that carry it."""

from __future__ import annotations

from zoneinfo import ZoneInfo

from django.conf import settings
from django.urls import reverse
from django.utils.dateformat import format as date_format
from django.utils.translation import gettext

from doctors.models import format_money
from medimeet.core.notifications import Attachment, notify
from medimeet.core.pdf import SignedDocument, document_language, pdf_render, pdf_sign

from .models import Invoice, Payment, Refund


def invoice_verify_url(invoice: Invoice) -> str:
    return settings.SITE_URL + reverse("payments:verify-receipt", args=[invoice.verification_code])


def invoice_context(invoice: Invoice) -> dict:
    payment = invoice.payment
    tz = ZoneInfo(payment.patient.timezone or "UTC")
    money = lambda minor: format_money(minor, invoice.currency)  # noqa: E731
    return {
        "invoice": invoice,
        "payment": payment,
        "issued_local": date_format(invoice.issued_at.astimezone(tz), "j F Y, H:i") + f" ({tz})",
        "lines": [{**line, "unit": money(line["unit_minor"]), "total": money(line["total_minor"])} for line in invoice.lines],
        "subtotal": money(invoice.subtotal_minor),
        "tax": money(invoice.tax_minor),
        "total": money(invoice.total_minor),
        "refunded": money(payment.amount_refunded_minor) if payment.amount_refunded_minor else "",
        "verify_url": invoice_verify_url(invoice),
        "SITE_NAME": settings.SITE_NAME,
        "SITE_URL": settings.SITE_URL,
    }


def invoice_pdf(invoice: Invoice) -> bytes:
    """The receipt in its patient's language, whoever downloads it, signed by the platform."""
    with document_language(invoice.payment.patient):
        data = pdf_render("payments/invoice_pdf.html", invoice_context(invoice))
    return pdf_sign(data, reason=f"{settings.SITE_NAME} receipt {invoice.number}", reference=f"receipt:{invoice.verification_code}")


def receipt_signed_document(code: str) -> SignedDocument | None:
    """The receipt a signed PDF names (medimeet.core.pdf.pdf_signature_check)."""
    invoice = Invoice.objects.filter(verification_code=code).only("number", "verification_code").first()
    if invoice is None:
        return None
    return SignedDocument(kind="receipt", title=gettext("Receipt %(number)s") % {"number": invoice.number}, code=invoice.verification_code, verify_url=reverse("payments:verify-receipt", args=[invoice.verification_code]))


def receipt_email_send(*, payment_id: int) -> None:
    payment = Payment.objects.select_related("patient", "doctor__user", "appointment__service", "invoice").get(pk=payment_id)
    invoice = getattr(payment, "invoice", None)
    if invoice is None:
        return
    notify(
        user=payment.patient,
        event="payment.receipt",
        context={
            "invoice": invoice,
            "payment": payment,
            "verify_url": invoice_verify_url(invoice),
            "appointment_url": settings.SITE_URL + reverse("appointments:detail", args=[payment.appointment.public_id]),
        },
        attachments=[Attachment(f"{invoice.number}.pdf", invoice_pdf(invoice), "application/pdf")],
        dedupe_key=f"receipt:{invoice.pk}",  # the task may run twice (acks late): one receipt
    )


def refund_email_send(*, refund_id: int) -> None:
    refund = Refund.objects.select_related("payment__patient", "payment__doctor__user").get(pk=refund_id)
    payment = refund.payment
    notify(user=payment.patient, event="payment.refund", context={"refund": refund, "payment": payment, "payments_url": settings.SITE_URL + reverse("payments:history")}, dedupe_key=f"refund:{refund.pk}:{refund.status}")


def subscription_email_send(*, subscription_id: int, event: str, attempt: int = 0) -> None:
    """A renewal that failed (with when it is tried again) or a plan that ended."""
    from .models import Subscription

    subscription = Subscription.objects.select_related("plan", "patient").get(pk=subscription_id)
    notify(
        user=subscription.patient,
        event=event,
        context={"subscription": subscription, "plan": subscription.plan, "attempt": attempt, "plans_url": settings.SITE_URL + reverse("payments:plans")},
        dedupe_key=f"subscription:{subscription.pk}:{event}:{subscription.current_period_end and subscription.current_period_end.isoformat()}:{attempt}",
    )
