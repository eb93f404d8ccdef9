"""Payments API: create and verify payments, refunds and their approval, receipts, saved cards,
gateway webhooks, a doctor's earnings and staff finance reports.

A payment is visible to its patient and to staff; anyone else gets PAY_009 (not found). The
response has the same shape whichever gateway is used; ``checkout`` tells the client what to
open (Stripe client secret, Razorpay order, or the sandbox page).
"""

from __future__ import annotations

import csv
import io
from datetime import timedelta

from django.http import HttpResponse
from django.utils import timezone
from django.utils.translation import gettext
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import serializers, status
from rest_framework.permissions import AllowAny
from rest_framework.response import Response
from rest_framework.views import APIView

from appointments.models import Appointment
from doctors.api import IsDoctor, MoneySerializer, money
from medimeet.core.api import StandardPagination, error_responses, staff_permission, valid_input
from medimeet.core.errors import ApplicationError

from . import selectors, services
from .gateways import GATEWAY_NAMES
from .models import Payment, Refund, SavedCard
from .receipts import invoice_pdf, invoice_verify_url

IDEMPOTENCY_HEADER = OpenApiParameter(
    "Idempotency-Key",
    str,
    OpenApiParameter.HEADER,
    required=False,
    description="Retrying with the same key replays the same result and never charges or refunds twice.",
)

# --- Serializers ----------------------------------------------------------------------------


class CheckoutOutput(serializers.Serializer):
    kind = serializers.ChoiceField(choices=["sandbox_page", "stripe_payment_intent", "razorpay_order", "razorpay_subscription"])
    reference = serializers.CharField(help_text="PaymentIntent id, Razorpay order id or sandbox reference.")
    public_key = serializers.CharField(help_text="Stripe publishable key or Razorpay key id (empty for the sandbox).")
    client_secret = serializers.CharField(help_text="Stripe only: confirm the PaymentIntent with Stripe.js.")
    url = serializers.CharField(help_text="Sandbox: the page where the patient pays; Razorpay subscriptions: its hosted page.")


class ReceiptOutput(serializers.Serializer):
    number = serializers.CharField()
    issued_at = serializers.DateTimeField()
    pdf_url = serializers.CharField()
    verify_url = serializers.CharField()


class CardOutput(serializers.Serializer):
    brand = serializers.CharField()
    last4 = serializers.CharField()


class PaymentOutput(serializers.Serializer):
    id = serializers.UUIDField()
    appointment = serializers.UUIDField()
    status = serializers.ChoiceField(choices=Payment.Status.choices)
    gateway = serializers.CharField()
    amount = MoneySerializer()
    refunded = MoneySerializer()
    refundable = MoneySerializer()
    checkout = CheckoutOutput(allow_null=True, help_text="Only while the payment waits, and only for its patient.")
    card = CardOutput(allow_null=True)
    failure_code = serializers.CharField()
    failure_message = serializers.CharField()
    receipt = ReceiptOutput(allow_null=True)
    created_at = serializers.DateTimeField()
    paid_at = serializers.DateTimeField(allow_null=True)


def payment_output(payment: Payment, *, viewer) -> dict:
    checkout = None
    if payment.status == Payment.Status.PENDING and payment.patient_id == viewer.pk and payment.gateway_reference:
        checkout = services.payment_checkout(payment).__dict__
    invoice = getattr(payment, "invoice", None)
    return {
        "id": payment.public_id,
        "appointment": payment.appointment.public_id,
        "status": payment.status,
        "gateway": payment.gateway,
        "amount": money(payment.amount_minor, payment.currency),
        "refunded": money(payment.amount_refunded_minor, payment.currency),
        "refundable": money(payment.refundable_minor, payment.currency),
        "checkout": checkout,
        "card": {"brand": payment.card_brand, "last4": payment.card_last4} if payment.card_last4 else None,
        "failure_code": payment.failure_code,
        "failure_message": payment.failure_message,
        "receipt": {
            "number": invoice.number,
            "issued_at": invoice.issued_at,
            "pdf_url": f"/api/v1/payments/{payment.public_id}/receipt/",
            "verify_url": invoice_verify_url(invoice),
        }
        if invoice
        else None,
        "created_at": payment.created_at,
        "paid_at": payment.paid_at,
    }


class PaymentCreateInput(serializers.Serializer):
    appointment = serializers.UUIDField(help_text="An appointment of yours waiting for payment. The amount is its price; it is never taken from the request.")
    billing_country = serializers.RegexField(
        r"^[A-Za-z]{2}$", required=False, allow_blank=True, default="", help_text="ISO 3166-1 alpha-2; IN selects Razorpay."
    )
    save_card = serializers.BooleanField(default=False)


