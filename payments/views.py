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
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_POST

from appointments.models import Appointment
from doctors.models import DoctorProfile, format_money
from doctors.views import doctor_required
from medimeet.core.api import page_throttled
from medimeet.core.errors import ApplicationError, form_add_service_errors

from . import selectors, services, subscriptions
from .forms import EarningsFilterForm, SandboxCardForm
from .gateways import sandbox
from .models import Invoice, Payment, Plan, Subscription, SubscriptionCharge
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
    return _sandbox_card_page(request, reference=reference, payment=payment, continue_url=reverse("payments:return", args=[payment.public_id]))


def _sandbox_card_page(request: HttpRequest, *, reference: str, payment, continue_url: str, plan: Plan | None = None) -> HttpResponse:
    """The sandbox's card form, for an appointment's payment or a plan's first charge: a paid
    submit goes on to ``continue_url`` (the return page, which asks the sandbox)."""
    form = SandboxCardForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            sandbox.sandbox_pay(reference=reference, card_number=form.cleaned_data["card_number"])
        except ApplicationError as exc:
            form_add_service_errors(form, exc)
        else:
            return redirect(continue_url)
    return render(request, "payments/sandbox.html", {"payment": payment, "plan": plan, "form": form, "continue_url": continue_url})


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


@page_throttled("verify")
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


# --- Care plans ----------------------------------------------------------------------------------


def _own_subscription(request: HttpRequest, subscription_id) -> Subscription:
    subscription = selectors.subscriptions_for(user=request.user).filter(public_id=subscription_id).first()
    if subscription is None:
        raise Http404
    return subscription


def _offered_plan(plan_id) -> Plan:
    plan = Plan.objects.offered().filter(public_id=plan_id).first()
    if plan is None:
        raise Http404
    return plan


@never_cache
@login_required
def plans(request: HttpRequest) -> HttpResponse:
    """Browse plans; the current plan with consultations left, next renewal, its invoices."""
    subscription = selectors.subscription_current(patient=request.user)
    balance = selectors.credit_balance_current(subscription)
    charges = list(subscription.charges.exclude(status=SubscriptionCharge.Status.VOIDED)[:24]) if subscription else []
    return render(
        request,
        "payments/plans.html",
        {"plans": list(Plan.objects.offered()), "subscription": subscription, "balance": balance, "charges": charges, "retry_days": settings.SUBSCRIPTION_RETRY_DAYS},
    )


@never_cache
@login_required
@require_POST
@csp_update(GATEWAY_CSP)
def plan_subscribe(request: HttpRequest, plan_id) -> HttpResponse:
    """Start the subscription and send the patient to pay the first period: the sandbox card
    page or Razorpay's hosted page (a URL), or the Stripe Payment Element here."""
    plan = _offered_plan(plan_id)
    try:
        subscription, checkout = subscriptions.plan_subscribe(patient=request.user, plan=plan, request=request)
    except ApplicationError as exc:
        messages.error(request, exc.message)
        return redirect("payments:plans")
    if checkout.kind == "sandbox_page":  # our own page: relative, so it works on any host
        return redirect("payments:plan-sandbox", reference=checkout.reference)
    if checkout.url:
        return redirect(checkout.url)
    return render(request, "payments/plan_pay.html", {"plan": plan, "subscription": subscription, "checkout": checkout})


@never_cache
@login_required
def plan_sandbox(request: HttpRequest, reference: str) -> HttpResponse:
    """The sandbox gateway's card page for a plan's first payment."""
    charge = (
        SubscriptionCharge.objects.select_related("subscription__plan")
        .filter(gateway_reference=reference, subscription__gateway="sandbox", subscription__patient=request.user, kind=SubscriptionCharge.Kind.FIRST)
        .first()
    )
    if charge is None:
        raise Http404
    continue_url = reverse("payments:plan-return", args=[charge.subscription.public_id])
    return _sandbox_card_page(request, reference=reference, payment=charge, continue_url=continue_url, plan=charge.subscription.plan)


@never_cache
@login_required
def plan_return(request: HttpRequest, subscription_id) -> HttpResponse:
    subscription = subscriptions.subscription_verify(subscription=_own_subscription(request, subscription_id), by=request.user)
    if subscription.status == Subscription.Status.ACTIVE:
        messages.success(request, _("Welcome to your care plan. Covered consultations are booked without paying."))
    elif subscription.status == Subscription.Status.INCOMPLETE:
        messages.info(request, _("Your payment is being processed. Your plan starts as soon as it completes."))
    else:
        messages.error(request, _("The payment did not go through, so the plan has not started. You can try again."))
    return redirect("payments:plans")


@never_cache
@login_required
def plan_change(request: HttpRequest, plan_id) -> HttpResponse:
    """Show the prorated amount of switching to another plan; confirm with a POST."""
    plan = _offered_plan(plan_id)
    subscription = selectors.subscription_current(patient=request.user)
    if subscription is None:
        raise Http404
    try:
        if request.method == "POST":
            subscriptions.subscription_change_plan(subscription=subscription, plan=plan, by=request.user, request=request)
            messages.success(request, _("Your plan is now %(plan)s.") % {"plan": plan.name})
            return redirect("payments:plans")
        quote = subscriptions.proration_quote(subscription=subscription, plan=plan, by=request.user)
    except ApplicationError as exc:
        messages.error(request, exc.message)
        return redirect("payments:plans")
    return render(
        request,
        "payments/plan_change.html",
        {
            "subscription": subscription,
            "plan": plan,
            "quote": quote,
            "due": format_money(abs(quote.amount_due_minor), quote.currency),
            "credit": format_money(quote.credit_minor, quote.currency),
            "charge": format_money(quote.charge_minor, quote.currency),
        },
    )


@never_cache
@login_required
@require_POST
def plan_cancel(request: HttpRequest, subscription_id) -> HttpResponse:
    """Cancel at the end of the period (``resume=1``: take that back)."""
    subscription = _own_subscription(request, subscription_id)
    cancel = request.POST.get("resume") != "1"
    try:
        subscriptions.subscription_set_cancel(subscription=subscription, by=request.user, cancel=cancel, request=request)
    except ApplicationError as exc:
        messages.error(request, exc.message)
    else:
        messages.success(request, _("Your plan ends at the end of this period.") if cancel else _("Your plan will renew as usual."))
    return redirect("payments:plans")
