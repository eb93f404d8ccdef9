"""Care plans: every write about subscriptions (the services of the subscription half of payments).

- ``plan_subscribe`` opens a subscription (incomplete) and its first charge at the gateway; the
  first payment (sandbox card page, Stripe invoice, Razorpay checkout) activates it through
  ``subscription_charge_apply`` (client return) or the webhook — once, under the row lock.
- Renewals: for the sandbox our beat task (``subscriptions_renew_due``) charges the saved card
  at the period's end; for Stripe and Razorpay their billing does, and their webhooks land in
  ``subscription_invoice_apply`` / ``subscription_state_apply``. A failed renewal starts
  dunning: past_due, retried after ``SUBSCRIPTION_RETRY_DAYS`` (default 1, 3, 5 days after the
  period's end), entitlements working until the last retry (grace), the patient told at each
  failure, expired after the last.
- Entitlements: ``credit_take`` inside the booking's transaction (a conditional update on the
  period's ``CreditBalance``, never past ``granted``: a check constraint is the last word);
  ``credits_return`` gives it back when the booking lapses or is cancelled with a full refund.
- Plan changes are prorated: by us for the sandbox (``proration_quote``), by the gateway for
  Stripe (``proration_behavior=always_invoice``) and Razorpay (its own proration on update).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal

from dateutil.relativedelta import relativedelta
from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import F, Q
from django.http import HttpRequest
from django.utils import timezone
from django.utils.translation import gettext

from accounts.models import User
from doctors.models import DoctorProfile
from medimeet.core.audit import audit_record
from medimeet.core.errors import ApplicationError
from medimeet.core.events import enqueue_on_commit

from . import selectors
from .gateways import GatewayUnavailable, base, gateway_get, gateway_name_for
from .models import CreditBalance, CreditUse, Plan, Subscription, SubscriptionCharge, SubscriptionEvent

logger = logging.getLogger("medimeet.payments")

SubStatus = Subscription.Status
Charge = SubscriptionCharge


def period_end_after(start: datetime, plan: Plan) -> datetime:
    return start + relativedelta(months=plan.months)


def retry_days() -> list[int]:
    return list(settings.SUBSCRIPTION_RETRY_DAYS)


def _transition(subscription: Subscription, to: str, *, note: str, now: datetime) -> None:
    """Change the status of a locked subscription, checked against the table and recorded."""
    if subscription.status == to:
        return
    if not subscription.can_transition_to(to):
        raise ApplicationError("SUB_004")
    SubscriptionEvent.objects.create(subscription=subscription, from_status=subscription.status, to_status=to, note=note[:300], at=now)
    audit_record(action=f"subscription.{to}", target=subscription, subject_user=subscription.patient, metadata={"from": subscription.status, "note": note[:120]})
    subscription.status = to
    if to in (SubStatus.CANCELLED, SubStatus.EXPIRED):
        subscription.ended_at = now
        subscription.next_retry_at = subscription.grace_until = None


def _lock(subscription: Subscription) -> Subscription:
    return Subscription.objects.select_for_update(of=("self",)).select_related("plan", "patient").get(pk=subscription.pk)


# --- Subscribing -----------------------------------------------------------------------------


def plan_subscribe(*, patient: User, plan: Plan, request: HttpRequest | None = None) -> tuple[Subscription, base.Checkout]:
    """Start a subscription to ``plan``: the patient pays the first period on the gateway's page.
    A patient has one plan at a time; an unpaid attempt for the same plan is resumed, one for
    another plan is dropped."""
    if patient.role != User.Role.PATIENT:
        raise ApplicationError("SUB_006", gettext("Care plans are for patient accounts."))
    if not plan.is_active:
        raise ApplicationError("SUB_001")
    try:
        gateway_name = gateway_name_for(currency=plan.currency)
    except GatewayUnavailable as exc:
        raise ApplicationError("PAY_008", gettext("Online payment is not available for this plan right now. Please try again later.")) from exc
    if (gateway_name == "stripe" and not plan.stripe_price_id) or (gateway_name == "razorpay" and not plan.razorpay_plan_id):
        logger.error("plan has no gateway price", extra={"plan": str(plan.public_id), "gateway": gateway_name})
        raise ApplicationError("SUB_006")
    now = timezone.now()
    with transaction.atomic():
        User.objects.select_for_update().filter(pk=patient.pk).first()  # one subscribe at a time per patient
        live = Subscription.objects.live().select_related("plan").filter(patient=patient).first()
        if live is not None and live.status != SubStatus.INCOMPLETE:
            raise ApplicationError("SUB_003")
        if live is not None and (live.plan_id != plan.pk or live.gateway != gateway_name):
            live = _lock(live)
            _transition(live, SubStatus.EXPIRED, note="Replaced by a new subscription before it was paid.", now=now)
            live.save()
            live.charges.filter(status=Charge.Status.PENDING).update(status=Charge.Status.VOIDED)
            live = None
        if live is None:
            subscription = Subscription.objects.create(patient=patient, plan=plan, gateway=gateway_name)
            SubscriptionEvent.objects.create(subscription=subscription, from_status="", to_status=SubStatus.INCOMPLETE, at=now)
            audit_record(action="subscription.created", actor=patient, target=subscription, subject_user=patient, request=request, metadata={"plan": plan.name})
        else:
            subscription = live
    gateway = gateway_get(gateway_name)
    customer_id = _customer_for(patient, gateway)
    try:
        started = gateway.subscription_start(subscription=subscription, customer_id=customer_id)
    except base.GatewayError as exc:
        logger.warning("subscription start failed", extra={"subscription": str(subscription.public_id), "gateway": gateway_name})
        raise ApplicationError("PAY_008") from exc
    with transaction.atomic():
        if started.reference:
            Subscription.objects.filter(pk=subscription.pk, gateway_reference="").update(gateway_reference=started.reference)
            subscription.gateway_reference = subscription.gateway_reference or started.reference
        if not subscription.charges.filter(kind=Charge.Kind.FIRST).exists():
            Charge.objects.create(
                subscription=subscription, kind=Charge.Kind.FIRST, amount_minor=plan.price_minor, currency=plan.currency, gateway_reference=started.charge_reference[:100]
            )
    return subscription, started.checkout


def _customer_for(user: User, gateway: base.PaymentGateway) -> str:
    from .services import _customer_for as payments_customer_for

    return payments_customer_for(user, gateway)


def subscription_verify(*, subscription: Subscription, by: User) -> Subscription:
    """The patient is back from the sandbox card page: ask the sandbox about the first charge
    and apply it (the webhook may have done it already: no harm)."""
    if subscription.patient_id != by.pk:
        raise ApplicationError("SUB_002")
    charge = subscription.charges.filter(kind=Charge.Kind.FIRST, status=Charge.Status.PENDING).exclude(gateway_reference="").first()
    if charge is not None and subscription.gateway == "sandbox":
        result = gateway_get("sandbox").subscription_fetch_charge(reference=charge.gateway_reference)
        subscription_charge_apply(charge=charge, result=result, source="client")
    subscription.refresh_from_db()
    return subscription


def subscription_charge_apply(*, charge: SubscriptionCharge, result: base.ChargeResult, source: str, now: datetime | None = None) -> SubscriptionCharge:
    """Apply the gateway's answer about one charge, once, under the subscription's lock: the
    first payment activates the plan, a renewal starts the next period, a failure starts or
    continues dunning. A second arrival (webhook after the client) changes nothing."""
    now = now or timezone.now()
    with transaction.atomic():
        subscription = _lock(charge.subscription)
        charge = Charge.objects.select_for_update().get(pk=charge.pk)
        if result.status == "pending" or charge.status != Charge.Status.PENDING:
            return charge
        if result.status == "succeeded":
            charge.status, charge.paid_at = Charge.Status.PAID, now
            charge.save(update_fields=["status", "paid_at", "updated_at"])
            if result.payment_method_token:
                subscription.payment_method = result.payment_method_token[:100]
            if charge.kind == Charge.Kind.FIRST:
                if subscription.status == SubStatus.INCOMPLETE:
                    _start_period(subscription, start=now, note=f"First payment received ({source}).", now=now)
            elif charge.kind == Charge.Kind.RENEWAL:
                _start_period(subscription, start=charge.period_start, note=f"Renewed ({source}).", now=now)
            subscription.save()
            return charge
        charge.status, charge.failure_message = Charge.Status.FAILED, (result.failure_message or result.failure_code)[:300]
        charge.save(update_fields=["status", "failure_message", "updated_at"])
        if charge.kind == Charge.Kind.FIRST and subscription.status == SubStatus.INCOMPLETE:
            _transition(subscription, SubStatus.EXPIRED, note="The first payment failed.", now=now)
            subscription.save()
        elif charge.kind == Charge.Kind.RENEWAL:
            _dunning_step(subscription, now=now, failure=charge.failure_message)
    return charge


def _start_period(subscription: Subscription, *, start: datetime, note: str, now: datetime, end: datetime | None = None) -> None:
    """Begin a paid period on a locked subscription: active, new credits (unused ones roll over
    only when the plan says so), dunning reset."""
    plan = subscription.plan
    previous = subscription.credit_balances.order_by("-period_start").first()
    carried = previous.remaining if (plan.rollover and previous is not None and previous.remaining and plan.credits_per_period) else 0
    end = end or period_end_after(start, plan)
    CreditBalance.objects.get_or_create(
        subscription=subscription,
        period_start=start,
        defaults={"period_end": end, "granted": None if plan.credits_per_period is None else plan.credits_per_period + carried},
    )
    subscription.current_period_start, subscription.current_period_end = start, end
    subscription.failed_attempts, subscription.next_retry_at, subscription.grace_until = 0, None, None
    _transition(subscription, SubStatus.ACTIVE, note=note, now=now)


def _dunning_step(subscription: Subscription, *, now: datetime, failure: str) -> None:
    """A renewal attempt failed (locked subscription): schedule the next retry and keep the
    entitlements until the last one, or expire after it. The patient hears about each."""
    days = retry_days()
    subscription.failed_attempts += 1
    anchor = subscription.current_period_end
    if subscription.failed_attempts > len(days):
        _transition(subscription, SubStatus.EXPIRED, note=f"Renewal failed {subscription.failed_attempts} times: {failure}", now=now)
        subscription.save()
        _notify(subscription, "subscription.ended")
        return
    subscription.next_retry_at = anchor + timedelta(days=days[subscription.failed_attempts - 1])
    subscription.grace_until = anchor + timedelta(days=days[-1])
    _transition(subscription, SubStatus.PAST_DUE, note=f"Renewal failed: {failure}", now=now)
    subscription.save()
    _notify(subscription, "subscription.payment_failed", attempt=subscription.failed_attempts)


def _notify(subscription: Subscription, event: str, **extra) -> None:
    from .tasks import notify_subscription

    enqueue_on_commit(notify_subscription, subscription_id=subscription.pk, event=event, attempt=extra.get("attempt", 0))


# --- Renewals and dunning (sandbox: driven by the beat task) ----------------------------------


def subscriptions_renew_due(*, now: datetime | None = None) -> int:
    """Every hour (beat): sandbox subscriptions whose period ended (or whose retry is due) are
    renewed, retried, ended at the patient's request, or expired. Idempotent."""
    now = now or timezone.now()
    due = Subscription.objects.filter(gateway="sandbox").filter(
        Q(status=SubStatus.ACTIVE, current_period_end__lte=now) | Q(status=SubStatus.PAST_DUE, next_retry_at__lte=now)
    )
    count = 0
    for subscription_id in due.values_list("pk", flat=True)[:500]:
        subscription_renew(subscription_id=subscription_id, now=now)
        count += 1
    # Incomplete subscriptions nobody paid for in a day are dropped.
    for stale in Subscription.objects.filter(status=SubStatus.INCOMPLETE, created_at__lte=now - timedelta(days=1)).values_list("pk", flat=True)[:500]:
        with transaction.atomic():
            subscription = _lock(Subscription(pk=stale))
            if subscription.status == SubStatus.INCOMPLETE:
                _transition(subscription, SubStatus.EXPIRED, note="The first payment was never made.", now=now)
                subscription.save()
                subscription.charges.filter(status=Charge.Status.PENDING).update(status=Charge.Status.VOIDED)
    return count