class VerifyInput(serializers.Serializer):
    razorpay_order_id = serializers.CharField(max_length=100, required=False, allow_blank=True, default="")
    razorpay_payment_id = serializers.CharField(max_length=100, required=False, allow_blank=True, default="")
    razorpay_signature = serializers.CharField(max_length=200, required=False, allow_blank=True, default="")


class RefundInput(serializers.Serializer):
    amount_minor = serializers.IntegerField(min_value=1, required=False, help_text="Leave out to refund everything that is left.")
    reason = serializers.CharField(max_length=500)


class RefundOutput(serializers.Serializer):
    id = serializers.UUIDField()
    payment = serializers.UUIDField()
    amount = MoneySerializer()
    status = serializers.ChoiceField(choices=Refund.Status.choices)
    source = serializers.ChoiceField(choices=Refund.Source.choices)
    reason = serializers.CharField()
    decision_note = serializers.CharField()
    failure_message = serializers.CharField()
    created_at = serializers.DateTimeField()
    decided_at = serializers.DateTimeField(allow_null=True)
    processed_at = serializers.DateTimeField(allow_null=True)


def refund_output(refund: Refund) -> dict:
    return {
        "id": refund.public_id,
        "payment": refund.payment.public_id,
        "amount": money(refund.amount_minor, refund.payment.currency),
        "status": refund.status,
        "source": refund.source,
        "reason": refund.reason,
        "decision_note": refund.decision_note,
        "failure_message": refund.failure_message,
        "created_at": refund.created_at,
        "decided_at": refund.decided_at,
        "processed_at": refund.processed_at,
    }


class DecisionInput(serializers.Serializer):
    note = serializers.CharField(max_length=500, required=False, allow_blank=True, default="")


class SavedCardOutput(serializers.Serializer):
    id = serializers.UUIDField(source="public_id")
    gateway = serializers.CharField()
    brand = serializers.CharField()
    last4 = serializers.CharField()
    exp_month = serializers.IntegerField(allow_null=True)
    exp_year = serializers.IntegerField(allow_null=True)


class ReportQuery(serializers.Serializer):
    start_date = serializers.DateField(required=False, help_text="First day (UTC); default: 30 days ago.")
    end_date = serializers.DateField(required=False, help_text="Last day (UTC, inclusive); default: today.")
    group_by = serializers.ChoiceField(choices=[(g, g) for g in selectors.GROUPS], default="month")
    export = serializers.ChoiceField(
        choices=[("json", "json"), ("csv", "csv")], default="json", help_text="csv: a file for accounting, amounts in minor units."
    )

    def validate(self, attrs: dict) -> dict:
        today = timezone.now().date()
        attrs.setdefault("end_date", today)
        attrs.setdefault("start_date", attrs["end_date"] - timedelta(days=30))
        if attrs["end_date"] < attrs["start_date"]:
            raise serializers.ValidationError({"end_date": [gettext("The range ends before it starts.")]})
        if (attrs["end_date"] - attrs["start_date"]).days > 3660:
            raise serializers.ValidationError({"start_date": [gettext("Ask for at most ten years at a time.")]})
        attrs["start"], attrs["end"] = selectors.utc_days(attrs["start_date"], attrs["end_date"])
        return attrs


class ReportRow(serializers.Serializer):
    key = serializers.CharField(allow_null=True, help_text="The period's first day, the doctor's slug, the gateway or the currency.")
    currency = serializers.CharField()
    payments = serializers.IntegerField()
    gross_minor = serializers.IntegerField()
    refunded_minor = serializers.IntegerField()
    fee_minor = serializers.IntegerField(help_text="Platform fee kept (on what was not refunded).")
    net_minor = serializers.IntegerField(help_text="What the doctor earns: gross − refunds − platform fee.")


class ReportOutput(serializers.Serializer):
    start_date = serializers.DateField()
    end_date = serializers.DateField()
    group_by = serializers.CharField()
    rows = ReportRow(many=True)


REPORT_COLUMNS = ["key", "currency", "payments", "gross_minor", "refunded_minor", "fee_minor", "net_minor"]


