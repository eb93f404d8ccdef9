"""Stripe: PaymentIntents (with the Payment Element), Customers and saved cards, refunds and
Connect destination charges, behind ``base.PaymentGateway``.

Every call goes through one ``stripe.StripeClient`` (the ``client.v1.*`` services) with our
timeout and the SDK's own network retries; the SDK resends a retried request with the same
``Idempotency-Key``. Creating a PaymentIntent uses the key ``payment-<public_id>``, so a second
``start`` for the same payment (after a timeout we could not tell apart from a failure) gets the
same PaymentIntent back instead of a second one.

Responses are turned into plain dicts (``StripeObject.to_dict()``; a ``StripeObject`` is not a
dict since stripe-python 13) and read by the same functions that read webhook payloads, so a
PaymentIntent means the same thing whether it was fetched or delivered.

Nothing the patient wrote or is (name, reason for the visit, email) goes into PaymentIntent
metadata: only our ids. Card data never passes through here except brand, last four, expiry and
Stripe's fingerprint, and neither card data nor keys are logged.
"""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import stripe
from django.conf import settings

from . import base

if TYPE_CHECKING:
    from accounts.models import User

    from ..models import Payment, Plan, Subscription

logger = logging.getLogger(__name__)

SIGNATURE_HEADER = "stripe-signature"  # compared lower-case

# Refund statuses in the words of base.RefundResult.
REFUND_STATUS = {"succeeded": "succeeded", "pending": "pending", "requires_action": "pending", "failed": "failed", "canceled": "failed"}
PAYMENT_EVENTS = {
    "payment_intent.succeeded": base.PAYMENT_SUCCEEDED,
    "payment_intent.payment_failed": base.PAYMENT_FAILED,
    "payment_intent.canceled": base.PAYMENT_CANCELED,
}
REFUND_EVENTS = ("refund.created", "refund.updated", "refund.failed")
# Stripe Billing: invoices of subscriptions and the subscriptions themselves.
INVOICE_EVENTS = {"invoice.paid": base.SUBSCRIPTION_PAID, "invoice.payment_failed": base.SUBSCRIPTION_PAYMENT_FAILED}
SUBSCRIPTION_EVENTS = {"customer.subscription.updated": base.SUBSCRIPTION_UPDATED, "customer.subscription.deleted": base.SUBSCRIPTION_ENDED}
# A subscription's statuses in ours: unpaid (retries exhausted, kept open) counts as past due.
SUBSCRIPTION_STATUS = {
    "incomplete": "incomplete", "trialing": "active", "active": "active", "past_due": "past_due", "unpaid": "past_due",
    "paused": "past_due", "canceled": "cancelled", "incomplete_expired": "expired",
}  # fmt: skip


def _time(value: Any) -> datetime | None:
    return datetime.fromtimestamp(int(value), tz=UTC) if value else None


def _subscription_state(sub: dict[str, Any]) -> base.SubscriptionState:
    """A Subscription (dict). Since API version 2025-03-31 the period lives on the items."""
    items = ((sub.get("items") or {}).get("data")) or [{}]
    item = items[0]
    return base.SubscriptionState(
        reference=str(sub.get("id") or ""),
        status=SUBSCRIPTION_STATUS.get(str(sub.get("status") or ""), "incomplete"),
        current_period_start=_time(item.get("current_period_start")),
        current_period_end=_time(item.get("current_period_end")),
        cancel_at_period_end=bool(sub.get("cancel_at_period_end")),
        price_id=_id(item.get("price")),
    )


def _invoice_subscription(invoice: dict[str, Any]) -> str:
    details = ((invoice.get("parent") or {}).get("subscription_details")) or {}
    return _id(details.get("subscription"))