def subscription_renew(*, subscription_id: int, now: datetime | None = None) -> Subscription:
    """Renew one sandbox subscription whose period ended, or retry its failed renewal."""
    now = now or timezone.now()
    with transaction.atomic():
        subscription = _lock(Subscription(pk=subscription_id))
        due = (subscription.status == SubStatus.ACTIVE and subscription.current_period_end <= now) or (
            subscription.status == SubStatus.PAST_DUE and subscription.next_retry_at is not None and subscription.next_retry_at <= now
        )
        if not due:
            return subscription
        if subscription.cancel_at_period_end:
            _transition(subscription, SubStatus.CANCELLED, note="Cancelled at the end of the period.", now=now)
            subscription.save()
            _notify(subscription, "subscription.ended")
            return subscription
        plan = subscription.plan
        amount = max(plan.price_minor - subscription.balance_minor, 0)
        used_balance = plan.price_minor - amount
        charge, _ = Charge.objects.get_or_create(
            subscription=subscription,
            kind=Charge.Kind.RENEWAL,
            period_start=subscription.current_period_end,
            defaults={"amount_minor": amount, "currency": plan.currency, "period_end": period_end_after(subscription.current_period_end, plan)},
        )
        if charge.status == Charge.Status.FAILED:  # a retry of the same invoice
            charge.status = Charge.Status.PENDING
        charge.attempts += 1
        charge.save(update_fields=["status", "attempts", "updated_at"])
        if used_balance:
            Subscription.objects.filter(pk=subscription.pk).update(balance_minor=F("balance_minor") - used_balance)
            subscription.balance_minor -= used_balance
    if amount == 0:
        result = base.ChargeResult(status="succeeded", amount_minor=0, currency=plan.currency)
    else:
        try:
            result = gateway_get(subscription.gateway).subscription_charge(
                subscription=subscription, amount_minor=amount, idempotency_key=f"renewal-{charge.public_id}-{charge.attempts}"
            )
        except base.GatewayError as exc:
            result = base.ChargeResult(status="failed", amount_minor=amount, currency=plan.currency, failure_message=str(exc)[:300])
    if result.status == "succeeded" and not charge.gateway_reference:
        Charge.objects.filter(pk=charge.pk).update(gateway_reference=result.payment_id[:100])
    subscription_charge_apply(charge=charge, result=result, source="renewal", now=now)
    subscription.refresh_from_db()
    return subscription