def report_csv(rows: list[dict], *, filename: str) -> HttpResponse:
    """A report as CSV for accounting (amounts in minor units, one row per group and currency)."""
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=REPORT_COLUMNS, extrasaction="ignore")
    writer.writeheader()
    writer.writerows(rows)
    response = HttpResponse(buffer.getvalue(), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{filename}.csv"'
    return response


# JSON, or with `export=csv` the same rows as a CSV attachment.
REPORT_RESPONSES = {200: ReportOutput, (200, "text/csv"): OpenApiTypes.STR, **error_responses(400, 401, 403)}


def report_response(params: dict, rows: list[dict], *, filename: str):
    if params["export"] == "csv":
        return report_csv(rows, filename=f"{filename}-{params['start_date']}-{params['end_date']}")
    return Response({"start_date": params["start_date"], "end_date": params["end_date"], "group_by": params["group_by"], "rows": rows})


# --- Helpers ---------------------------------------------------------------------------------


def _payment_for(request, payment_id) -> Payment:
    payment = selectors.payments_for(user=request.user).filter(public_id=payment_id).first()
    if payment is None:
        raise ApplicationError("PAY_009")
    return payment


# --- Views ---------------------------------------------------------------------------------


class PaymentListView(APIView):
    pagination_class = StandardPagination  # what drf-spectacular documents the 200 as: one page
    @extend_schema(tags=["payments"], responses={200: PaymentOutput(many=True), **error_responses(401)})
    def get(self, request):
        """Your payments (staff: everyone's), newest first."""
        paginator = self.pagination_class()
        page = paginator.paginate_queryset(selectors.payments_for(user=request.user), request, view=self)
        return paginator.get_paginated_response([payment_output(p, viewer=request.user) for p in page])

    @extend_schema(
        tags=["payments"],
        request=PaymentCreateInput,
        parameters=[IDEMPOTENCY_HEADER],
        responses={201: PaymentOutput, **error_responses(400, 401, 404, 409, 429, 503)},
    )
    def post(self, request):
        data = valid_input(PaymentCreateInput, request.data)
        appointment = Appointment.objects.filter(public_id=data["appointment"], patient=request.user).first()
        if appointment is None:
            raise ApplicationError("APPT_006")
        payment = services.payment_create(
            patient=request.user,
            appointment=appointment,
            billing_country=data["billing_country"],
            save_card=data["save_card"],
            idempotency_key=request.headers.get("Idempotency-Key", ""),
            request=request._request,
        )
        return Response(payment_output(_payment_for(request, payment.public_id), viewer=request.user), status=status.HTTP_201_CREATED)


class PaymentDetailView(APIView):
    @extend_schema(tags=["payments"], responses={200: PaymentOutput, **error_responses(401, 404)})
    def get(self, request, payment_id):
        return Response(payment_output(_payment_for(request, payment_id), viewer=request.user))


class PaymentVerifyView(APIView):
    @extend_schema(tags=["payments"], request=VerifyInput, responses={200: PaymentOutput, **error_responses(400, 401, 404, 503)})
    def post(self, request, payment_id):
        """The client callback after paying (Razorpay: send the three fields Checkout.js returns).
        The webhook confirms the payment too; whichever comes first wins, the other is a no-op."""
        data = valid_input(VerifyInput, request.data)
        payment = _payment_for(request, payment_id)
        services.payment_verify(payment=payment, by=request.user, client_data=data, request=request._request)
        return Response(payment_output(_payment_for(request, payment_id), viewer=request.user))


class PaymentReceiptView(APIView):
    @extend_schema(tags=["payments"], responses={(200, "application/pdf"): OpenApiTypes.BINARY, **error_responses(401, 404)})
    def get(self, request, payment_id):
        """The receipt PDF (once the payment succeeded)."""
        payment = _payment_for(request, payment_id)
        invoice = getattr(payment, "invoice", None)
        if invoice is None:
            raise ApplicationError("PAY_009", gettext("This payment has no receipt (it has not succeeded)."))
        response = HttpResponse(invoice_pdf(invoice), content_type="application/pdf")
        response["Content-Disposition"] = f'attachment; filename="{invoice.number}.pdf"'
        return response


class PaymentRefundsView(APIView):
    @extend_schema(tags=["payments"], responses={200: RefundOutput(many=True), **error_responses(401, 404)})
    def get(self, request, payment_id):
        payment = _payment_for(request, payment_id)
        return Response([refund_output(r) for r in payment.refunds.select_related("payment")])

    @extend_schema(
        tags=["payments"], request=RefundInput, parameters=[IDEMPOTENCY_HEADER], responses={201: RefundOutput, **error_responses(400, 401, 404, 409)}
    )
    def post(self, request, payment_id):
        """Ask for a refund (patient: of your own payment; staff: of any). It waits for a finance
        approver. Cancelling an appointment refunds by its policy without this."""
        data = valid_input(RefundInput, request.data)
        payment = _payment_for(request, payment_id)
        refund = services.refund_request(
            payment=payment,
            by=request.user,
            reason=data["reason"],
            amount_minor=data.get("amount_minor"),
            idempotency_key=request.headers.get("Idempotency-Key", ""),
            request=request._request,
        )
        return Response(refund_output(refund), status=status.HTTP_201_CREATED)


class SavedCardsView(APIView):
    @extend_schema(tags=["payments"], responses={200: SavedCardOutput(many=True), **error_responses(401)})
    def get(self, request):
        return Response(SavedCardOutput(SavedCard.objects.filter(user=request.user), many=True).data)


class SavedCardView(APIView):
    @extend_schema(tags=["payments"], responses={204: None, **error_responses(401, 404)})
    def delete(self, request, card_id):
        card = SavedCard.objects.filter(user=request.user, public_id=card_id).first()
        if card is None:
            raise ApplicationError("PAY_009", gettext("Card not found."))
        services.saved_card_delete(card=card, by=request.user, request=request._request)
        return Response(status=status.HTTP_204_NO_CONTENT)


class WebhookView(APIView):
    """Gateways post events here. Signatures are verified before anything is stored; the work
    is done by Celery, so the answer is quick. Duplicates are acknowledged and ignored."""

    permission_classes = [AllowAny]
    authentication_classes: list = []
    throttle_classes: list = []

    @extend_schema(
        tags=["payments"],
        request=OpenApiTypes.OBJECT,
        auth=[],
        parameters=[OpenApiParameter("gateway", str, OpenApiParameter.PATH, enum=list(GATEWAY_NAMES))],
        responses={200: OpenApiResponse(description='{"received": true, "duplicate": false}'), **error_responses(400, 404)},
    )
    def post(self, request, gateway: str):
        if gateway not in GATEWAY_NAMES:
            raise ApplicationError("REQ_004")
        headers = {key: value for key, value in request.headers.items()}
        _, created = services.webhook_receive(gateway_name=gateway, body=request.body, headers=headers)
        return Response({"received": True, "duplicate": not created})


class OwnEarningsView(APIView):
    permission_classes = [IsDoctor]

    @extend_schema(tags=["payments"], parameters=[ReportQuery], responses=REPORT_RESPONSES)
    def get(self, request):
        """Your earnings: paid consultations, refunds, platform fee and net, per period and currency."""
        params = valid_input(ReportQuery, request.query_params)
        rows = selectors.doctor_earnings(doctor=request.user.doctor_profile, start=params["start"], end=params["end"], group_by=params["group_by"])
        return report_response(params, rows, filename="earnings")


class FinanceReportView(APIView):
    permission_classes = [staff_permission("payments.view_payment")]

    @extend_schema(tags=["admin"], parameters=[ReportQuery], responses=REPORT_RESPONSES)
    def get(self, request):
        """Revenue by period, doctor, gateway or currency, with refunds and the platform fee;
        `export=csv` for accounting."""
        params = valid_input(ReportQuery, request.query_params)
        return report_response(params, selectors.finance_report(start=params["start"], end=params["end"], group_by=params["group_by"]), filename="finance")


class RefundQueueView(APIView):
    permission_classes = [staff_permission("payments.approve_refund")]  # the queue is the approvers' work
    pagination_class = StandardPagination  # what drf-spectacular documents the 200 as: one page

    @extend_schema(tags=["admin"], responses={200: RefundOutput(many=True), **error_responses(401, 403)})
    def get(self, request):
        """Refunds waiting for a finance approver, oldest first."""
        paginator = self.pagination_class()
        page = paginator.paginate_queryset(selectors.refunds_waiting(), request, view=self)
        return paginator.get_paginated_response([refund_output(r) for r in page])


class RefundDecisionView(APIView):
    permission_classes = [staff_permission("payments.approve_refund")]
    approve = True

    @extend_schema(tags=["admin"], request=DecisionInput, responses={200: RefundOutput, **error_responses(400, 401, 403, 404, 409)})
    def post(self, request, refund_id):
        data = valid_input(DecisionInput, request.data)
        refund = Refund.objects.select_related("payment").filter(public_id=refund_id).first()
        if refund is None:
            raise ApplicationError("PAY_011")
        refund = services.refund_decide(refund=refund, by=request.user, approve=self.approve, note=data["note"], request=request._request)
        return Response(refund_output(Refund.objects.select_related("payment").get(pk=refund.pk)))


class RefundRejectView(RefundDecisionView):
    approve = False