def _subscription_invoice(invoice: dict[str, Any], *, paid: bool) -> base.SubscriptionInvoice:
    """An Invoice (dict): the period it bills is the period of its subscription line (not a
    proration line), which is the period the payment starts."""
    lines = ((invoice.get("lines") or {}).get("data")) or []
    def is_proration(line: dict) -> bool:
        return bool((((line.get("parent") or {}).get("subscription_item_details")) or {}).get("proration"))
    line = next((line for line in lines if not is_proration(line)), None)
    period = (line or {}).get("period") or {}
    return base.SubscriptionInvoice(
        reference=str(invoice.get("id") or ""),
        status="paid" if paid else "failed",
        amount_minor=int((invoice.get("amount_paid") if paid else invoice.get("amount_due")) or 0),
        currency=str(invoice.get("currency") or "").upper(),
        period_start=_time(period.get("start")) if line else None,
        period_end=_time(period.get("end")) if line else None,
        attempt=int(invoice.get("attempt_count") or 0),
        next_attempt=_time(invoice.get("next_payment_attempt")),
        failure_message=str(((invoice.get("last_finalization_error") or {}).get("message")) or "")[:300] if not paid else "",
    )


def _id(value: Any) -> str:
    """An id field that may be a plain id or an expanded object."""
    if isinstance(value, dict):
        return str(value.get("id") or "")
    return str(value or "")


def _charge_result(pi: dict[str, Any]) -> base.ChargeResult:
    """A PaymentIntent (dict; ``latest_charge`` expanded or not) as a ChargeResult."""
    status = pi.get("status") or ""
    latest = pi.get("latest_charge")
    charge = latest if isinstance(latest, dict) else {}
    card = ((charge.get("payment_method_details") or {}).get("card")) or {}
    error = pi.get("last_payment_error") or {}
    currency = str(pi.get("currency") or "").upper()
    card_fields = {
        "card_brand": card.get("brand") or "",
        "card_last4": card.get("last4") or "",
        "card_fingerprint": card.get("fingerprint") or "",
        "card_exp_month": card.get("exp_month"),
        "card_exp_year": card.get("exp_year"),
    }
    if status == "succeeded":
        return base.ChargeResult(
            status="succeeded",
            amount_minor=int(pi.get("amount_received") or pi.get("amount") or 0),
            currency=currency,
            payment_id=_id(latest),
            payment_method_token=_id(pi.get("payment_method")),
            **card_fields,
        )
    amount = int(pi.get("amount") or 0)
    if status == "canceled":
        return base.ChargeResult(status="canceled", amount_minor=amount, currency=currency)
    if status == "requires_payment_method" and error:
        # decline_code is the more specific reason ("insufficient_funds") under code "card_declined".
        return base.ChargeResult(
            status="failed",
            amount_minor=amount,
            currency=currency,
            failure_code=str(error.get("decline_code") or error.get("code") or "")[:60],
            failure_message=str(error.get("message") or "")[:300],
            **card_fields,
        )
    return base.ChargeResult(status="pending", amount_minor=amount, currency=currency)


def _gateway_error(exc: stripe.StripeError, operation: str) -> base.GatewayError:
    """Map an SDK error: network trouble, rate limits and 5xx may work later; the rest will not."""
    status = exc.http_status
    if isinstance(exc, stripe.APIConnectionError | stripe.RateLimitError):
        retryable = True
    elif isinstance(exc, stripe.IdempotencyError | stripe.InvalidRequestError | stripe.AuthenticationError | stripe.PermissionError | stripe.CardError):
        retryable = False
    else:  # APIError and anything newer: retry server-side trouble only
        retryable = status is None or status >= 500 or status == 409
    logger.warning(
        "Stripe %s failed: %s (HTTP %s, request %s)",
        operation,
        type(exc).__name__,
        status,
        exc.request_id or "-",
        extra={"code": exc.code or "", "event": f"stripe.{operation}"},
    )
    return base.GatewayError(f"Stripe {operation}: {exc.user_message or type(exc).__name__}", retryable=retryable)