# --- Cancel, resume, change plan --------------------------------------------------------------


def _own(subscription: Subscription, by: User) -> None:
    if subscription.patient_id != by.pk:
        raise ApplicationError("SUB_002")


def subscription_set_cancel(*, subscription: Subscription, by: User, cancel: bool, request: HttpRequest | None = None) -> Subscription:
    """Cancel at the end of the paid period (entitlements last until then), or resume before it."""
    _own(subscription, by)
    with transaction.atomic():
        subscription = _lock(subscription)
        if subscription.status not in Subscription.ENTITLED_STATUSES:
            raise ApplicationError("SUB_004")
        if subscription.cancel_at_period_end == cancel:
            return subscription
        try:
            state = gateway_get(subscription.gateway).subscription_set_cancel_at_period_end(subscription=subscription, cancel=cancel)
        except base.GatewayError as exc:
            raise ApplicationError("PAY_008") from exc
        subscription.cancel_at_period_end = state.cancel_at_period_end
        subscription.save(update_fields=["cancel_at_period_end", "updated_at"])
        note = "Cancels at the end of the period." if cancel else "Resumed: renews at the end of the period."
        SubscriptionEvent.objects.create(subscription=subscription, from_status=subscription.status, to_status=subscription.status, note=note, at=timezone.now())
        audit_record(action="subscription.cancel_scheduled" if cancel else "subscription.resumed", actor=by, target=subscription, subject_user=by, request=request)
    return subscription


