"""Care plans API (/api/v1/subscriptions/): offered plans, subscribing (the checkout to open),
the patient's subscription with consultations left and its invoices, cancel/resume, the
prorated quote and the plan change; staff: subscriptions by plan and MRR.

A subscription is visible to its patient only; another patient's id is SUB_002 (404)."""

from __future__ import annotations

from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers, status
from rest_framework.response import Response
from rest_framework.views import APIView

from doctors.api import MoneySerializer, money
from medimeet.core.api import error_responses, staff_permission, valid_input
from medimeet.core.errors import ApplicationError

from . import selectors, subscriptions
from .api import CheckoutOutput
from .models import Plan, Subscription, SubscriptionCharge

# --- Serializers ----------------------------------------------------------------------------


class PlanOutput(serializers.Serializer):
    id = serializers.UUIDField()
    name = serializers.CharField()
    description = serializers.CharField()
    price = MoneySerializer()
    period = serializers.ChoiceField(choices=Plan.Period.choices)
    credits_per_period = serializers.IntegerField(allow_null=True, help_text="null: unlimited (with one doctor).")
    specialization = serializers.CharField(allow_null=True)
    doctor = serializers.CharField(allow_null=True, help_text="The doctor's slug when the plan is for one doctor.")
    rollover = serializers.BooleanField()


def plan_output(plan: Plan) -> dict:
    return {
        "id": plan.public_id,
        "name": plan.name,
        "description": plan.description,
        "price": money(plan.price_minor, plan.currency),
        "period": plan.period,
        "credits_per_period": plan.credits_per_period,
        "specialization": plan.specialization.name if plan.specialization_id else None,
        "doctor": plan.doctor.slug if plan.doctor_id else None,
        "rollover": plan.rollover,
    }


class CreditsOutput(serializers.Serializer):
    period_start = serializers.DateTimeField()
    period_end = serializers.DateTimeField()
    granted = serializers.IntegerField(allow_null=True, help_text="null: unlimited.")
    used = serializers.IntegerField()
    remaining = serializers.IntegerField(allow_null=True)


class ChargeOutput(serializers.Serializer):
    id = serializers.UUIDField()
    kind = serializers.ChoiceField(choices=SubscriptionCharge.Kind.choices)
    status = serializers.ChoiceField(choices=SubscriptionCharge.Status.choices)
    amount = MoneySerializer()
    period_start = serializers.DateTimeField(allow_null=True)
    period_end = serializers.DateTimeField(allow_null=True)
    attempts = serializers.IntegerField()
    paid_at = serializers.DateTimeField(allow_null=True)
    created_at = serializers.DateTimeField()


class SubscriptionOutput(serializers.Serializer):
    id = serializers.UUIDField()
    plan = PlanOutput()
    status = serializers.ChoiceField(choices=Subscription.Status.choices)
    gateway = serializers.CharField()
    current_period_start = serializers.DateTimeField(allow_null=True)
    current_period_end = serializers.DateTimeField(allow_null=True, help_text="The next renewal (or the end, when cancelling).")
    cancel_at_period_end = serializers.BooleanField()
    next_retry_at = serializers.DateTimeField(allow_null=True, help_text="Past due: when the renewal is tried again.")
    grace_until = serializers.DateTimeField(allow_null=True, help_text="Past due: the plan works until then.")
    balance = MoneySerializer(help_text="Credit from a downgrade, taken off the next renewal.")
    credits = CreditsOutput(allow_null=True)
    charges = ChargeOutput(many=True)
    created_at = serializers.DateTimeField()


def subscription_output(subscription: Subscription) -> dict:
    # From the prefetched rows (subscriptions_for): the same number of queries for any list.
    balance = next((b for b in subscription.credit_balances.all() if b.period_start == subscription.current_period_start), None)
    plan = subscription.plan
    return {
        "id": subscription.public_id,
        "plan": plan_output(plan),
        "status": subscription.status,
        "gateway": subscription.gateway,
        "current_period_start": subscription.current_period_start,
        "current_period_end": subscription.current_period_end,
        "cancel_at_period_end": subscription.cancel_at_period_end,
        "next_retry_at": subscription.next_retry_at,
        "grace_until": subscription.grace_until,
        "balance": money(subscription.balance_minor, plan.currency),
        "credits": None
        if balance is None
        else {"period_start": balance.period_start, "period_end": balance.period_end, "granted": balance.granted, "used": balance.used, "remaining": balance.remaining},
        "charges": [
            {
                "id": c.public_id, "kind": c.kind, "status": c.status, "amount": money(c.amount_minor, c.currency), "period_start": c.period_start,
                "period_end": c.period_end, "attempts": c.attempts, "paid_at": c.paid_at, "created_at": c.created_at,
            }
            for c in subscription.charges.all()
            if c.status != SubscriptionCharge.Status.VOIDED
        ],  # fmt: skip
        "created_at": subscription.created_at,
    }


class SubscribeInput(serializers.Serializer):
    plan = serializers.UUIDField()


class SubscribeOutput(serializers.Serializer):
    subscription = SubscriptionOutput()
    checkout = CheckoutOutput(help_text="Where the patient makes the first payment.")


class ProrationQuoteOutput(serializers.Serializer):
    plan = PlanOutput()
    credit = MoneySerializer(help_text="The unused time of the current plan.")
    charge = MoneySerializer(help_text="The new plan for the same time.")
    amount_due = MoneySerializer(help_text="Charged now; negative: kept as credit for the next renewal.")
    computed_by = serializers.ChoiceField(choices=["medimeet", "gateway"])