class StripeGateway(base.PaymentGateway):
    name = "stripe"
    checkout_kind = "stripe_payment_intent"

    def __init__(self) -> None:
        self.client = stripe.StripeClient(
            settings.STRIPE_SECRET_KEY,
            http_client=stripe.RequestsClient(timeout=settings.PAYMENT_GATEWAY_TIMEOUT_SECONDS),
            max_network_retries=settings.STRIPE_MAX_NETWORK_RETRIES,
        )

    # --- payments ---------------------------------------------------------------------------

    def start(self, *, payment: Payment, customer_id: str = "", payout_account: str = "") -> base.StartResult:
        """Create the PaymentIntent. Idempotent per payment for Stripe's 24 hours: the same
        parameters with the key ``payment-<public_id>`` return the same PaymentIntent (different
        parameters under the same key are refused with a non-retryable error)."""
        params: dict[str, Any] = {
            "amount": payment.amount_minor,  # already minor units; zero-decimal currencies as is
            "currency": payment.currency.lower(),
            "automatic_payment_methods": {"enabled": True},
            "metadata": {"payment": str(payment.public_id)},  # ids only, never PHI
        }
        if customer_id:
            params["customer"] = customer_id
        if payment.save_card:
            params["setup_future_usage"] = "off_session"
        if payout_account:
            params["transfer_data"] = {"destination": payout_account}
            params["application_fee_amount"] = payment.platform_fee_minor
        try:
            pi = self.client.v1.payment_intents.create(params=params, options={"idempotency_key": f"payment-{payment.public_id}"})
        except stripe.StripeError as exc:
            raise _gateway_error(exc, "payment_intents.create") from exc
        return base.StartResult(reference=pi.id, client_secret=pi.client_secret or "")

    def checkout(self, payment: Payment) -> base.Checkout:
        return base.Checkout(
            kind=self.checkout_kind,
            reference=payment.gateway_reference,
            public_key=settings.STRIPE_PUBLISHABLE_KEY,
            client_secret=payment.client_secret,
        )

    def fetch(self, *, payment: Payment, client_data: dict[str, str]) -> base.ChargeResult:
        """Ask Stripe about the PaymentIntent we created (whatever the client sent is ignored: the
        client has nothing to prove here)."""
        if not payment.gateway_reference:
            raise base.GatewayError("The payment has no PaymentIntent.", retryable=False)
        try:
            pi = self.client.v1.payment_intents.retrieve(payment.gateway_reference, params={"expand": ["latest_charge"]})
        except stripe.StripeError as exc:
            raise _gateway_error(exc, "payment_intents.retrieve") from exc
        return _charge_result(pi.to_dict())

    def void(self, *, payment: Payment) -> None:
        """Cancel the PaymentIntent. One that is canceled or succeeded already is left alone (a
        late success is the services' late-payment path, not an error here)."""
        if not payment.gateway_reference:
            return
        try:
            self.client.v1.payment_intents.cancel(payment.gateway_reference)
        except stripe.InvalidRequestError as exc:
            if exc.code != "payment_intent_unexpected_state":
                raise _gateway_error(exc, "payment_intents.cancel") from exc
            status = ((exc.json_body or {}).get("error") or {}).get("payment_intent", {}).get("status")
            if status is None:
                try:
                    status = self.client.v1.payment_intents.retrieve(payment.gateway_reference).status
                except stripe.StripeError as exc2:
                    raise _gateway_error(exc2, "payment_intents.retrieve") from exc2
            if status not in ("canceled", "succeeded"):
                # e.g. "processing": it will settle one way or the other; ask again later.
                raise base.GatewayError(f"The PaymentIntent cannot be canceled while {status}.", retryable=True) from exc
        except stripe.StripeError as exc:
            raise _gateway_error(exc, "payment_intents.cancel") from exc

    def refund(self, *, payment: Payment, amount_minor: int, idempotency_key: str, reason: str) -> base.RefundResult:
        """Refund part or all of the PaymentIntent. ``reason`` is ours and may be PHI: it is not
        sent. The idempotency key makes a retried refund the same refund."""
        params = {"payment_intent": payment.gateway_reference, "amount": amount_minor, "metadata": {"refund": idempotency_key}}
        if payment.payout_account:
            # Connect destination charge: take the doctor's share back and return the platform
            # fee in proportion, so nobody keeps money for a refunded consultation.
            params.update(reverse_transfer=True, refund_application_fee=True)
        try:
            refund = self.client.v1.refunds.create(params=params, options={"idempotency_key": idempotency_key})
        except stripe.StripeError as exc:
            raise _gateway_error(exc, "refunds.create") from exc
        status = REFUND_STATUS.get(refund.status or "", "pending")
        failure = (refund.to_dict().get("failure_reason") or "") if status == "failed" else ""
        return base.RefundResult(reference=refund.id, status=status, failure_message=failure)

    # --- webhooks ---------------------------------------------------------------------------

    def parse_webhook(self, *, body: bytes, headers: dict[str, str]) -> base.GatewayEvent:
        header = {key.lower(): value for key, value in headers.items()}.get(SIGNATURE_HEADER, "")
        try:
            stripe.Webhook.construct_event(body, header, settings.STRIPE_WEBHOOK_SECRET, tolerance=settings.STRIPE_WEBHOOK_TOLERANCE_SECONDS)
            payload = json.loads(body)  # the verified body, as plain JSON for storing
            return self.event_from_payload(payload, event_id=str(payload["id"]))
        except stripe.SignatureVerificationError as exc:
            raise base.InvalidSignature(str(exc.user_message or "Signature does not verify.")) from None
        except (ValueError, KeyError, TypeError, AttributeError):
            raise base.InvalidSignature("Malformed event body.") from None

    def event_from_payload(self, payload: dict[str, Any], *, event_id: str) -> base.GatewayEvent:
        event_type = str(payload.get("type") or "")
        obj = (payload.get("data") or {}).get("object") or {}
        if event_type in PAYMENT_EVENTS:
            return base.GatewayEvent(
                event_id=event_id,
                event_type=event_type,
                kind=PAYMENT_EVENTS[event_type],
                payment_reference=str(obj.get("id") or ""),
                charge=_charge_result(obj),
                payload=payload,
            )
        if event_type in REFUND_EVENTS and obj.get("object") == "refund":
            status = obj.get("status") or ""
            if event_type == "refund.failed" or status in ("failed", "canceled"):
                kind = base.REFUND_FAILED
            elif status == "succeeded":
                kind = base.REFUND_SUCCEEDED
            else:  # pending / requires_action: a later refund.updated settles it
                kind = base.OTHER
            return base.GatewayEvent(
                event_id=event_id,
                event_type=event_type,
                kind=kind,
                payment_reference=_id(obj.get("payment_intent")),
                refund_reference=str(obj.get("id") or ""),
                refund_key=str((obj.get("metadata") or {}).get("refund") or ""),
                refund_amount_minor=int(obj.get("amount") or 0),
                refund_failure=str(obj.get("failure_reason") or "") if kind == base.REFUND_FAILED else "",
                payload=payload,
            )
        if event_type in INVOICE_EVENTS and (subscription_reference := _invoice_subscription(obj)):
            return base.GatewayEvent(
                event_id=event_id,
                event_type=event_type,
                kind=INVOICE_EVENTS[event_type],
                subscription_reference=subscription_reference,
                invoice=_subscription_invoice(obj, paid=event_type == "invoice.paid"),
                payload=payload,
            )
        if event_type in SUBSCRIPTION_EVENTS:
            return base.GatewayEvent(
                event_id=event_id,
                event_type=event_type,
                kind=SUBSCRIPTION_EVENTS[event_type],
                subscription_reference=str(obj.get("id") or ""),
                subscription=_subscription_state(obj),
                payload=payload,
            )
        return base.GatewayEvent(event_id=event_id, event_type=event_type, kind=base.OTHER, payload=payload)

    # --- subscriptions (Stripe Billing) -------------------------------------------------------

    def subscription_start(self, *, subscription: Subscription, customer_id: str = "") -> base.SubscriptionStart:
        """Create the subscription on the plan's Price, incomplete until its first invoice is
        paid with the Payment Element (the invoice's confirmation secret). Idempotent per
        subscription; the card is saved for renewals."""
        if not customer_id:
            raise base.GatewayError("A Stripe subscription needs a customer.", retryable=True)
        params = {
            "customer": customer_id,
            "items": [{"price": subscription.plan.stripe_price_id}],
            "payment_behavior": "default_incomplete",
            "payment_settings": {"save_default_payment_method": "on_subscription"},
            "metadata": {"subscription": str(subscription.public_id)},  # ids only
            "expand": ["latest_invoice.confirmation_secret"],
        }
        try:
            sub = self.client.v1.subscriptions.create(params=params, options={"idempotency_key": f"subscription-{subscription.public_id}"}).to_dict()
        except stripe.StripeError as exc:
            raise _gateway_error(exc, "subscriptions.create") from exc
        invoice = sub.get("latest_invoice") if isinstance(sub.get("latest_invoice"), dict) else {}
        secret = str(((invoice.get("confirmation_secret") or {}).get("client_secret")) or "")
        checkout = base.Checkout(kind=self.checkout_kind, reference=sub["id"], public_key=settings.STRIPE_PUBLISHABLE_KEY, client_secret=secret)
        return base.SubscriptionStart(reference=sub["id"], charge_reference=str(invoice.get("id") or ""), checkout=checkout)

    def _update(self, subscription: Subscription, params: dict[str, Any], operation: str) -> base.SubscriptionState:
        try:
            sub = self.client.v1.subscriptions.update(subscription.gateway_reference, params=params)
        except stripe.StripeError as exc:
            raise _gateway_error(exc, operation) from exc
        return _subscription_state(sub.to_dict())

    def subscription_set_cancel_at_period_end(self, *, subscription: Subscription, cancel: bool) -> base.SubscriptionState:
        return self._update(subscription, {"cancel_at_period_end": cancel}, "subscriptions.update")

    def _item_id(self, subscription: Subscription) -> str:
        try:
            sub = self.client.v1.subscriptions.retrieve(subscription.gateway_reference).to_dict()
        except stripe.StripeError as exc:
            raise _gateway_error(exc, "subscriptions.retrieve") from exc
        return str(sub["items"]["data"][0]["id"])

    def subscription_change_plan(self, *, subscription: Subscription, plan: Plan) -> base.SubscriptionState:
        """Swap the item's price now; Stripe prorates and invoices the difference at once
        (``always_invoice``), and its invoice webhooks record the money."""
        params = {"items": [{"id": self._item_id(subscription), "price": plan.stripe_price_id}], "proration_behavior": "always_invoice"}
        return self._update(subscription, params, "subscriptions.update")

    def subscription_proration_preview(self, *, subscription: Subscription, plan: Plan) -> int | None:
        """Stripe's own prorated amount for the change (an invoice preview), what the patient
        would pay now: amount_due, or the negative total when it is a credit."""
        customer = subscription.patient.gateway_customers.filter(gateway=self.name).values_list("customer_id", flat=True).first()
        params = {
            "customer": customer,
            "subscription": subscription.gateway_reference,
            "subscription_details": {"items": [{"id": self._item_id(subscription), "price": plan.stripe_price_id}], "proration_behavior": "always_invoice"},
        }
        try:
            preview = self.client.v1.invoices.create_preview(params=params).to_dict()
        except stripe.StripeError as exc:
            raise _gateway_error(exc, "invoices.create_preview") from exc
        total = int(preview.get("total") or 0)
        return total if total < 0 else int(preview.get("amount_due") or 0)

    # --- customers and reconciliation -------------------------------------------------------

    def customer_ensure(self, *, user: User, existing: str = "") -> str:
        if existing:
            return existing
        params = {"email": user.email, "metadata": {"user": str(user.public_id)}}
        try:
            customer = self.client.v1.customers.create(params=params, options={"idempotency_key": f"customer-{user.public_id}"})
        except stripe.StripeError as exc:
            raise _gateway_error(exc, "customers.create") from exc
        return customer.id

    def ledger(self, *, since: datetime, until: datetime) -> list[base.LedgerEntry]:
        params = {
            "created": {"gte": int(since.timestamp()), "lt": int(until.timestamp())},
            "limit": 100,
            "expand": ["data.latest_charge"],  # for amount_refunded
        }
        entries = []
        try:
            for item in self.client.v1.payment_intents.list(params=params).auto_paging_iter():
                pi = item.to_dict()
                charge = _charge_result(pi)
                latest = pi.get("latest_charge")
                refunded = int(latest.get("amount_refunded") or 0) if isinstance(latest, dict) else 0
                entries.append(
                    base.LedgerEntry(
                        reference=pi["id"],
                        status=charge.status,
                        amount_minor=charge.amount_minor,
                        currency=charge.currency,
                        amount_refunded_minor=refunded,
                        created=datetime.fromtimestamp(pi["created"], tz=UTC) if pi.get("created") else None,
                    )
                )
        except stripe.StripeError as exc:
            raise _gateway_error(exc, "payment_intents.list") from exc
        return entries