@dataclass(frozen=True)
class ProrationQuote:
    """Changing plans now: what is left of the current plan is credited, the new plan's price
    for the same remaining time is charged; ``amount_due_minor`` is the difference (negative:
    kept as credit for the next renewal)."""

    plan: Plan
    currency: str
    credit_minor: int
    charge_minor: int
    amount_due_minor: int
    remaining_fraction: Decimal
    by_gateway: bool = False


def _round(value: Decimal) -> int:
    return int(value.quantize(Decimal(1), ROUND_HALF_UP))


def proration_amounts(*, old_price: int, new_price: int, period_start: datetime, period_end: datetime, now: datetime) -> tuple[int, int, Decimal]:
    """The credit for the unused time of the old price and the charge for the same time at the
    new price, by the second, each rounded half up to the minor unit."""
    total = Decimal((period_end - period_start).total_seconds())
    left = Decimal(max((period_end - now).total_seconds(), 0))
    fraction = left / total if total > 0 else Decimal(0)
    return _round(old_price * fraction), _round(new_price * fraction), fraction


def _check_change(subscription: Subscription, plan: Plan) -> None:
    if subscription.status != SubStatus.ACTIVE:
        raise ApplicationError("SUB_004", gettext("Only an active plan can be changed."))
    if not plan.is_active:
        raise ApplicationError("SUB_001")
    if plan.pk == subscription.plan_id:
        raise ApplicationError("SUB_005", gettext("You are already on this plan."))
    if plan.currency != subscription.plan.currency or plan.period != subscription.plan.period:
        raise ApplicationError("SUB_005")


