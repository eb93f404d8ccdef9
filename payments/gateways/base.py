"""The one interface every payment gateway implements, and the plain values it speaks in.

Services never import a gateway SDK: they ask ``gateway_get(name)`` (or ``gateway_for``) for an
object with these methods and deal only in ``Checkout``, ``ChargeResult``, ``RefundResult``,
``GatewayEvent`` and ``LedgerEntry``. Each implementation turns its SDK's objects into these, so
the rest of the product — and every API response — is the same whichever gateway took the money.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any, ClassVar

if TYPE_CHECKING:
    from accounts.models import User

    from ..models import Payment, Plan, Subscription


class GatewayError(Exception):
    """The gateway could not be reached or refused the call (network, 5xx, bad request).
    ``retryable`` says whether trying again later (with the same idempotency key) may work."""

    def __init__(self, message: str, *, retryable: bool = True) -> None:
        super().__init__(message)
        self.retryable = retryable


class InvalidSignature(Exception):
    """A webhook or client callback whose signature does not verify."""


# Kinds of event the services act on; anything else is stored and ignored.
PAYMENT_SUCCEEDED = "payment.succeeded"
PAYMENT_FAILED = "payment.failed"
PAYMENT_CANCELED = "payment.canceled"
REFUND_SUCCEEDED = "refund.succeeded"
REFUND_FAILED = "refund.failed"
SUBSCRIPTION_PAID = "subscription.paid"  # a subscription invoice was paid (first payment, renewal, proration)
SUBSCRIPTION_PAYMENT_FAILED = "subscription.payment_failed"  # a renewal failed: dunning
SUBSCRIPTION_UPDATED = "subscription.updated"  # status, period, plan or cancel-at-period-end changed
SUBSCRIPTION_ENDED = "subscription.ended"  # cancelled or expired at the gateway
OTHER = "other"


@dataclass(frozen=True)
class StartResult:
    """What creating the payment at the gateway gave back."""

    reference: str  # PaymentIntent id / order id / sandbox transaction
    client_secret: str = ""


@dataclass(frozen=True)
class Checkout:
    """What a client needs to complete the payment; one shape for every gateway."""

    kind: str  # "sandbox_page" | "stripe_payment_intent" | "razorpay_order"
    reference: str
    public_key: str = ""
    client_secret: str = ""
    url: str = ""


@dataclass(frozen=True)
class ChargeResult:
    """The gateway's view of a payment: pending, succeeded or failed, and for how much."""

    status: str  # "pending" | "succeeded" | "failed" | "canceled"
    amount_minor: int
    currency: str  # upper-case ISO 4217
    payment_id: str = ""  # charge / payment id
    card_brand: str = ""
    card_last4: str = ""
    card_fingerprint: str = ""
    payment_method_token: str = ""
    card_exp_month: int | None = None
    card_exp_year: int | None = None
    failure_code: str = ""
    failure_message: str = ""


@dataclass(frozen=True)
class RefundResult:
    reference: str
    status: str  # "pending" | "succeeded" | "failed"
    failure_message: str = ""


@dataclass(frozen=True)
class SubscriptionState:
    """The gateway's view of a subscription."""

    reference: str  # Stripe sub_… / Razorpay sub_…
    status: str  # "incomplete" | "active" | "past_due" | "cancelled" | "expired"
    current_period_start: datetime | None = None
    current_period_end: datetime | None = None
    cancel_at_period_end: bool = False
    price_id: str = ""  # Stripe price / Razorpay plan the subscription is on now


@dataclass(frozen=True)
class SubscriptionStart:
    """What starting a subscription gave back: the subscription at the gateway (sandbox: none)
    and how the patient makes the first payment."""

    reference: str
    charge_reference: str  # sandbox transaction / Stripe invoice / "" (Razorpay: first payment unknown yet)
    checkout: Checkout


@dataclass(frozen=True)
class SubscriptionInvoice:
    """One subscription invoice the gateway paid or failed to collect."""

    reference: str  # Stripe invoice id / Razorpay payment id
    status: str  # "paid" | "failed"
    amount_minor: int
    currency: str
    period_start: datetime | None = None
    period_end: datetime | None = None
    attempt: int = 0
    next_attempt: datetime | None = None
    failure_message: str = ""


