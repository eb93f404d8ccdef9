"""Reads about money: payment history, a doctor's earnings and staff finance reports.

Every report aggregates in the database, grouped by currency as well as the chosen key (amounts
in different currencies are never added together). The platform keeps its fee only on what was
not refunded: ``fee kept = fee − fee × refunded / amount`` per payment, so a fully refunded
consultation earns nobody anything.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from decimal import ROUND_HALF_UP, Decimal

from django.db.models import Count, ExpressionWrapper, F, IntegerField, Q, QuerySet, Sum
from django.db.models.functions import Coalesce, TruncDay, TruncMonth, TruncWeek

from accounts.models import User
from doctors.models import DoctorProfile, format_money
from medimeet.core import sql
from medimeet.core.roles import staff_can

from .models import CreditBalance, CreditUse, Payment, Refund, Subscription

PERIODS = {"day": TruncDay, "week": TruncWeek, "month": TruncMonth}
GROUPS = ("month", "week", "day", "doctor", "gateway", "currency")


def payments_for(*, user: User) -> QuerySet[Payment]:
    """The payments a person may see: their own as a patient; every payment for finance staff."""
    queryset = Payment.objects.select_related("appointment__service", "doctor__user", "patient", "invoice")
    return queryset if staff_can(user, "payments.view_payment") else queryset.filter(patient=user)


def _fee_kept() -> ExpressionWrapper:
    return ExpressionWrapper(F("platform_fee_minor") - F("platform_fee_minor") * F("amount_refunded_minor") / F("amount_minor"), output_field=IntegerField())


def money_rows(queryset: QuerySet[Payment], *, group_by: str) -> list[dict]:
    """Rows of {key, currency, payments, gross_minor, refunded_minor, fee_minor, net_minor}."""
    queryset = queryset.filter(status=Payment.Status.SUCCEEDED)
    if group_by in PERIODS:
        queryset = queryset.annotate(key=PERIODS[group_by]("paid_at"))
    elif group_by == "doctor":
        queryset = queryset.annotate(key=F("doctor__slug"))
    else:
        queryset = queryset.annotate(key=F(group_by))
    rows = (
        queryset.annotate(fee_part=_fee_kept())
        .values("key", "currency")
        .annotate(
            payments=Count("pk"),
            gross_minor=Coalesce(Sum("amount_minor"), 0),
            refunded_minor=Coalesce(Sum("amount_refunded_minor"), 0),
            fee_minor=Coalesce(Sum("fee_part"), 0),
        )
        .order_by("key", "currency")
    )
    result = []
    for row in rows:
        key = row["key"]
        row["key"] = key.date().isoformat() if isinstance(key, datetime) else key
        row["net_minor"] = row["gross_minor"] - row["refunded_minor"] - row["fee_minor"]
        result.append(row)
    return result


MONEY_COLUMNS = ("gross", "refunded", "fee", "net")


def utc_days(first: date, last: date) -> tuple[datetime, datetime]:
    """The instants [first 00:00 UTC, the day after last 00:00 UTC) that reports cover."""
    return datetime.combine(first, time(0), tzinfo=UTC), datetime.combine(last + timedelta(days=1), time(0), tzinfo=UTC)


def with_display(rows: list[dict]) -> list[dict]:
    """Add the formatted amounts (``gross``, ``refunded``, ``fee``, ``net``) to report rows, for pages."""
    for row in rows:
        for column in MONEY_COLUMNS:
            row[column] = format_money(row[f"{column}_minor"], row["currency"])
    return rows


def totals_by_currency(rows: list[dict]) -> list[dict]:
    """One total row per currency (amounts in different currencies are never added)."""
    totals: dict[str, dict] = {}
    for row in rows:
        total = totals.setdefault(row["currency"], {"currency": row["currency"], "payments": 0, **{f"{c}_minor": 0 for c in MONEY_COLUMNS}})
        for field in ("payments", *(f"{c}_minor" for c in MONEY_COLUMNS)):
            total[field] += row[field]
    return with_display(list(totals.values()))


def finance_report(*, start: datetime, end: datetime, group_by: str) -> list[dict]:
    """Staff: revenue by period, doctor, gateway or currency, with refunds and the platform fee."""
    return money_rows(Payment.objects.filter(paid_at__gte=start, paid_at__lt=end), group_by=group_by)


def doctor_earnings(*, doctor: DoctorProfile, start: datetime, end: datetime, group_by: str = "month") -> list[dict]:
    return money_rows(Payment.objects.filter(doctor=doctor, paid_at__gte=start, paid_at__lt=end), group_by=group_by)


def refunds_waiting() -> QuerySet[Refund]:
    return (
        Refund.objects.filter(status=Refund.Status.REQUESTED).select_related("payment__patient", "payment__doctor__user", "requested_by").order_by("created_at")
    )


def payment_for_appointment(*, appointment) -> Payment | None:
    """The payment that counts for an appointment: the paid (or flagged) one, else the latest."""
    payments = Payment.objects.filter(appointment=appointment).select_related("invoice").prefetch_related("refunds").order_by("-created_at")
    return next((p for p in payments if p.status in (Payment.Status.SUCCEEDED, Payment.Status.FLAGGED)), None) or next(iter(payments), None)


def reconciliation(*, gateway: str, start: datetime, end: datetime) -> list[dict]:
    """Compare our payments created in [start, end) with the gateway's ledger for the same range
    and list every disagreement: missing on either side, status, amount, currency, refunds."""
    from .gateways import gateway_get

    theirs = {entry.reference: entry for entry in gateway_get(gateway).ledger(since=start, until=end)}
    ours = {p.gateway_reference: p for p in Payment.objects.filter(gateway=gateway, created_at__gte=start, created_at__lt=end).exclude(gateway_reference="")}
    status_of = {"pending": "pending", "succeeded": "succeeded", "flagged": "succeeded", "failed": "failed", "voided": "canceled"}
    problems = []
    for reference in sorted(set(ours) | set(theirs)):
        payment, entry = ours.get(reference), theirs.get(reference)
        if payment is None:
            problems.append(
                {"reference": reference, "problem": "missing locally", "ours": "", "theirs": f"{entry.status} {entry.amount_minor} {entry.currency}"}
            )
            continue
        if entry is None:
            problems.append(
                {
                    "reference": reference,
                    "problem": "missing at the gateway",
                    "ours": f"{payment.status} {payment.amount_minor} {payment.currency}",
                    "theirs": "",
                }
            )
            continue
        checks = [
            ("status", status_of[payment.status], entry.status),
            ("amount", payment.amount_minor, entry.amount_minor),
            ("currency", payment.currency, entry.currency.upper()),
            ("refunded", payment.amount_refunded_minor, entry.amount_refunded_minor),
        ]
        for name, mine, other in checks:
            if mine != other:
                problems.append({"reference": reference, "problem": f"{name} differs", "ours": str(mine), "theirs": str(other)})
    return problems


# --- Care plans ----------------------------------------------------------------------------------


def subscription_current(*, patient) -> Subscription | None:
    """The patient's live subscription (at most one), with its plan."""
    return Subscription.objects.live().filter(patient=patient).select_related("plan__doctor__user", "plan__specialization").first()