def proration_quote(*, subscription: Subscription, plan: Plan, by: User, now: datetime | None = None) -> ProrationQuote:
    """What changing to ``plan`` now would cost, shown before the patient confirms."""
    _own(subscription, by)
    _check_change(subscription, plan)
    now = now or timezone.now()
    credit, charge, fraction = proration_amounts(
        old_price=subscription.plan.price_minor, new_price=plan.price_minor, period_start=subscription.current_period_start, period_end=subscription.current_period_end, now=now
    )
    due, by_gateway = charge - credit, False
    if subscription.gateway != "sandbox":
        try:
            preview = gateway_get(subscription.gateway).subscription_proration_preview(subscription=subscription, plan=plan)
        except base.GatewayError:
            preview = None
        if preview is not None:
            due, by_gateway = preview, True
    return ProrationQuote(plan=plan, currency=plan.currency, credit_minor=credit, charge_minor=charge, amount_due_minor=due, remaining_fraction=fraction, by_gateway=by_gateway)


def subscription_change_plan(*, subscription: Subscription, plan: Plan, by: User, now: datetime | None = None, request: HttpRequest | None = None) -> Subscription:
    """Upgrade or downgrade now. Sandbox: the prorated difference is charged to the saved card
    first (an upgrade that cannot be paid changes nothing; the failed charge stays on record) or
    kept as credit for the next renewal. Stripe/Razorpay: the gateway prorates and invoices; its
    webhooks record the money. This period's allowance becomes the new plan's (never less than
    what is already used)."""
    now = now or timezone.now()
    quote = proration_quote(subscription=subscription, plan=plan, by=by, now=now)
    if subscription.gateway == "sandbox" and quote.amount_due_minor > 0:
        charge = Charge.objects.create(
            subscription=subscription, kind=Charge.Kind.PRORATION, amount_minor=quote.amount_due_minor, currency=plan.currency,
            period_start=now, period_end=subscription.current_period_end, attempts=1,
        )
        result = gateway_get("sandbox").subscription_charge(subscription=subscription, amount_minor=quote.amount_due_minor, idempotency_key=f"proration-{charge.public_id}")
        if result.status != "succeeded":
            charge.status, charge.failure_message = Charge.Status.FAILED, (result.failure_message or result.failure_code)[:300]
            charge.save(update_fields=["status", "failure_message", "updated_at"])
            raise ApplicationError("PAY_001", gettext("The prorated amount could not be charged to your card. Your plan has not changed."))
        charge.status, charge.paid_at, charge.gateway_reference = Charge.Status.PAID, now, result.payment_id[:100]
        charge.save(update_fields=["status", "paid_at", "gateway_reference", "updated_at"])
    with transaction.atomic():
        subscription = _lock(subscription)
        _check_change(subscription, plan)
        old_plan = subscription.plan
        if subscription.gateway == "sandbox":
            if quote.amount_due_minor < 0:
                subscription.balance_minor += -quote.amount_due_minor
        else:
            try:
                gateway_get(subscription.gateway).subscription_change_plan(subscription=subscription, plan=plan)
            except base.GatewayError as exc:
                raise ApplicationError("PAY_008") from exc
        subscription.plan = plan
        subscription.save()
        balance = subscription.credit_balances.select_for_update().filter(period_start=subscription.current_period_start).first()
        if balance is not None:
            balance.granted = None if plan.credits_per_period is None else max(plan.credits_per_period, balance.used)
            balance.save(update_fields=["granted"])
        note = f"Plan changed from {old_plan.name} to {plan.name}; prorated {quote.amount_due_minor} {plan.currency} (minor units)."
        SubscriptionEvent.objects.create(subscription=subscription, from_status=subscription.status, to_status=subscription.status, note=note[:300], at=now)
        audit_record(
            action="subscription.plan_changed", actor=by, target=subscription, subject_user=by, request=request,
            metadata={"from": old_plan.name, "to": plan.name, "amount_due_minor": quote.amount_due_minor},
        )
    return subscription


