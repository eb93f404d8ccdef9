"""Razorpay: orders for Checkout.js, payment signature verification, refunds and webhooks,
behind ``base.PaymentGateway``.

The flow: ``start`` creates an order; the patient pays it in Checkout.js, which hands the client
``razorpay_order_id``, ``razorpay_payment_id`` and ``razorpay_signature`` (an HMAC-SHA256 of
``"<order_id>|<payment_id>"`` with our key secret); ``fetch`` verifies that signature and then
asks Razorpay for the payment itself, so neither the client's word nor the signature alone
confirms an amount. Webhooks carry an HMAC-SHA256 of the raw body with the webhook secret.

Razorpay answers with plain dicts; notes come back as ``[]`` (a JSON array) when empty, which
is why notes are read through ``_notes``. The SDK does no retries of its own here (retry is off
by default) and prints a line to stdout on connection errors; the services retry.
"""

from __future__ import annotations

import hashlib
import json
import logging
import threading
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import razorpay
import razorpay.errors
import requests
from django.conf import settings

from . import base

if TYPE_CHECKING:
    from ..models import Payment, Plan, Subscription

logger = logging.getLogger(__name__)

SIGNATURE_HEADER = "x-razorpay-signature"  # compared lower-case
EVENT_ID_HEADER = "x-razorpay-event-id"
PAGE_SIZE = 100  # Razorpay's largest page
REFUND_STATUS = {"processed": "succeeded", "pending": "pending", "failed": "failed"}
# Card networks in the words Stripe and the sandbox use for brands.
NETWORKS = {
    "visa": "visa",
    "mastercard": "mastercard",
    "rupay": "rupay",
    "american express": "amex",
    "diners club": "diners",
    "maestro": "maestro",
    "jcb": "jcb",
}
EVENTS = {
    "payment.captured": base.PAYMENT_SUCCEEDED,
    "order.paid": base.PAYMENT_SUCCEEDED,
    "payment.failed": base.PAYMENT_FAILED,
    "refund.processed": base.REFUND_SUCCEEDED,
    "refund.failed": base.REFUND_FAILED,
}
# Razorpay Subscriptions. pending: a charge failed and Razorpay retries it; halted: the retries
# are exhausted (the plan ends for us); completed/expired: no more cycles.
SUBSCRIPTION_EVENTS = {
    "subscription.activated": base.SUBSCRIPTION_UPDATED,
    "subscription.updated": base.SUBSCRIPTION_UPDATED,
    "subscription.charged": base.SUBSCRIPTION_PAID,
    "subscription.pending": base.SUBSCRIPTION_PAYMENT_FAILED,
    "subscription.halted": base.SUBSCRIPTION_ENDED,
    "subscription.cancelled": base.SUBSCRIPTION_ENDED,
    "subscription.completed": base.SUBSCRIPTION_ENDED,
}
SUBSCRIPTION_STATUS = {
    "created": "incomplete", "authenticated": "incomplete", "active": "active", "pending": "past_due",
    "halted": "expired", "cancelled": "cancelled", "completed": "expired", "expired": "expired", "paused": "past_due",
}  # fmt: skip
# Total cycles a subscription is created for: Razorpay needs an end; about ten years of months.
SUBSCRIPTION_CYCLES = {"month": 120, "year": 10}
# A payment's statuses in the words of base.ChargeResult. "refunded" was captured first.
STATUS = {"captured": "succeeded", "refunded": "succeeded", "failed": "failed", "authorized": "pending", "created": "pending"}
# The order of preference when one order has several payment attempts (ledger).
_RANK = {"succeeded": 3, "pending": 2, "failed": 1, "canceled": 0}


def _notes(entity: dict[str, Any]) -> dict[str, Any]:
    notes = entity.get("notes")
    return notes if isinstance(notes, dict) else {}