@dataclass(frozen=True)
class GatewayEvent:
    """A verified webhook event, normalised."""

    event_id: str
    event_type: str  # the gateway's own name, e.g. "payment_intent.succeeded"
    kind: str  # one of the constants above
    # The payment at the gateway the event is about: our Payment.gateway_reference (PaymentIntent
    # id, order id, sandbox reference) or, when only that is known, the charge/payment id.
    payment_reference: str = ""
    charge: ChargeResult | None = None
    refund_reference: str = ""
    # Our idempotency key for the refund ("refund-<Refund.public_id>") when the gateway echoes it
    # back (Stripe metadata, Razorpay notes): it finds our refund even if our call timed out.
    refund_key: str = ""
    refund_amount_minor: int = 0
    refund_failure: str = ""
    # Subscription events: the gateway's subscription id, its state and the invoice concerned.
    subscription_reference: str = ""
    subscription: SubscriptionState | None = None
    invoice: SubscriptionInvoice | None = None
    payload: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class LedgerEntry:
    """One payment as the gateway records it, for reconciliation."""

    reference: str
    status: str  # "pending" | "succeeded" | "failed" | "canceled"
    amount_minor: int
    currency: str
    amount_refunded_minor: int
    created: datetime | None = None


class PaymentGateway:
    """Base class: each gateway overrides every method."""

    name: ClassVar[str]
    checkout_kind: ClassVar[str]

    def start(self, *, payment: Payment, customer_id: str = "", payout_account: str = "") -> StartResult:
        """Create the payment at the gateway. Must be safe to call again for the same payment
        (the idempotency key is derived from the payment) and return the same reference."""
        raise NotImplementedError

    def checkout(self, payment: Payment) -> Checkout:
        raise NotImplementedError

    def fetch(self, *, payment: Payment, client_data: dict[str, str]) -> ChargeResult:
        """The client says it has paid: check with the gateway (and the callback signature where
        the gateway signs it; raise InvalidSignature when it does not verify)."""
        raise NotImplementedError

    def void(self, *, payment: Payment) -> None:
        """Cancel a payment that has not been completed (the hold lapsed)."""
        raise NotImplementedError

    def refund(self, *, payment: Payment, amount_minor: int, idempotency_key: str, reason: str) -> RefundResult:
        raise NotImplementedError

    def parse_webhook(self, *, body: bytes, headers: dict[str, str]) -> GatewayEvent:
        """Verify the signature (raise InvalidSignature) and normalise the event."""
        raise NotImplementedError

    def event_from_payload(self, payload: dict[str, Any], *, event_id: str) -> GatewayEvent:
        """Normalise a stored (already verified) event payload again, for processing."""
        raise NotImplementedError

    def customer_ensure(self, *, user: User, existing: str = "") -> str:
        """The gateway's customer id for the user ("" when the gateway has no customers)."""
        return existing

    def ledger(self, *, since: datetime, until: datetime) -> list[LedgerEntry]:
        """The gateway's records of payments created in [since, until), for reconciliation."""
        raise NotImplementedError

    # --- Subscriptions: the gateway's billing runs renewals and dunning (the sandbox: our beat task).

    def subscription_start(self, *, subscription: Subscription, customer_id: str = "") -> SubscriptionStart:
        """Create the subscription (and its first invoice) at the gateway; safe to call again
        for the same subscription (keyed by its id)."""
        raise NotImplementedError

    def subscription_set_cancel_at_period_end(self, *, subscription: Subscription, cancel: bool) -> SubscriptionState:
        """Cancel at the end of the period (``cancel``) or take that back (resume)."""
        raise NotImplementedError

    def subscription_change_plan(self, *, subscription: Subscription, plan: Plan) -> SubscriptionState:
        """Move to another plan now, the gateway prorating the difference."""
        raise NotImplementedError

    def subscription_proration_preview(self, *, subscription: Subscription, plan: Plan) -> int | None:
        """What the gateway would charge now (negative: credit) for the change; None when we
        compute it ourselves (the sandbox)."""
        return None

    def subscription_charge(self, *, subscription: Subscription, amount_minor: int, idempotency_key: str) -> ChargeResult:
        """Charge the subscription's saved card now (renewals and prorations the gateway does
        not run itself: the sandbox)."""
        raise NotImplementedError