# --- What Stripe's and Razorpay's billing report (webhooks) ----------------------------------


def subscription_invoice_apply(*, subscription: Subscription, invoice: base.SubscriptionInvoice, now: datetime | None = None) -> SubscriptionCharge:
    """A subscription invoice paid or failed at the gateway, applied once per invoice: paid
    starts the period it covers (never moving backwards, so an old event arriving late changes
    nothing); failed starts or continues dunning (their retries, our grace and notice)."""
    now = now or timezone.now()
    with transaction.atomic():
        subscription = _lock(subscription)
        charge = Charge.objects.select_for_update().filter(subscription=subscription, gateway_reference=invoice.reference[:100]).first()
        first_reference = subscription.charges.filter(kind=Charge.Kind.FIRST).values_list("gateway_reference", flat=True).first()
        if charge is None and subscription.status == SubStatus.INCOMPLETE and first_reference:
            from .services import EventNotReady

            raise EventNotReady  # a later invoice before the first one is paid: apply it after
        if charge is None:
            first_paid = subscription.charges.filter(kind=Charge.Kind.FIRST, status=Charge.Status.PAID).exists()
            pending_first = subscription.charges.filter(kind=Charge.Kind.FIRST, status=Charge.Status.PENDING, gateway_reference="").first()
            if pending_first is not None:
                charge = pending_first
                charge.gateway_reference = invoice.reference[:100]
            else:
                newer = invoice.period_start is not None and (subscription.current_period_start is None or invoice.period_start > subscription.current_period_start)
                kind = Charge.Kind.FIRST if not first_paid and subscription.status == SubStatus.INCOMPLETE else Charge.Kind.RENEWAL if newer else Charge.Kind.PRORATION
                charge = Charge(subscription=subscription, kind=kind, gateway_reference=invoice.reference[:100])
            charge.amount_minor, charge.currency = invoice.amount_minor, invoice.currency
            charge.period_start, charge.period_end = invoice.period_start, invoice.period_end
            try:
                with transaction.atomic():
                    charge.save()
            except IntegrityError:  # a renewal of that period already recorded under another invoice
                charge = Charge.objects.select_for_update().get(subscription=subscription, kind=Charge.Kind.RENEWAL, period_start=invoice.period_start)
        if charge.status == Charge.Status.PAID:
            return charge
        charge.attempts = max(charge.attempts, invoice.attempt)
        if invoice.status == "paid":
            charge.status, charge.paid_at, charge.failure_message = Charge.Status.PAID, now, ""
            charge.save()
            newer = invoice.period_end is not None and (subscription.current_period_end is None or invoice.period_end > subscription.current_period_end)
            if newer and subscription.status in Subscription.LIVE_STATUSES:
                _start_period(subscription, start=invoice.period_start or now, end=invoice.period_end, note="Invoice paid at the gateway.", now=now)
                subscription.save()
            return charge
        charge.status, charge.failure_message = Charge.Status.FAILED, invoice.failure_message[:300]
        charge.save()
        if subscription.status in Subscription.ENTITLED_STATUSES and invoice.attempt > subscription.failed_attempts:
            subscription.failed_attempts = invoice.attempt
            subscription.next_retry_at = invoice.next_attempt
            subscription.grace_until = subscription.current_period_end + timedelta(days=retry_days()[-1])
            _transition(subscription, SubStatus.PAST_DUE, note=f"Renewal failed at the gateway (attempt {invoice.attempt}).", now=now)
            subscription.save()
            _notify(subscription, "subscription.payment_failed", attempt=invoice.attempt)
    return charge