def _charge_result(entity: dict[str, Any]) -> base.ChargeResult:
    """A Razorpay payment entity (fetched, or from a webhook) as a ChargeResult."""
    status = STATUS.get(entity.get("status") or "", "pending")
    card = entity.get("card") if isinstance(entity.get("card"), dict) else {}
    network = str(card.get("network") or "")
    return base.ChargeResult(
        status=status,
        amount_minor=int(entity.get("amount") or 0),
        currency=str(entity.get("currency") or "").upper(),
        payment_id=str(entity.get("id") or "") if status == "succeeded" else "",
        card_brand=NETWORKS.get(network.lower(), network.lower())[:20],
        card_last4=str(card.get("last4") or ""),
        payment_method_token=str(entity.get("token_id") or "") if status == "succeeded" else "",
        # error_reason ("insufficient_funds") says more than error_code ("BAD_REQUEST_ERROR").
        failure_code=str(entity.get("error_reason") or entity.get("error_code") or "")[:60] if status == "failed" else "",
        failure_message=str(entity.get("error_description") or "")[:300] if status == "failed" else "",
    )


def _time(value: Any) -> datetime | None:
    return datetime.fromtimestamp(int(value), tz=UTC) if value else None


def _subscription_state(entity: dict[str, Any]) -> base.SubscriptionState:
    return base.SubscriptionState(
        reference=str(entity.get("id") or ""),
        status=SUBSCRIPTION_STATUS.get(str(entity.get("status") or ""), "incomplete"),
        current_period_start=_time(entity.get("current_start")),
        current_period_end=_time(entity.get("current_end")),
        # Cancelled at the cycle's end: Razorpay keeps it active with an end_at at the cycle end.
        cancel_at_period_end=bool(entity.get("end_at") and entity.get("current_end") and entity.get("end_at") == entity.get("current_end") and entity.get("status") == "active"),
        price_id=str(entity.get("plan_id") or ""),
    )


def _gateway_error(exc: Exception, operation: str) -> base.GatewayError:
    """Network trouble, timeouts, unreadable answers and Razorpay's SERVER_ERROR may work later;
    BAD_REQUEST_ERROR (including bad keys) and GATEWAY_ERROR (the bank said no) will not."""
    if isinstance(exc, requests.Timeout | requests.ConnectionError | requests.JSONDecodeError | razorpay.errors.ServerError):
        retryable = True
    else:
        retryable = False
    logger.warning("Razorpay %s failed: %s", operation, type(exc).__name__, extra={"event": f"razorpay.{operation}"})
    return base.GatewayError(f"Razorpay {operation}: {exc or type(exc).__name__}", retryable=retryable)


_ERRORS = (requests.RequestException, razorpay.errors.BadRequestError, razorpay.errors.GatewayError, razorpay.errors.ServerError)


