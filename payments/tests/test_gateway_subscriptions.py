"""Care plans on Stripe Billing and Razorpay Subscriptions: the real SDKs' request code against
recorded responses (``responses``), webhooks signed and verified for real, then applied through
the WebhookEvent store exactly once, whatever the order and however often they arrive."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import pytest
import responses

from accounts.tests.factories import UserFactory
from payments import services
from payments.gateways import base
from payments.gateways.razorpay import RazorpayGateway
from payments.gateways.stripe import StripeGateway
from payments.models import CreditBalance, GatewayCustomer, Plan, Subscription, SubscriptionCharge, WebhookEvent

from .test_gateway_razorpay import KEY_ID, KEY_SECRET, hmac_hex, sent_json
from .test_gateway_razorpay import WEBHOOK_SECRET as RZP_WEBHOOK_SECRET
from .test_gateway_stripe import API as STRIPE_API
from .test_gateway_stripe import RECORDED, form, recorded, sign
from .test_gateway_stripe import stripe_settings as stripe_settings  # a fixture, re-exported for this module

RZP_API = "https://api.razorpay.com/v1"
SUB, RSUB = "sub_1SXa4kLkdIwHu7ixQm3TzR8b", "sub_RhQ2aB7cD9eF1g"
FIRST_INVOICE = "in_1SXa4kLkdIwHu7ixF1rstInv"
PUBLIC_ID = uuid.UUID("3d1f7b2a-9c4e-4e61-8a0d-5b2c7e9f1a34")
P1, P2, P3 = (datetime(2026, 11, 2, 7, tzinfo=UTC), datetime(2026, 12, 2, 7, tzinfo=UTC), datetime(2027, 1, 2, 7, tzinfo=UTC))


@pytest.fixture
def api():
    with responses.RequestsMock() as rsps:
        yield rsps


@pytest.fixture
def razorpay_settings(settings):
    settings.RAZORPAY_KEY_ID, settings.RAZORPAY_KEY_SECRET, settings.RAZORPAY_WEBHOOK_SECRET = KEY_ID, KEY_SECRET, RZP_WEBHOOK_SECRET
    settings.PAYMENT_GATEWAY_TIMEOUT_SECONDS = 5
    return settings


def plan(**fields) -> Plan:
    values = {"name": "Video care", "price_minor": 200000, "currency": "INR", "credits_per_period": 4, "stripe_price_id": "price_1SXa1cLkdIwHu7ixVideoCare", "razorpay_plan_id": "plan_RhP1VideoCare"}
    return Plan(**{**values, **fields})


def unsaved_subscription(gateway: str, **fields) -> Subscription:
    values = {"public_id": PUBLIC_ID, "plan": plan(), "gateway": gateway, "gateway_reference": SUB if gateway == "stripe" else RSUB}
    return Subscription(**{**values, **fields})


# --- Stripe: calls ---------------------------------------------------------------------------


def test_stripe_subscription_starts_incomplete_on_the_plans_price_with_the_first_invoices_secret(stripe_settings, api):
    api.post(f"{STRIPE_API}/subscriptions", json=recorded("stripe_subscription_created"))

    started = StripeGateway().subscription_start(subscription=unsaved_subscription("stripe", gateway_reference=""), customer_id="cus_TSk2mB9qXa0Lwe")

    assert (started.reference, started.charge_reference) == (SUB, FIRST_INVOICE)
    assert started.checkout.kind == "stripe_payment_intent"
    assert started.checkout.client_secret == "pi_3SXa4kLkdIwHu7ix1Ab2Cd3E_secret_Qw8eRt5yUi9oP"
    request = api.calls[0].request
    assert form(request) == {
        "customer": "cus_TSk2mB9qXa0Lwe",
        "items[0][price]": "price_1SXa1cLkdIwHu7ixVideoCare",
        "payment_behavior": "default_incomplete",
        "payment_settings[save_default_payment_method]": "on_subscription",
        "metadata[subscription]": str(PUBLIC_ID),
        "expand[0]": "latest_invoice.confirmation_secret",
    }
    assert request.headers["Idempotency-Key"] == f"subscription-{PUBLIC_ID}"


def test_stripe_cancel_at_period_end_sets_the_flag(stripe_settings, api):
    api.post(f"{STRIPE_API}/subscriptions/{SUB}", json=recorded("stripe_subscription_cancel_at_period_end"))

    state = StripeGateway().subscription_set_cancel_at_period_end(subscription=unsaved_subscription("stripe"), cancel=True)

    assert form(api.calls[0].request) == {"cancel_at_period_end": "true"}
    assert (state.status, state.cancel_at_period_end, state.current_period_end) == ("active", True, P2)


def test_stripe_plan_change_swaps_the_items_price_and_invoices_the_proration_now(stripe_settings, api):
    api.get(f"{STRIPE_API}/subscriptions/{SUB}", json=recorded("stripe_subscription_retrieved"))
    api.post(f"{STRIPE_API}/subscriptions/{SUB}", json=recorded("stripe_subscription_plan_changed"))

    state = StripeGateway().subscription_change_plan(subscription=unsaved_subscription("stripe"), plan=plan(stripe_price_id="price_1SXa2dLkdIwHu7ixFamilyCare"))

    assert form(api.calls[1].request) == {"items[0][id]": "si_TUa4kQm3TzR8bX", "items[0][price]": "price_1SXa2dLkdIwHu7ixFamilyCare", "proration_behavior": "always_invoice"}
    assert state.price_id == "price_1SXa2dLkdIwHu7ixFamilyCare"


@pytest.mark.django_db
def test_stripe_proration_preview_is_stripes_amount_due(stripe_settings, api):
    patient = UserFactory()
    GatewayCustomer.objects.create(user=patient, gateway="stripe", customer_id="cus_TSk2mB9qXa0Lwe")
    api.get(f"{STRIPE_API}/subscriptions/{SUB}", json=recorded("stripe_subscription_retrieved"))
    api.post(f"{STRIPE_API}/invoices/create_preview", json=recorded("stripe_invoice_preview"))

    amount = StripeGateway().subscription_proration_preview(subscription=unsaved_subscription("stripe", patient=patient), plan=plan(stripe_price_id="price_1SXa2dLkdIwHu7ixFamilyCare"))

    assert amount == 150000
    sent = form(api.calls[1].request)
    assert sent["subscription"] == SUB and sent["subscription_details[proration_behavior]"] == "always_invoice"


# --- Stripe: events ------------------------------------------------------------------------------


def stripe_body(name: str) -> bytes:
    return (RECORDED / f"{name}.json").read_bytes()


def test_stripe_invoice_paid_is_a_subscription_payment_for_the_period_of_its_subscription_line(stripe_settings):
    body = stripe_body("stripe_event_invoice_paid_renewal")

    event = StripeGateway().parse_webhook(body=body, headers={"Stripe-Signature": sign(body)})

    assert (event.kind, event.subscription_reference) == (base.SUBSCRIPTION_PAID, SUB)
    assert event.invoice == base.SubscriptionInvoice(
        reference="in_1SYb6bLkdIwHu7ixRenewal1", status="paid", amount_minor=200000, currency="INR", period_start=P2, period_end=P3, attempt=2
    )


def test_stripe_invoice_payment_failed_carries_the_next_attempt(stripe_settings):
    body = stripe_body("stripe_event_invoice_payment_failed")

    event = StripeGateway().parse_webhook(body=body, headers={"Stripe-Signature": sign(body)})

    assert event.kind == base.SUBSCRIPTION_PAYMENT_FAILED
    assert (event.invoice.status, event.invoice.attempt, event.invoice.next_attempt) == ("failed", 1, datetime(2026, 12, 5, 7, tzinfo=UTC))


def test_stripe_subscription_events_and_invoices_without_a_subscription(stripe_settings):
    gateway = StripeGateway()
    events = {name: gateway.event_from_payload(recorded(name), event_id="x") for name in ("stripe_event_subscription_updated", "stripe_event_subscription_deleted", "stripe_event_invoice_paid_one_off")}

    assert events["stripe_event_subscription_updated"].kind == base.SUBSCRIPTION_UPDATED
    assert events["stripe_event_subscription_updated"].subscription.cancel_at_period_end is True
    assert (events["stripe_event_subscription_deleted"].kind, events["stripe_event_subscription_deleted"].subscription.status) == (base.SUBSCRIPTION_ENDED, "cancelled")
    assert events["stripe_event_invoice_paid_one_off"].kind == base.OTHER


def test_a_forged_stripe_subscription_event_is_rejected(stripe_settings):
    body = stripe_body("stripe_event_invoice_paid_renewal")

    with pytest.raises(base.InvalidSignature):
        StripeGateway().parse_webhook(body=body, headers={"Stripe-Signature": sign(body, secret="whsec_wrong")})


# --- Razorpay: calls and events ------------------------------------------------------------------


def test_razorpay_subscription_is_created_on_the_plan_with_its_hosted_page(razorpay_settings, api):
    api.post(f"{RZP_API}/subscriptions", json=recorded("razorpay_subscription_created"))

    started = RazorpayGateway().subscription_start(subscription=unsaved_subscription("razorpay", gateway_reference=""))

    assert sent_json(api.calls[0]) == {"plan_id": "plan_RhP1VideoCare", "total_count": 120, "customer_notify": 1, "notes": {"subscription": str(PUBLIC_ID)}}
    assert (started.reference, started.checkout.kind, started.checkout.url) == (RSUB, "razorpay_subscription", "https://rzp.io/rzp/hQ2aB7c")


def test_razorpay_cancel_at_cycle_end_and_no_resume(razorpay_settings, api):
    api.post(f"{RZP_API}/subscriptions/{RSUB}/cancel", json=recorded("razorpay_subscription_cancel_at_cycle_end"))
    gateway = RazorpayGateway()

    state = gateway.subscription_set_cancel_at_period_end(subscription=unsaved_subscription("razorpay"), cancel=True)

    assert sent_json(api.calls[0]) == {"cancel_at_cycle_end": 1}
    assert (state.cancel_at_period_end, state.current_period_end) == (True, P2)
    with pytest.raises(base.GatewayError) as error:
        gateway.subscription_set_cancel_at_period_end(subscription=unsaved_subscription("razorpay"), cancel=False)
    assert error.value.retryable is False


def test_razorpay_plan_change_is_now_with_razorpays_proration(razorpay_settings, api):
    api.patch(f"{RZP_API}/subscriptions/{RSUB}", json=recorded("razorpay_subscription_plan_changed"))

    state = RazorpayGateway().subscription_change_plan(subscription=unsaved_subscription("razorpay"), plan=plan(razorpay_plan_id="plan_RhP2FamilyCare"))

    assert sent_json(api.calls[0]) == {"plan_id": "plan_RhP2FamilyCare", "schedule_change_at": "now", "customer_notify": 1}
    assert state.price_id == "plan_RhP2FamilyCare"


def razorpay_headers(body: bytes, event_id: str) -> dict[str, str]:
    return {"X-Razorpay-Signature": hmac_hex(RZP_WEBHOOK_SECRET, body), "X-Razorpay-Event-Id": event_id}


def test_razorpay_subscription_events_are_normalised(razorpay_settings):
    gateway = RazorpayGateway()
    charged = gateway.event_from_payload(recorded("razorpay_event_subscription_charged_renewal"), event_id="e1")
    pending = gateway.event_from_payload(recorded("razorpay_event_subscription_pending"), event_id="e2")
    halted = gateway.event_from_payload(recorded("razorpay_event_subscription_halted"), event_id="e3")

    assert (charged.kind, charged.subscription_reference, charged.invoice.reference, charged.invoice.period_start, charged.invoice.period_end) == (
        base.SUBSCRIPTION_PAID, RSUB, "pay_RhS5aB7cD9eF1g", P2, P3
    )
    assert (pending.kind, pending.invoice.reference, pending.invoice.attempt, pending.invoice.next_attempt) == (
        base.SUBSCRIPTION_PAYMENT_FAILED, "inv_RhS5aB7cD9eF1g", 1, datetime(2026, 12, 3, 7, tzinfo=UTC)
    )
    assert (halted.kind, halted.subscription.status) == (base.SUBSCRIPTION_ENDED, "expired")


# --- Applied once, in any order (WebhookEvent store + claim) --------------------------------


def deliver_stripe(name: str):
    body = stripe_body(name)
    return services.webhook_receive(gateway_name="stripe", body=body, headers={"Stripe-Signature": sign(body)})


def stripe_subscription(patient) -> Subscription:
    plan_row = plan()
    plan_row.save()
    subscription = Subscription.objects.create(patient=patient, plan=plan_row, gateway="stripe", gateway_reference=SUB)
    SubscriptionCharge.objects.create(subscription=subscription, kind="first", amount_minor=200000, currency="INR", gateway_reference=FIRST_INVOICE)
    return subscription


@pytest.mark.django_db(transaction=True)
def test_stripe_webhooks_drive_the_lifecycle_once_in_any_order(stripe_settings, settings):
    settings.PAYMENT_GATEWAY = "stripe"
    subscription = stripe_subscription(UserFactory())

    # The renewal's failure and the later "cancel at period end" update arrive before the first payment.
    deliver_stripe("stripe_event_invoice_payment_failed")
    deliver_stripe("stripe_event_subscription_updated")
    deliver_stripe("stripe_event_invoice_paid_first")
    for _ in range(2):  # a duplicate delivery
        deliver_stripe("stripe_event_invoice_paid_first")

    subscription.refresh_from_db()
    assert subscription.status == "active"
    assert (subscription.current_period_start, subscription.current_period_end) == (P1, P2)
    assert WebhookEvent.objects.count() == 3
    assert CreditBalance.objects.filter(subscription=subscription).count() == 1
    # The renewal failure was deferred until the subscription was active, then applied: dunning.
    from payments.services import webhook_events_retry

    webhook_events_retry()
    subscription.refresh_from_db()
    assert (subscription.status, subscription.failed_attempts, subscription.next_retry_at) == ("past_due", 1, datetime(2026, 12, 5, 7, tzinfo=UTC))

    deliver_stripe("stripe_event_invoice_paid_renewal")
    deliver_stripe("stripe_event_subscription_updated")  # an old update arriving late changes nothing

    subscription.refresh_from_db()
    assert (subscription.status, subscription.current_period_start, subscription.current_period_end, subscription.failed_attempts) == ("active", P2, P3, 0)
    renewal = SubscriptionCharge.objects.get(kind="renewal")
    assert (renewal.gateway_reference, renewal.status, renewal.attempts) == ("in_1SYb6bLkdIwHu7ixRenewal1", "paid", 2)

    deliver_stripe("stripe_event_subscription_deleted")
    subscription.refresh_from_db()
    assert subscription.status in ("cancelled", "expired") and subscription.ended_at is not None


@pytest.mark.django_db(transaction=True)
def test_razorpay_webhooks_charge_fail_and_halt(razorpay_settings):
    patient = UserFactory()
    plan_row = plan()
    plan_row.save()
    subscription = Subscription.objects.create(patient=patient, plan=plan_row, gateway="razorpay", gateway_reference=RSUB)
    SubscriptionCharge.objects.create(subscription=subscription, kind="first", amount_minor=200000, currency="INR")

    def deliver(name: str, event_id: str):
        body = (RECORDED / f"{name}.json").read_bytes()
        return services.webhook_receive(gateway_name="razorpay", body=body, headers=razorpay_headers(body, event_id))

    deliver("razorpay_event_subscription_charged_first", "evt_rzp_1")
    deliver("razorpay_event_subscription_charged_first", "evt_rzp_1")  # redelivered: same event id
    subscription.refresh_from_db()
    assert (subscription.status, subscription.current_period_end) == ("active", P2)
    assert SubscriptionCharge.objects.get().gateway_reference == "pay_RhQ4aB7cD9eF1g"

    deliver("razorpay_event_subscription_pending", "evt_rzp_2")
    subscription.refresh_from_db()
    assert (subscription.status, subscription.failed_attempts) == ("past_due", 1)

    deliver("razorpay_event_subscription_halted", "evt_rzp_3")
    subscription.refresh_from_db()
    assert subscription.status == "expired"
    assert WebhookEvent.objects.filter(status="processed").count() == 3