GATEWAY_STATUS = {"active": SubStatus.ACTIVE, "past_due": SubStatus.PAST_DUE, "cancelled": SubStatus.CANCELLED, "expired": SubStatus.EXPIRED}


def subscription_state_apply(*, subscription: Subscription, state: base.SubscriptionState, now: datetime | None = None) -> Subscription:
    """The gateway's subscription changed (cancel at period end set or taken back, plan, status,
    ended). An ended subscription stays ended; a period never moves backwards (late events)."""
    now = now or timezone.now()
    with transaction.atomic():
        subscription = _lock(subscription)
        if subscription.status in (SubStatus.CANCELLED, SubStatus.EXPIRED):
            return subscription
        stale = state.current_period_end is not None and subscription.current_period_end is not None and state.current_period_end < subscription.current_period_end
        if state.status in (SubStatus.CANCELLED, SubStatus.EXPIRED):
            ended = SubStatus.CANCELLED if subscription.status != SubStatus.PAST_DUE or subscription.cancel_at_period_end else SubStatus.EXPIRED
            if subscription.status == SubStatus.INCOMPLETE:
                ended = SubStatus.EXPIRED
            _transition(subscription, ended, note="Ended at the gateway.", now=now)
            subscription.save()
            _notify(subscription, "subscription.ended")
            return subscription
        if stale:
            return subscription
        subscription.cancel_at_period_end = state.cancel_at_period_end
        if state.price_id:
            plan = Plan.objects.filter(Q(stripe_price_id=state.price_id) | Q(razorpay_plan_id=state.price_id)).first()
            if plan is not None and plan.pk != subscription.plan_id:
                subscription.plan = plan
                balance = subscription.credit_balances.select_for_update().filter(period_start=subscription.current_period_start).first()
                if balance is not None:
                    balance.granted = None if plan.credits_per_period is None else max(plan.credits_per_period, balance.used)
                    balance.save(update_fields=["granted"])
        subscription.save()
    return subscription


def subscription_for_event(gateway: str, reference: str) -> Subscription | None:
    if not reference:
        return None
    return Subscription.objects.filter(gateway=gateway, gateway_reference=reference).first()


def charge_for_reference(gateway: str, reference: str) -> SubscriptionCharge | None:
    if not reference:
        return None
    return Charge.objects.filter(subscription__gateway=gateway, gateway_reference=reference).select_related("subscription").first()


# --- Entitlements at booking ---------------------------------------------------------------------


def credit_take(*, patient: User, doctor: DoctorProfile, now: datetime | None = None) -> CreditBalance | None:
    """Inside the booking's transaction: take one consultation of the patient's plan if the plan
    is active (or in grace) and covers this doctor. The conditional update never takes past what
    was granted, whatever runs at the same time; the check constraint backs it."""
    now = now or timezone.now()
    subscription = selectors.entitled_subscription(patient)
    if subscription is None or not subscription.is_entitled(now) or not subscription.plan.covers(doctor=doctor):
        return None
    balance = selectors.credit_balance_current(subscription)
    if balance is None:
        return None
    taken = CreditBalance.objects.filter(pk=balance.pk).filter(Q(granted__isnull=True) | Q(used__lt=F("granted"))).update(used=F("used") + 1)
    if not taken:
        return None
    balance.used += 1
    return balance


def credit_use_record(*, balance: CreditBalance, appointment) -> CreditUse:
    return CreditUse.objects.create(balance=balance, appointment=appointment, used_at=timezone.now())


def credits_return(*, appointment_ids: list[int]) -> int:
    """Give back the consultations these bookings took (lapsed, cancelled with a full refund, or
    by the doctor). Each once: the conditional update claims the use."""
    now, returned = timezone.now(), 0
    for use in CreditUse.objects.filter(appointment_id__in=appointment_ids, returned_at__isnull=True).only("pk", "balance_id"):
        if CreditUse.objects.filter(pk=use.pk, returned_at__isnull=True).update(returned_at=now):
            CreditBalance.objects.filter(pk=use.balance_id, used__gt=0).update(used=F("used") - 1)
            returned += 1
    return returned