class RazorpayGateway(base.PaymentGateway):
    name = "razorpay"
    checkout_kind = "razorpay_order"

    def __init__(self) -> None:
        self._auth = (settings.RAZORPAY_KEY_ID, settings.RAZORPAY_KEY_SECRET)
        self._local = threading.local()

    @property
    def client(self) -> razorpay.Client:
        """One SDK client per thread: it holds a ``requests.Session``, which is not meant to be
        shared between threads (this gateway object is, through ``gateway_get``'s cache)."""
        client = getattr(self._local, "client", None)
        if client is None:
            client = self._local.client = razorpay.Client(auth=self._auth)
            client.set_app_details({"title": "MediMeet"})
        return client

    @property
    def _timeout(self) -> int:
        return settings.PAYMENT_GATEWAY_TIMEOUT_SECONDS

    # --- payments ---------------------------------------------------------------------------

    def start(self, *, payment: Payment, customer_id: str = "", payout_account: str = "") -> base.StartResult:
        """Create the order the patient pays in Checkout.js.

        Orders take no idempotency key, so calling this again for the same payment (our retry
        after a timeout) may leave an orphan order at Razorpay. That is harmless: an order is
        only a request for money — nothing is charged unless the patient pays that order, and
        the patient is only ever shown the order we stored as ``gateway_reference``.
        ``payment_capture`` asks for automatic capture whatever the Dashboard default is, so a
        paid order ends "captured" rather than waiting "authorized"."""
        data = {
            "amount": payment.amount_minor,
            "currency": payment.currency,
            "receipt": str(payment.public_id)[:40],
            "notes": {"payment": str(payment.public_id)},  # ids only, never PHI
            "payment_capture": True,
        }
        try:
            order = self.client.order.create(data, timeout=self._timeout)
        except _ERRORS as exc:
            raise _gateway_error(exc, "order.create") from exc
        return base.StartResult(reference=order["id"])

    def checkout(self, payment: Payment) -> base.Checkout:
        return base.Checkout(kind=self.checkout_kind, reference=payment.gateway_reference, public_key=settings.RAZORPAY_KEY_ID)

    def fetch(self, *, payment: Payment, client_data: dict[str, str]) -> base.ChargeResult:
        """Verify Checkout.js's callback (the signature binds the order to the payment), then
        read the payment from Razorpay: its status and amount are what count."""
        fields = ("razorpay_order_id", "razorpay_payment_id", "razorpay_signature")
        params = {key: str(client_data.get(key) or "") for key in fields}
        if not all(params.values()):
            raise base.InvalidSignature("The Razorpay callback is incomplete.")
        if not payment.gateway_reference or params["razorpay_order_id"] != payment.gateway_reference:
            raise base.InvalidSignature("The Razorpay callback is for another order.")
        if not settings.RAZORPAY_KEY_SECRET:
            raise base.InvalidSignature("No Razorpay key secret configured to verify the callback.")
        try:
            self.client.utility.verify_payment_signature(params)
        except razorpay.errors.SignatureVerificationError:
            raise base.InvalidSignature("The Razorpay payment signature does not verify.") from None
        try:
            entity = self.client.payment.fetch(params["razorpay_payment_id"], {"expand[]": "card"}, timeout=self._timeout)
        except _ERRORS as exc:
            raise _gateway_error(exc, "payment.fetch") from exc
        if entity.get("order_id") != payment.gateway_reference:  # cannot happen with a valid signature
            raise base.GatewayError("Razorpay returned a payment for another order.", retryable=False)
        return _charge_result(entity)

    def void(self, *, payment: Payment) -> None:
        """Razorpay orders cannot be cancelled, so there is nothing to do: an unpaid order simply
        lapses. If the patient pays it after the hold lapsed anyway, the payment arrives through
        the webhook and the services' late-payment path refunds it."""

    def refund(self, *, payment: Payment, amount_minor: int, idempotency_key: str, reason: str) -> base.RefundResult:
        """Refund the captured payment. Razorpay takes no idempotency key, so the key goes into
        the refund's notes and a retry first looks for a refund carrying it. ``reason`` is ours
        and may be PHI: it is not sent."""
        payment_id = payment.gateway_payment_id
        if not payment_id:
            return base.RefundResult(reference="", status="failed", failure_message="The payment was not captured.")
        try:
            existing = self.client.payment.fetch_multiple_refund(payment_id, {"count": PAGE_SIZE}, timeout=self._timeout)
            refund = next((r for r in existing.get("items") or [] if _notes(r).get("idempotency_key") == idempotency_key), None)
            if refund is None:
                data = {"amount": amount_minor, "notes": {"idempotency_key": idempotency_key}, "receipt": idempotency_key[:40]}
                refund = self.client.payment.refund(payment_id, data, timeout=self._timeout)
        except _ERRORS as exc:
            raise _gateway_error(exc, "payment.refund") from exc
        status = REFUND_STATUS.get(refund.get("status") or "", "pending")
        return base.RefundResult(reference=refund["id"], status=status, failure_message="The refund failed at Razorpay." if status == "failed" else "")

    # --- webhooks ---------------------------------------------------------------------------

    def parse_webhook(self, *, body: bytes, headers: dict[str, str]) -> base.GatewayEvent:
        lower = {key.lower(): value for key, value in headers.items()}
        signature = lower.get(SIGNATURE_HEADER, "")
        secret = settings.RAZORPAY_WEBHOOK_SECRET
        if not signature or not secret:
            raise base.InvalidSignature("No Razorpay signature (or no webhook secret configured).")
        try:
            # The SDK signs str, not bytes: decode the raw body as it came.
            self.client.utility.verify_webhook_signature(body.decode("utf-8"), signature, secret)
            payload = json.loads(body)
        except razorpay.errors.SignatureVerificationError:
            raise base.InvalidSignature("The Razorpay webhook signature does not verify.") from None
        except ValueError:  # undecodable or not JSON
            raise base.InvalidSignature("Malformed event body.") from None
        # Razorpay sends X-Razorpay-Event-Id (the same on redeliveries); the body has no id.
        event_id = lower.get(EVENT_ID_HEADER) or "rzp_" + hashlib.sha256(body).hexdigest()[:32]
        try:
            return self.event_from_payload(payload, event_id=event_id)
        except (KeyError, TypeError, AttributeError, ValueError):
            raise base.InvalidSignature("Malformed event body.") from None

    def event_from_payload(self, payload: dict[str, Any], *, event_id: str) -> base.GatewayEvent:
        event_type = str(payload.get("event") or "")
        entities = payload.get("payload") or {}
        payment_entity = (entities.get("payment") or {}).get("entity") or {}
        refund_entity = (entities.get("refund") or {}).get("entity") or {}
        kind = EVENTS.get(event_type, base.OTHER)
        if event_type in SUBSCRIPTION_EVENTS:
            return self._subscription_event(payload, event_id=event_id, event_type=event_type, payment_entity=payment_entity)
        if kind in (base.PAYMENT_SUCCEEDED, base.PAYMENT_FAILED) and payment_entity.get("invoice_id"):
            kind = base.OTHER  # a subscription's payment: subscription.charged / .pending carry it
        if event_type.startswith("refund."):
            return base.GatewayEvent(
                event_id=event_id,
                event_type=event_type,
                kind=kind,
                # The Razorpay payment id: services find the Payment by gateway_payment_id.
                payment_reference=str(refund_entity.get("payment_id") or ""),
                refund_reference=str(refund_entity.get("id") or ""),
                refund_key=str(_notes(refund_entity).get("idempotency_key") or ""),
                refund_amount_minor=int(refund_entity.get("amount") or 0),
                refund_failure="The refund failed at Razorpay." if kind == base.REFUND_FAILED else "",
                payload=payload,
            )
        return base.GatewayEvent(
            event_id=event_id,
            event_type=event_type,
            kind=kind,
            payment_reference=str(payment_entity.get("order_id") or ""),  # our gateway_reference
            charge=_charge_result(payment_entity) if payment_entity else None,
            payload=payload,
        )

    def _subscription_event(self, payload: dict[str, Any], *, event_id: str, event_type: str, payment_entity: dict[str, Any]) -> base.GatewayEvent:
        entity = ((payload.get("payload") or {}).get("subscription") or {}).get("entity") or {}
        state = _subscription_state(entity)
        kind = SUBSCRIPTION_EVENTS[event_type]
        invoice = None
        if kind == base.SUBSCRIPTION_PAID:
            invoice = base.SubscriptionInvoice(
                reference=str(payment_entity.get("id") or f"{entity.get('id')}:{entity.get('paid_count')}"),
                status="paid",
                amount_minor=int(payment_entity.get("amount") or 0),
                currency=str(payment_entity.get("currency") or "").upper(),
                period_start=state.current_period_start,
                period_end=state.current_period_end,
                attempt=int(entity.get("auth_attempts") or 0),
            )
        elif kind == base.SUBSCRIPTION_PAYMENT_FAILED:
            # The invoice of the cycle that could not be charged: one per cycle (charge_at).
            invoice = base.SubscriptionInvoice(
                reference=str(payment_entity.get("invoice_id") or f"{entity.get('id')}:{entity.get('charge_at')}"),
                status="failed",
                amount_minor=int(payment_entity.get("amount") or 0),
                currency=str(payment_entity.get("currency") or "").upper(),
                attempt=max(int(entity.get("auth_attempts") or 0), 1),
                next_attempt=_time(entity.get("charge_at")),
                failure_message=str(payment_entity.get("error_description") or "")[:300],
            )
        return base.GatewayEvent(
            event_id=event_id,
            event_type=event_type,
            kind=kind,
            subscription_reference=state.reference,
            subscription=None if kind == base.SUBSCRIPTION_PAYMENT_FAILED else state,
            invoice=invoice,
            payload=payload,
        )

    # --- subscriptions (Razorpay Subscriptions) -------------------------------------------

    def subscription_start(self, *, subscription: Subscription, customer_id: str = "") -> base.SubscriptionStart:
        """Create the subscription on the plan's Razorpay plan; the patient authorises the
        first charge on Razorpay's hosted page (short_url) or Checkout with the subscription id.
        Razorpay has no idempotency key: the note with our id lets a retry find it."""
        data = {
            "plan_id": subscription.plan.razorpay_plan_id,
            "total_count": SUBSCRIPTION_CYCLES[subscription.plan.period],
            "customer_notify": 1,
            "notes": {"subscription": str(subscription.public_id)},  # ids only
        }
        try:
            entity = self.client.subscription.create(data, timeout=self._timeout)
        except _ERRORS as exc:
            raise _gateway_error(exc, "subscription.create") from exc
        checkout = base.Checkout(kind="razorpay_subscription", reference=entity["id"], public_key=settings.RAZORPAY_KEY_ID, url=str(entity.get("short_url") or ""))
        return base.SubscriptionStart(reference=entity["id"], charge_reference="", checkout=checkout)

    def subscription_set_cancel_at_period_end(self, *, subscription: Subscription, cancel: bool) -> base.SubscriptionState:
        """Razorpay cancels at the cycle's end (cancel_at_cycle_end); it has no call to take that
        back, so resuming is refused (not retryable) and the patient subscribes again later."""
        if not cancel:
            raise base.GatewayError("Razorpay cannot resume a subscription cancelled at the cycle's end.", retryable=False)
        try:
            entity = self.client.subscription.cancel(subscription.gateway_reference, {"cancel_at_cycle_end": 1}, timeout=self._timeout)
        except _ERRORS as exc:
            raise _gateway_error(exc, "subscription.cancel") from exc
        state = _subscription_state(entity)
        return base.SubscriptionState(
            reference=state.reference, status=state.status, current_period_start=state.current_period_start,
            current_period_end=state.current_period_end, cancel_at_period_end=True, price_id=state.price_id,
        )  # fmt: skip

    def subscription_change_plan(self, *, subscription: Subscription, plan: Plan) -> base.SubscriptionState:
        """Change the plan now; Razorpay prorates and charges (or credits) the difference."""
        data = {"plan_id": plan.razorpay_plan_id, "schedule_change_at": "now", "customer_notify": 1}
        try:
            entity = self.client.subscription.edit(subscription.gateway_reference, data, timeout=self._timeout)
        except _ERRORS as exc:
            raise _gateway_error(exc, "subscription.edit") from exc
        return _subscription_state(entity)

    # --- reconciliation ---------------------------------------------------------------------

    def ledger(self, *, since: datetime, until: datetime) -> list[base.LedgerEntry]:
        """Payments created in [since, until), one entry per order (the reference we keep): when
        an order had several attempts (a decline, then a success) the best one stands for it."""
        start, end = int(since.timestamp()), int(until.timestamp())
        by_order: dict[str, base.LedgerEntry] = {}
        seen: set[str] = set()
        skip = 0
        while True:
            try:
                page = self.client.payment.all({"from": start, "to": end, "count": PAGE_SIZE, "skip": skip}, timeout=self._timeout)
            except _ERRORS as exc:
                raise _gateway_error(exc, "payment.all") from exc
            items = page.get("items") or []
            for entity in items:
                created = int(entity.get("created_at") or 0)
                order_id = entity.get("order_id")
                if entity["id"] in seen or not order_id or not start <= created < end:  # "to" is inclusive
                    continue
                seen.add(entity["id"])
                charge = _charge_result(entity)
                entry = base.LedgerEntry(
                    reference=order_id,
                    status=charge.status,
                    amount_minor=charge.amount_minor,
                    currency=charge.currency,
                    amount_refunded_minor=int(entity.get("amount_refunded") or 0),
                    created=datetime.fromtimestamp(created, tz=UTC),
                )
                current = by_order.get(order_id)
                if current is None or _RANK[entry.status] > _RANK[current.status]:
                    by_order[order_id] = entry
            if len(items) < PAGE_SIZE:
                break
            skip += PAGE_SIZE
        return sorted(by_order.values(), key=lambda e: (e.created or datetime.min.replace(tzinfo=UTC), e.reference))
