"""Payment pages: pay (the right gateway's client), the sandbox gateway's own card page, the
return callback, payment history with receipts, public receipt verification, doctor earnings."""

from __future__ import annotations

from datetime import timedelta

from csp.decorators import csp_update
from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.utils.translation import gettext as _
from django.views.decorators.cache import never_cache

from appointments.models import Appointment
from doctors.models import DoctorProfile, format_money
from doctors.views import doctor_required
from medimeet.core.errors import ApplicationError, form_add_service_errors

from . import selectors, services
from .forms import EarningsFilterForm, SandboxCardForm
from .gateways import sandbox
from .models import Invoice, Payment
from .receipts import invoice_pdf

# Stripe.js and Razorpay Checkout must load from their own hosts (PCI); only this page allows them.
GATEWAY_CSP = {
    "script-src": ["https://js.stripe.com", "https://checkout.razorpay.com"],
    "frame-src": ["https://js.stripe.com", "https://hooks.stripe.com", "https://api.razorpay.com", "https://checkout.razorpay.com"],
    "connect-src": ["https://api.stripe.com", "https://lumberjack.razorpay.com", "https://api.razorpay.com"],
}


def _own_payment(request: HttpRequest, payment_id) -> Payment:
    payment = selectors.payments_for(user=request.user).filter(public_id=payment_id).first()
    if payment is None:
        raise Http404
    return payment


@never_cache
@login_required
@csp_update(GATEWAY_CSP)
def pay(request: HttpRequest, appointment_id) -> HttpResponse:
    """Start (or resume) paying for a booking and show the gateway's way to pay."""
    appointment = Appointment.objects.select_related("doctor__user", "service").filter(public_id=appointment_id, patient=request.user).first()
    if appointment is None:
        raise Http404
    if appointment.status != Appointment.Status.PENDING_PAYMENT:
        return redirect("appointments:detail", appointment_id=appointment.public_id)
    error = None
    payment = checkout = None
    try:
        payment = services.payment_create(patient=request.user, appointment=appointment, request=request)
        checkout = services.payment_checkout(payment)
    except ApplicationError as exc:
        error = exc
    return render(
        request,
        "payments/pay.html",
        {
            "appointment": appointment,
            "payment": payment,
            "checkout": checkout,
            "error": error,
            "price": format_money(appointment.price_minor, appointment.currency),
            "hold_expires_iso": appointment.hold_expires_at.isoformat(timespec="milliseconds") if appointment.hold_expires_at else "",
            "now_iso": timezone.now().isoformat(timespec="milliseconds"),
        },
    )


@never_cache
@login_required
def sandbox_pay(request: HttpRequest, reference: str) -> HttpResponse:
    """The sandbox gateway's hosted card page (what Stripe Checkout would be): test cards only."""
    payment = (
        Payment.objects.select_related("appointment__service", "doctor__user")
        .filter(gateway="sandbox", gateway_reference=reference, patient=request.user)
        .first()
    )
    if payment is None:
        raise Http404
    form = SandboxCardForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            sandbox.sandbox_pay(reference=reference, card_number=form.cleaned_data["card_number"])
        except ApplicationError as exc:
            form_add_service_errors(form, exc)
        else:
            return redirect("payments:return", payment_id=payment.public_id)
    return render(request, "payments/sandbox.html", {"payment": payment, "form": form})


@never_cache
@login_required
def payment_return(request: HttpRequest, payment_id) -> HttpResponse:
    """Where the patient lands after paying (the client callback): ask the gateway, then show
    the appointment. Razorpay Checkout posts its signed fields here."""
    payment = _own_payment(request, payment_id)
    client_data = {key: request.POST.get(key, "") for key in ("razorpay_order_id", "razorpay_payment_id", "razorpay_signature")}
    try:
        payment = services.payment_verify(payment=payment, by=request.user, client_data=client_data, request=request)
    except ApplicationError as exc:
        messages.error(request, exc.message)
        return redirect("payments:pay", appointment_id=payment.appointment.public_id)
    if payment.status == Payment.Status.SUCCEEDED:
        messages.success(request, _("Payment received. Your appointment is confirmed and the receipt is on its way to your inbox."))
    elif payment.status == Payment.Status.FAILED:
        messages.error(request, _("The payment did not go through: %(reason)s. You can try again.") % {"reason": payment.failure_message or _("the card was declined")})
        return redirect("payments:pay", appointment_id=payment.appointment.public_id)
    elif payment.status == Payment.Status.FLAGGED:
        messages.warning(request, _("We received a payment that needs a check by our team before the booking is confirmed. We will email you shortly."))
    else:
        messages.info(request, _("Your payment is being processed. The booking is confirmed as soon as it completes."))
    return redirect("appointments:detail", appointment_id=payment.appointment.public_id)


@never_cache
@login_required
def history(request: HttpRequest) -> HttpResponse:
    page = Paginator(selectors.payments_for(user=request.user).prefetch_related("refunds"), 20).get_page(request.GET.get("page"))
    return render(request, "payments/history.html", {"page": page})


@never_cache
@login_required
def receipt(request: HttpRequest, payment_id) -> HttpResponse:
    payment = _own_payment(request, payment_id)
    invoice = getattr(payment, "invoice", None)
    if invoice is None:
        raise Http404
    response = HttpResponse(invoice_pdf(invoice), content_type="application/pdf")
    response["Content-Disposition"] = f'attachment; filename="{invoice.number}.pdf"'
    return response


def verify_receipt(request: HttpRequest, code: str) -> HttpResponse:
    """Public: anyone holding a receipt checks it is genuine. Shows what we recorded, without
    the patient's name."""
    invoice = Invoice.objects.select_related("payment").filter(verification_code=code.upper()[:16]).first()
    return render(
        request,
        "payments/verify.html",
        {"invoice": invoice, "code": code, "total": format_money(invoice.total_minor, invoice.currency) if invoice else ""},
        status=200 if invoice else 404,
    )


@never_cache
@doctor_required
def earnings(request: HttpRequest, doctor: DoctorProfile) -> HttpResponse:
    today = timezone.now().date()
    start_date, end_date, group_by = today.replace(day=1) - timedelta(days=365), today, "month"
    form = EarningsFilterForm(request.GET or None, initial={"start_date": start_date, "end_date": end_date, "group_by": group_by})
    if form.is_valid():
        start_date = form.cleaned_data["start_date"] or start_date
        end_date = form.cleaned_data["end_date"] or end_date
        group_by = form.cleaned_data["group_by"] or group_by
    start, end = selectors.utc_days(start_date, end_date)
    rows = selectors.with_display(selectors.doctor_earnings(doctor=doctor, start=start, end=end, group_by=group_by))
    totals = selectors.totals_by_currency(rows)
    recent = Payment.objects.filter(doctor=doctor, status=Payment.Status.SUCCEEDED).select_related("appointment__service", "patient").order_by("-paid_at")[:10]
    return render(
        request,
        "payments/earnings.html",
        {
            "doctor": doctor,
            "form": form,
            "rows": rows,
            "totals": totals,
            "recent": recent,
            "start_date": start_date,
            "end_date": end_date,
            "group_by": group_by,
            "fee_percent": settings.PLATFORM_FEE_PERCENT,
        },
    )
