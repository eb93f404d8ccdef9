"""Payment gateways behind one interface (``base.PaymentGateway``), and the rule that picks one.

- ``sandbox``: the offline gateway of the embedded default (no keys needed), with its own ledger
  and a local pay page; it walks through the same states and sends signed webhooks.
- ``stripe``: PaymentIntents, Customers and saved cards, refunds, Connect transfers.
- ``razorpay``: orders for Checkout.js, payment signature verification, refunds.
"""

from __future__ import annotations

from functools import cache

from django.conf import settings

from .base import GatewayError, PaymentGateway


class GatewayUnavailable(GatewayError):
    """No real gateway serves this payment and the sandbox is not allowed (production)."""

    def __init__(self, message: str) -> None:
        super().__init__(message, retryable=False)

GATEWAY_NAMES = ("sandbox", "stripe", "razorpay")


def gateway_configured(name: str) -> bool:
    if name == "stripe":
        return bool(settings.STRIPE_SECRET_KEY and settings.STRIPE_WEBHOOK_SECRET)
    if name == "razorpay":
        return bool(settings.RAZORPAY_KEY_ID and settings.RAZORPAY_KEY_SECRET and settings.RAZORPAY_WEBHOOK_SECRET)
    return name == "sandbox"


def gateway_name_for(*, currency: str, billing_country: str = "") -> str:
    """The platform setting PAYMENT_GATEWAY_ROUTES picks by billing country, then currency, then
    "*" (by default INR or an Indian billing country → Razorpay, everything else → Stripe); the
    sandbox when the chosen gateway has no keys (the embedded default). ``PAYMENT_GATEWAY``
    (environment) overrides."""
    from medimeet.core.platform import gateway_route

    if settings.PAYMENT_GATEWAY:
        name = settings.PAYMENT_GATEWAY
    else:
        name = gateway_route(currency=currency, billing_country=billing_country)
        name = name if gateway_configured(name) else "sandbox"
    if name == "sandbox" and not settings.PAYMENT_SANDBOX_ALLOWED:
        raise GatewayUnavailable(f"No payment gateway is configured for {currency}.")
    return name


def gateway_get(name: str) -> PaymentGateway:
    """The gateway object for a name (payments remember which gateway took them)."""
    return _gateway(name, _settings_key(name))


def _settings_key(name: str) -> tuple:
    # Part of the cache key, so tests that override the keys get a fresh client.
    if name == "stripe":
        return (settings.STRIPE_SECRET_KEY, settings.STRIPE_WEBHOOK_SECRET, settings.STRIPE_PUBLISHABLE_KEY)
    if name == "razorpay":
        return (settings.RAZORPAY_KEY_ID, settings.RAZORPAY_KEY_SECRET, settings.RAZORPAY_WEBHOOK_SECRET)
    return (settings.SANDBOX_WEBHOOK_SECRET,)


@cache
def _gateway(name: str, _key: tuple) -> PaymentGateway:
    if name == "stripe":
        from .stripe import StripeGateway

        return StripeGateway()
    if name == "razorpay":
        from .razorpay import RazorpayGateway

        return RazorpayGateway()
    if name == "sandbox":
        from .sandbox import SandboxGateway

        return SandboxGateway()
    raise ValueError(f"Unknown payment gateway {name!r}")
