"""The offline sandbox gateway: the embedded default when no gateway keys are set.

It behaves like a hosted gateway, with its side of the bargain kept in ``SandboxTransaction``
(its ledger): creating a payment opens a transaction, the patient pays on a local page
(``sandbox_pay``) with a test card that succeeds or is declined, and the sandbox then delivers a
signed webhook to the same receiver Stripe and Razorpay use — after its own commit, through
Celery, as a real gateway would call back later. Refunds, voids and the ledger for
reconciliation work the same way.

Test cards: 4242 4242 4242 4242 (Visa) and 5555 5555 5555 4444 (Mastercard) succeed;
4000 0000 0000 0002 is declined; 4000 0000 0000 9995 fails with insufficient funds. Any other
number that passes the Luhn check succeeds. For subscriptions, 4000 0000 0000 0341 pays the first
time and is declined on every later charge (renewals), to exercise dunning.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
import time
from datetime import datetime
from typing import Any

from django.conf import settings
from django.db import transaction
from django.urls import reverse
from django.utils.translation import gettext

from medimeet.core.errors import ApplicationError
from medimeet.core.events import enqueue_on_commit

from ..models import Payment, Plan, SandboxTransaction, Subscription
from . import base

SIGNATURE_HEADER = "Sandbox-Signature"
TOLERANCE_SECONDS = 300
# The ledger's states in the words of base.ChargeResult.
STATUS = {"requires_payment": "pending", "succeeded": "succeeded", "failed": "failed", "canceled": "canceled"}
DECLINES = {"4000000000000002": ("card_declined", "Your card was declined."), "4000000000009995": ("insufficient_funds", "Your card has insufficient funds.")}


# Pays once, then is declined off-session (renewals): Stripe's 4000 0000 0000 0341 does the same.
DECLINES_LATER = "4000000000000341"


def _fingerprint(number: str) -> str:
    return hashlib.sha256(f"sandbox-card:{number}".encode()).hexdigest()[:32]


def card_token(fingerprint: str) -> str:
    return f"sbx_pm_{fingerprint[:16]}" if fingerprint else ""


def sign(body: bytes, *, timestamp: int | None = None, secret: str | None = None) -> str:
    timestamp = int(time.time()) if timestamp is None else timestamp
    mac = hmac.new((secret or settings.SANDBOX_WEBHOOK_SECRET).encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={mac}"


def verify(body: bytes, header: str) -> None:
    try:
        parts = dict(item.split("=", 1) for item in header.split(","))
        timestamp = int(parts["t"])
    except (ValueError, KeyError):
        raise base.InvalidSignature("Malformed signature header.") from None
    if abs(time.time() - timestamp) > TOLERANCE_SECONDS:
        raise base.InvalidSignature("Timestamp outside the tolerance window.")
    if not hmac.compare_digest(sign(body, timestamp=timestamp).split("v1=")[1], parts.get("v1", "")):
        raise base.InvalidSignature("Signature does not match.")


def decline_message(code: str) -> str:
    return dict(DECLINES.values()).get(code, "") if code else ""


def luhn_valid(number: str) -> bool:
    digits = [int(d) for d in number]
    checksum = sum(digits[-1::-2]) + sum(sum(divmod(2 * d, 10)) for d in digits[-2::-2])
    return 12 <= len(digits) <= 19 and checksum % 10 == 0


def card_brand(number: str) -> str:
    if number.startswith("4"):
        return "visa"
    if number[:2] in {"51", "52", "53", "54", "55"} or "2221" <= number[:4] <= "2720":
        return "mastercard"
    if number[:2] in {"34", "37"}:
        return "amex"
    if number.startswith(("60", "65", "81", "82", "508")):
        return "rupay"
    return "card"


def _deliver(event_type: str, data: dict[str, Any]) -> None:
    """Send a webhook to ourselves after commit, like the real gateways do."""
    from ..tasks import sandbox_deliver_webhook

    body = json.dumps({"id": f"evt_{secrets.token_hex(12)}", "type": event_type, "created": int(time.time()), "data": data})
    enqueue_on_commit(sandbox_deliver_webhook, body=body)


def _charge(tx: SandboxTransaction) -> base.ChargeResult:
    status = STATUS[tx.status]
    return base.ChargeResult(
        status=status,
        amount_minor=tx.amount_minor,
        currency=tx.currency,
        payment_id=tx.reference if tx.status == tx.Status.SUCCEEDED else "",
        card_brand=tx.card_brand,
        card_last4=tx.card_last4,
        card_fingerprint=tx.card_fingerprint,
        payment_method_token=card_token(tx.card_fingerprint),
        failure_code=tx.failure_code,
        failure_message=decline_message(tx.failure_code),
    )


def _tx_data(tx: SandboxTransaction) -> dict[str, Any]:
    return {
        "reference": tx.reference,
        "status": tx.status,
        "amount_minor": tx.amount_minor,
        "currency": tx.currency,
        "amount_refunded_minor": tx.amount_refunded_minor,
        "card": {"brand": tx.card_brand, "last4": tx.card_last4, "fingerprint": tx.card_fingerprint},
        "failure_code": tx.failure_code,
    }


def sandbox_pay(*, reference: str, card_number: str) -> SandboxTransaction:
    """The patient submits the sandbox pay page: the "gateway" charges the test card."""
    number = "".join(ch for ch in card_number if ch.isdigit())
    if not luhn_valid(number):
        raise ApplicationError("PAY_001", gettext("That card number is not valid."), fields={"card_number": [gettext("Enter a test card number, e.g. 4242 4242 4242 4242.")]})
    with transaction.atomic():
        tx = SandboxTransaction.objects.select_for_update().filter(reference=reference).first()
        if tx is None:
            raise ApplicationError("PAY_009")
        if tx.status != tx.Status.REQUIRES_PAYMENT:
            return tx  # paid, canceled or failed already: a second submit changes nothing
        tx.card_brand, tx.card_last4 = card_brand(number), number[-4:]
        tx.card_fingerprint = _fingerprint(number)
        decline = DECLINES.get(number)
        tx.status = tx.Status.FAILED if decline else tx.Status.SUCCEEDED
        tx.failure_code = decline[0] if decline else ""
        tx.save()
        _deliver("payment.failed" if decline else "payment.succeeded", _tx_data(tx))
    return tx


class SandboxGateway(base.PaymentGateway):
    name = "sandbox"
    checkout_kind = "sandbox_page"

    def start(self, *, payment: Payment, customer_id: str = "", payout_account: str = "") -> base.StartResult:
        tx, _ = SandboxTransaction.objects.get_or_create(
            idempotency_key=f"payment-{payment.public_id}",
            defaults={"reference": f"sbx_{secrets.token_hex(12)}", "amount_minor": payment.amount_minor, "currency": payment.currency},
        )
        return base.StartResult(reference=tx.reference)

    def checkout(self, payment: Payment) -> base.Checkout:
        url = settings.SITE_URL + reverse("payments:sandbox", args=[payment.gateway_reference]) if payment.gateway_reference else ""
        return base.Checkout(kind=self.checkout_kind, reference=payment.gateway_reference, url=url)

    def fetch(self, *, payment: Payment, client_data: dict[str, str]) -> base.ChargeResult:
        tx = SandboxTransaction.objects.filter(reference=payment.gateway_reference).first()
        if tx is None:
            raise base.GatewayError("No such sandbox transaction.", retryable=False)
        return _charge(tx)

    def void(self, *, payment: Payment) -> None:
        SandboxTransaction.objects.filter(reference=payment.gateway_reference, status=SandboxTransaction.Status.REQUIRES_PAYMENT).update(
            status=SandboxTransaction.Status.CANCELED
        )

    def refund(self, *, payment: Payment, amount_minor: int, idempotency_key: str, reason: str) -> base.RefundResult:
        with transaction.atomic():
            tx = SandboxTransaction.objects.select_for_update().filter(reference=payment.gateway_reference).first()
            if tx is None or tx.status != tx.Status.SUCCEEDED:
                return base.RefundResult(reference="", status="failed", failure_message="The payment was not captured.")
            done = next((r for r in tx.refunds if r["idempotency_key"] == idempotency_key), None)
            if done is not None:  # the same request again: the same refund
                return base.RefundResult(reference=done["id"], status="succeeded")
            if tx.amount_refunded_minor + amount_minor > tx.amount_minor:
                return base.RefundResult(reference="", status="failed", failure_message="The refund exceeds the captured amount.")
            refund = {"id": f"sbx_re_{secrets.token_hex(10)}", "amount_minor": amount_minor, "idempotency_key": idempotency_key}
            tx.refunds = [*tx.refunds, refund]
            tx.amount_refunded_minor += amount_minor
            tx.save(update_fields=["refunds", "amount_refunded_minor", "updated_at"])
            _deliver("refund.succeeded", {**_tx_data(tx), "refund": {"id": refund["id"], "amount_minor": amount_minor, "key": idempotency_key}})
        return base.RefundResult(reference=refund["id"], status="succeeded")

    def parse_webhook(self, *, body: bytes, headers: dict[str, str]) -> base.GatewayEvent:
        verify(body, headers.get(SIGNATURE_HEADER, ""))
        try:
            payload = json.loads(body)
            return self.event_from_payload(payload, event_id=str(payload["id"]))
        except (ValueError, KeyError, TypeError):
            raise base.InvalidSignature("Malformed event body.") from None

    def event_from_payload(self, payload: dict[str, Any], *, event_id: str) -> base.GatewayEvent:
        data, event_type = payload["data"], payload["type"]
        kind = {
            "payment.succeeded": base.PAYMENT_SUCCEEDED,
            "payment.failed": base.PAYMENT_FAILED,
            "refund.succeeded": base.REFUND_SUCCEEDED,
        }.get(event_type, base.OTHER)
        status = STATUS.get(data.get("status"), "pending")
        card = data.get("card") or {}
        charge = base.ChargeResult(
            status=status,
            amount_minor=int(data["amount_minor"]),
            currency=data["currency"],
            payment_id=data["reference"] if status == "succeeded" else "",
            card_brand=card.get("brand", ""),
            card_last4=card.get("last4", ""),
            card_fingerprint=card.get("fingerprint", ""),
            payment_method_token=card_token(card.get("fingerprint", "")),
            failure_code=data.get("failure_code", ""),
            failure_message=decline_message(data.get("failure_code", "")),
        )
        refund = data.get("refund") or {}
        return base.GatewayEvent(
            event_id=event_id,
            event_type=event_type,
            kind=kind,
            payment_reference=data["reference"],
            charge=charge,
            refund_reference=refund.get("id", ""),
            refund_key=refund.get("key", ""),
            refund_amount_minor=int(refund.get("amount_minor", 0)),
            payload=payload,
        )

    # --- Subscriptions: the sandbox has no billing engine; our beat task renews and retries.

    def subscription_start(self, *, subscription: Subscription, customer_id: str = "") -> base.SubscriptionStart:
        tx, _ = SandboxTransaction.objects.get_or_create(
            idempotency_key=f"subscription-{subscription.public_id}",
            defaults={"reference": f"sbx_{secrets.token_hex(12)}", "amount_minor": subscription.plan.price_minor, "currency": subscription.plan.currency},
        )
        url = settings.SITE_URL + reverse("payments:plan-sandbox", args=[tx.reference])
        return base.SubscriptionStart(reference="", charge_reference=tx.reference, checkout=base.Checkout(kind=self.checkout_kind, reference=tx.reference, url=url))

    def subscription_fetch_charge(self, *, reference: str) -> base.ChargeResult:
        tx = SandboxTransaction.objects.filter(reference=reference).first()
        if tx is None:
            raise base.GatewayError("No such sandbox transaction.", retryable=False)
        return _charge(tx)

    def _state(self, subscription: Subscription, *, cancel: bool) -> base.SubscriptionState:
        return base.SubscriptionState(
            reference=subscription.gateway_reference,
            status=subscription.status,
            current_period_start=subscription.current_period_start,
            current_period_end=subscription.current_period_end,
            cancel_at_period_end=cancel,
        )

    def subscription_set_cancel_at_period_end(self, *, subscription: Subscription, cancel: bool) -> base.SubscriptionState:
        return self._state(subscription, cancel=cancel)

    def subscription_change_plan(self, *, subscription: Subscription, plan: Plan) -> base.SubscriptionState:
        return self._state(subscription, cancel=subscription.cancel_at_period_end)

    def subscription_charge(self, *, subscription: Subscription, amount_minor: int, idempotency_key: str) -> base.ChargeResult:
        """An off-session charge of the card saved with the first payment. The same key gives
        the same transaction (a retried task charges once)."""
        with transaction.atomic():
            tx, created = SandboxTransaction.objects.select_for_update().get_or_create(
                idempotency_key=idempotency_key,
                defaults={"reference": f"sbx_{secrets.token_hex(12)}", "amount_minor": amount_minor, "currency": subscription.plan.currency},
            )
            if tx.status == tx.Status.REQUIRES_PAYMENT:
                token = subscription.payment_method
                declined = not token or token == card_token(_fingerprint(DECLINES_LATER))
                tx.card_fingerprint = token.removeprefix("sbx_pm_")
                tx.status = tx.Status.FAILED if declined else tx.Status.SUCCEEDED
                tx.failure_code = "card_declined" if declined else ""
                tx.save()
        return _charge(tx)

    def ledger(self, *, since: datetime, until: datetime) -> list[base.LedgerEntry]:
        return [
            base.LedgerEntry(
                reference=tx.reference,
                status=STATUS[tx.status],
                amount_minor=tx.amount_minor,
                currency=tx.currency,
                amount_refunded_minor=tx.amount_refunded_minor,
                created=tx.created_at,
            )
            for tx in SandboxTransaction.objects.filter(created_at__gte=since, created_at__lt=until).order_by("created_at")
        ]