def subscriptions_for(*, user):
    """A patient's own subscriptions: the only ones they can see (others' ids → 404)."""
    return Subscription.objects.filter(patient=user).select_related("plan__specialization", "plan__doctor").prefetch_related("charges", "credit_balances")


def credit_balance_current(subscription: Subscription | None) -> CreditBalance | None:
    if subscription is None or subscription.current_period_start is None:
        return None
    return CreditBalance.objects.filter(subscription=subscription, period_start=subscription.current_period_start).first()


def entitled_subscription(patient) -> Subscription | None:
    """The patient's plan in an entitled status (active, or past due), with its plan and
    specialization; None for most patients, who have none. Every booking asks, so the common
    answer costs one lean read in SQL (its id through the one-live-plan index: no joins, no
    model, no query for the ORM to compile); the plan is read only when there is one."""
    statuses = Subscription.ENTITLED_STATUSES  # at most one row: one live plan per patient
    found = sql.rows(f"SELECT id FROM payments_subscription WHERE patient_id = %s AND status IN ({sql.placeholders(statuses)})", [patient.pk, *statuses])
    if not found:
        return None
    return Subscription.objects.select_related("plan__specialization").filter(pk=found[0][0]).first()


def plan_coverage(*, patient, doctor, now=None) -> CreditBalance | None:
    """The balance a booking with ``doctor`` would use now (for "Covered by your plan: 3 of 4
    left"), or None when the patient's plan does not cover it or nothing is left."""
    from django.utils import timezone

    if not getattr(patient, "is_authenticated", False):
        return None
    subscription = entitled_subscription(patient)
    if subscription is None or not subscription.is_entitled(now or timezone.now()) or not subscription.plan.covers(doctor=doctor):
        return None
    balance = credit_balance_current(subscription)
    if balance is None or (balance.remaining is not None and balance.remaining <= 0):
        return None
    return balance


def plan_credit_for(appointment) -> CreditUse | None:
    """The care-plan consultation a booking used (its balance, subscription and plan along)."""
    return CreditUse.objects.filter(appointment=appointment).select_related("balance__subscription__plan").first()


def subscriptions_report() -> list[dict]:
    """Subscriptions by plan (active and past due count: they are billed) and monthly recurring
    revenue per currency; a yearly plan counts for a twelfth of its price (rounded half up)."""
    rows = list(
        Subscription.objects.filter(status__in=Subscription.ENTITLED_STATUSES)
        .values("plan_id", "plan__name", "plan__currency", "plan__price_minor", "plan__period")
        .annotate(active=Count("pk", filter=Q(status="active")), past_due=Count("pk", filter=Q(status="past_due")))
        .order_by("plan__currency", "plan__name")
    )
    report = []
    for row in rows:
        months = 12 if row["plan__period"] == "year" else 1
        count = row["active"] + row["past_due"]
        mrr = int((Decimal(row["plan__price_minor"] * count) / months).quantize(Decimal(1), ROUND_HALF_UP))
        report.append(
            {"plan": row["plan__name"], "currency": row["plan__currency"], "period": row["plan__period"], "active": row["active"], "past_due": row["past_due"], "mrr_minor": mrr}
        )
    return report


def mrr_by_currency(report: list[dict] | None = None) -> dict[str, int]:
    totals: dict[str, int] = {}
    for row in subscriptions_report() if report is None else report:
        totals[row["currency"]] = totals.get(row["currency"], 0) + row["mrr_minor"]
    return totals