class ReportRowOutput(serializers.Serializer):
    plan = serializers.CharField()
    currency = serializers.CharField()
    period = serializers.CharField()
    active = serializers.IntegerField()
    past_due = serializers.IntegerField()
    mrr = MoneySerializer()


class SubscriptionReportOutput(serializers.Serializer):
    plans = ReportRowOutput(many=True)
    mrr = MoneySerializer(many=True, help_text="Monthly recurring revenue per currency (yearly plans count 1/12).")


# --- Views ----------------------------------------------------------------------------------


def _plan(plan_id) -> Plan:
    plan = Plan.objects.offered().filter(public_id=plan_id).first()
    if plan is None:
        raise ApplicationError("SUB_001")
    return plan


def _own(request, subscription_id) -> Subscription:
    subscription = selectors.subscriptions_for(user=request.user).filter(public_id=subscription_id).first()
    if subscription is None:
        raise ApplicationError("SUB_002")
    return subscription


class PlanListView(APIView):
    @extend_schema(tags=["subscriptions"], responses={200: PlanOutput(many=True), **error_responses(401)})
    def get(self, request):
        return Response([plan_output(plan) for plan in Plan.objects.offered()])


class SubscriptionListView(APIView):
    @extend_schema(tags=["subscriptions"], responses={200: SubscriptionOutput(many=True), **error_responses(401)})
    def get(self, request):
        return Response([subscription_output(s) for s in selectors.subscriptions_for(user=request.user)[:20]])

    @extend_schema(tags=["subscriptions"], request=SubscribeInput, responses={201: SubscribeOutput, **error_responses(400, 401, 404, 409, 503)})
    def post(self, request):
        data = valid_input(SubscribeInput, request.data)
        subscription, checkout = subscriptions.plan_subscribe(patient=request.user, plan=_plan(data["plan"]), request=request)
        subscription = selectors.subscriptions_for(user=request.user).get(pk=subscription.pk)
        checkout_data = {"kind": checkout.kind, "reference": checkout.reference, "public_key": checkout.public_key, "client_secret": checkout.client_secret, "url": checkout.url}
        return Response({"subscription": subscription_output(subscription), "checkout": checkout_data}, status=status.HTTP_201_CREATED)


class SubscriptionDetailView(APIView):
    @extend_schema(tags=["subscriptions"], responses={200: SubscriptionOutput, **error_responses(401, 404)})
    def get(self, request, subscription_id):
        return Response(subscription_output(_own(request, subscription_id)))


class SubscriptionVerifyView(APIView):
    @extend_schema(tags=["subscriptions"], request=None, responses={200: SubscriptionOutput, **error_responses(401, 404)})
    def post(self, request, subscription_id):
        """Back from the sandbox card page: ask the gateway about the first payment now."""
        subscriptions.subscription_verify(subscription=_own(request, subscription_id), by=request.user)
        return Response(subscription_output(_own(request, subscription_id)))


class SubscriptionCancelView(APIView):
    cancel = True

    @extend_schema(tags=["subscriptions"], request=None, responses={200: SubscriptionOutput, **error_responses(401, 404, 409, 503)})
    def post(self, request, subscription_id):
        subscriptions.subscription_set_cancel(subscription=_own(request, subscription_id), by=request.user, cancel=self.cancel, request=request)
        return Response(subscription_output(_own(request, subscription_id)))


class SubscriptionResumeView(SubscriptionCancelView):
    cancel = False


class ChangeInput(serializers.Serializer):
    plan = serializers.UUIDField()


class SubscriptionChangeView(APIView):
    @extend_schema(
        tags=["subscriptions"],
        parameters=[OpenApiParameter("plan", str, required=True, description="The plan to switch to (its id).")],
        responses={200: ProrationQuoteOutput, **error_responses(400, 401, 404, 409)},
    )
    def get(self, request, subscription_id):
        """The prorated amount of switching now, to show before confirming."""
        subscription = _own(request, subscription_id)  # someone else's id is 404 whatever the input
        data = valid_input(ChangeInput, request.query_params)
        quote = subscriptions.proration_quote(subscription=subscription, plan=_plan(data["plan"]), by=request.user)
        return Response(
            {
                "plan": plan_output(quote.plan),
                "credit": money(quote.credit_minor, quote.currency),
                "charge": money(quote.charge_minor, quote.currency),
                "amount_due": money(quote.amount_due_minor, quote.currency),
                "computed_by": "gateway" if quote.by_gateway else "medimeet",
            }
        )

    @extend_schema(tags=["subscriptions"], request=ChangeInput, responses={200: SubscriptionOutput, **error_responses(400, 401, 402, 404, 409, 503)})
    def post(self, request, subscription_id):
        subscription = _own(request, subscription_id)
        data = valid_input(ChangeInput, request.data)
        subscriptions.subscription_change_plan(subscription=subscription, plan=_plan(data["plan"]), by=request.user, request=request)
        return Response(subscription_output(_own(request, subscription_id)))


class SubscriptionReportView(APIView):
    permission_classes = [staff_permission("payments.view_subscription")]

    @extend_schema(tags=["admin"], responses={200: SubscriptionReportOutput, **error_responses(401, 403)})
    def get(self, request):
        rows = selectors.subscriptions_report()
        return Response(
            {
                "plans": [{**{k: row[k] for k in ("plan", "currency", "period", "active", "past_due")}, "mrr": money(row["mrr_minor"], row["currency"])} for row in rows],
                "mrr": [money(amount, currency) for currency, amount in selectors.mrr_by_currency(rows).items()],
            }
        )
