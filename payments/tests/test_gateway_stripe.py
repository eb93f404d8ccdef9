"""StripeGateway against recorded Stripe responses: the real stripe-python request code runs and
``responses`` answers at the ``requests`` layer; webhook signatures are made and checked for real."""

from __future__ import annotations

import copy
import hashlib
import hmac
import json
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
import responses
from stripe._http_client import HTTPClient

from accounts.models import User
from payments.gateways import base
from payments.gateways.stripe import StripeGateway
from payments.models import Payment

RECORDED = Path(__file__).parent / "recorded"
API = "https://api.stripe.com/v1"
PUBLIC_ID = uuid.UUID("8f0c6a3e-2b7d-4c1e-9a55-3d2f1b0e7c64")
PI = "pi_3SVq8nLkdIwHu7ix0x9VbKqA"
SECRET_KEY = "sk_test_51MediMeetTestOnly0000000000000000000000000000"
WEBHOOK_SECRET = "whsec_MediMeetTestOnlyWebhookSecret000000"


def recorded(name: str) -> dict:
    return json.loads((RECORDED / f"{name}.json").read_text())


def form(request) -> dict[str, str]:
    """A form-encoded Stripe request body (or query string) as a flat dict."""
    body = request.body.decode() if isinstance(request.body, bytes) else (request.body or "")
    return {key: values[0] for key, values in parse_qs(body).items()}


def query(request) -> dict[str, list[str]]:
    return parse_qs(urlsplit(request.url).query)


def sign(body: bytes, *, timestamp: int | None = None, secret: str = WEBHOOK_SECRET) -> str:
    """Stripe's scheme: HMAC-SHA256 of "<t>.<body>" with the endpoint secret, as "t=…,v1=…"."""
    timestamp = int(time.time()) if timestamp is None else timestamp
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={mac}"


def make_payment(**fields) -> Payment:
    values = {"public_id": PUBLIC_ID, "amount_minor": 5000, "currency": "USD", "platform_fee_minor": 500, "gateway": "stripe"}
    return Payment(**{**values, **fields})


@pytest.fixture
def stripe_settings(settings):
    settings.STRIPE_SECRET_KEY = SECRET_KEY
    settings.STRIPE_PUBLISHABLE_KEY = "pk_test_51MediMeetTestOnly000000000000000000000000000000"
    settings.STRIPE_WEBHOOK_SECRET = WEBHOOK_SECRET
    settings.STRIPE_WEBHOOK_TOLERANCE_SECONDS = 300
    settings.STRIPE_MAX_NETWORK_RETRIES = 1
    settings.PAYMENT_GATEWAY_TIMEOUT_SECONDS = 5
    return settings


@pytest.fixture
def no_retry_sleep(monkeypatch):
    monkeypatch.setattr(HTTPClient, "_sleep_time_seconds", lambda self, num_retries: 0)


@pytest.fixture
def gateway(stripe_settings, no_retry_sleep) -> StripeGateway:
    return StripeGateway()


@pytest.fixture
def api():
    with responses.RequestsMock() as rsps:
        yield rsps


# --- start --------------------------------------------------------------------------------


def test_start_creates_a_payment_intent_in_minor_units_with_only_ids_in_metadata(gateway, api):
    api.post(f"{API}/payment_intents", json=recorded("stripe_payment_intent_created"))

    result = gateway.start(payment=make_payment())

    assert result == base.StartResult(reference=PI, client_secret=f"{PI}_secret_k2Tq9wXhZ4bLmN0pR7sV1yC3d")
    request = api.calls[0].request
    assert form(request) == {
        "amount": "5000",
        "currency": "usd",
        "automatic_payment_methods[enabled]": "true",
        "metadata[payment]": str(PUBLIC_ID),
    }
    assert request.headers["Idempotency-Key"] == f"payment-{PUBLIC_ID}"
    assert request.headers["Authorization"] == f"Bearer {SECRET_KEY}"


def test_start_sends_a_zero_decimal_currency_amount_unchanged(gateway, api):
    intent = recorded("stripe_payment_intent_created") | {"amount": 3000, "currency": "jpy"}
    api.post(f"{API}/payment_intents", json=intent)

    gateway.start(payment=make_payment(amount_minor=3000, currency="JPY", platform_fee_minor=300))

    sent = form(api.calls[0].request)
    assert (sent["amount"], sent["currency"]) == ("3000", "jpy")


def test_start_passes_customer_saved_card_and_connect_destination_with_the_platform_fee(gateway, api):
    intent = recorded("stripe_payment_intent_created") | {
        "customer": "cus_TSk2mB9qXa0Lwe",
        "setup_future_usage": "off_session",
        "application_fee_amount": 500,
        "transfer_data": {"destination": "acct_1RkD0cPq2xYzAbCd"},
    }
    api.post(f"{API}/payment_intents", json=intent)

    gateway.start(payment=make_payment(save_card=True), customer_id="cus_TSk2mB9qXa0Lwe", payout_account="acct_1RkD0cPq2xYzAbCd")

    sent = form(api.calls[0].request)
    assert sent["customer"] == "cus_TSk2mB9qXa0Lwe"
    assert sent["setup_future_usage"] == "off_session"
    assert sent["transfer_data[destination]"] == "acct_1RkD0cPq2xYzAbCd"
    assert sent["application_fee_amount"] == "500"


def test_start_without_save_card_or_payout_account_sends_neither(gateway, api):
    api.post(f"{API}/payment_intents", json=recorded("stripe_payment_intent_created"))

    gateway.start(payment=make_payment(save_card=False))

    sent = form(api.calls[0].request)
    assert not {"customer", "setup_future_usage", "transfer_data[destination]", "application_fee_amount"} & sent.keys()


def test_a_timeout_on_create_is_retried_with_the_same_idempotency_key_and_yields_one_payment_intent(gateway, api):
    api.post(f"{API}/payment_intents", body=requests.exceptions.ReadTimeout("Read timed out. (read timeout=5)"))
    api.post(f"{API}/payment_intents", json=recorded("stripe_payment_intent_created"))

    result = gateway.start(payment=make_payment())

    assert result.reference == PI
    assert len(api.calls) == 2
    first, second = (call.request for call in api.calls)
    assert first.headers["Idempotency-Key"] == second.headers["Idempotency-Key"] == f"payment-{PUBLIC_ID}"
    assert form(first) == form(second)


def test_calling_start_again_after_a_timeout_reuses_the_key_and_gets_the_same_payment_intent(stripe_settings, no_retry_sleep, api):
    stripe_settings.STRIPE_MAX_NETWORK_RETRIES = 0
    gateway = StripeGateway()
    payment = make_payment()
    api.post(f"{API}/payment_intents", body=requests.exceptions.ReadTimeout("Read timed out. (read timeout=5)"))
    api.post(f"{API}/payment_intents", json=recorded("stripe_payment_intent_created"), headers={"Idempotent-Replayed": "true"})

    with pytest.raises(base.GatewayError) as excinfo:
        gateway.start(payment=payment)
    assert excinfo.value.retryable is True
    result = gateway.start(payment=payment)

    assert result.reference == PI
    assert api.calls[0].request.headers["Idempotency-Key"] == api.calls[1].request.headers["Idempotency-Key"]


# --- errors -------------------------------------------------------------------------------


def test_connection_errors_are_retried_by_the_sdk_then_reported_retryable(gateway, api):
    api.post(f"{API}/payment_intents", body=requests.exceptions.ConnectionError("Connection refused"))
    api.post(f"{API}/payment_intents", body=requests.exceptions.ConnectionError("Connection refused"))

    with pytest.raises(base.GatewayError) as excinfo:
        gateway.start(payment=make_payment())

    assert excinfo.value.retryable is True
    assert len(api.calls) == 2  # the first try and STRIPE_MAX_NETWORK_RETRIES=1


def test_a_server_error_is_retryable(gateway, api):
    api.post(f"{API}/payment_intents", json=recorded("stripe_error_api"), status=500)
    api.post(f"{API}/payment_intents", json=recorded("stripe_error_api"), status=500)

    with pytest.raises(base.GatewayError) as excinfo:
        gateway.start(payment=make_payment())

    assert excinfo.value.retryable is True
    assert len(api.calls) == 2


def test_a_rate_limit_is_retryable(gateway, api):
    api.post(
        f"{API}/payment_intents",
        json={"error": {"message": "Too many requests. Try again later.", "type": "invalid_request_error", "code": "rate_limit"}},
        status=429,
    )

    with pytest.raises(base.GatewayError) as excinfo:
        gateway.start(payment=make_payment())

    assert excinfo.value.retryable is True


def test_a_bad_request_is_not_retryable_and_not_retried(gateway, api):
    api.post(f"{API}/payment_intents", json=recorded("stripe_error_amount_too_small"), status=400)

    with pytest.raises(base.GatewayError) as excinfo:
        gateway.start(payment=make_payment(amount_minor=20))

    assert excinfo.value.retryable is False
    assert "at least" in str(excinfo.value)
    assert len(api.calls) == 1


def test_a_rejected_api_key_is_not_retryable_and_the_key_is_not_in_the_message(gateway, api):
    body = {"error": {"message": "Invalid API Key provided: sk_test_********************0000", "type": "invalid_request_error"}}
    api.post(f"{API}/payment_intents", json=body, status=401)

    with pytest.raises(base.GatewayError) as excinfo:
        gateway.start(payment=make_payment())

    assert excinfo.value.retryable is False
    assert SECRET_KEY not in str(excinfo.value)


def test_reusing_the_idempotency_key_with_other_parameters_is_not_retryable(gateway, api):
    body = {
        "error": {
            "message": "Keys for idempotent requests can only be used with the same parameters they were first used with. Try using a key other than 'payment-8f0c6a3e-2b7d-4c1e-9a55-3d2f1b0e7c64' if you meant to execute a different request.",
            "type": "idempotency_error",
        }
    }
    api.post(f"{API}/payment_intents", json=body, status=400)

    with pytest.raises(base.GatewayError) as excinfo:
        gateway.start(payment=make_payment(amount_minor=6000))

    assert excinfo.value.retryable is False


# --- checkout and fetch -------------------------------------------------------------------


def test_checkout_gives_the_client_the_publishable_key_and_client_secret(gateway):
    payment = make_payment(gateway_reference=PI, client_secret=f"{PI}_secret_abc")

    checkout = gateway.checkout(payment)

    assert checkout == base.Checkout(
        kind="stripe_payment_intent", reference=PI, public_key="pk_test_51MediMeetTestOnly000000000000000000000000000000", client_secret=f"{PI}_secret_abc"
    )


def test_fetch_maps_a_succeeded_payment_intent_with_its_card(gateway, api):
    api.get(f"{API}/payment_intents/{PI}", json=recorded("stripe_payment_intent_succeeded"))

    charge = gateway.fetch(payment=make_payment(gateway_reference=PI), client_data={"payment_intent": "pi_from_the_client_is_ignored"})

    assert charge == base.ChargeResult(
        status="succeeded",
        amount_minor=5000,
        currency="USD",
        payment_id="ch_3SVq8nLkdIwHu7ix0s2TNbCd",
        card_brand="visa",
        card_last4="4242",
        card_fingerprint="Xt5EWLLDS7FJjR1c",
        payment_method_token="pm_1SVq9hLkdIwHu7ixbQd0Hh3M",
        card_exp_month=12,
        card_exp_year=2030,
    )
    assert query(api.calls[0].request) == {"expand[0]": ["latest_charge"]}


def test_fetch_maps_a_declined_payment_to_failed_with_the_decline_reason(gateway, api):
    api.get(f"{API}/payment_intents/{PI}", json=recorded("stripe_payment_intent_failed"))

    charge = gateway.fetch(payment=make_payment(gateway_reference=PI), client_data={})

    assert (charge.status, charge.amount_minor, charge.currency) == ("failed", 5000, "USD")
    assert charge.failure_code == "insufficient_funds"
    assert charge.failure_message == "Your card has insufficient funds."
    assert charge.payment_id == "" and charge.payment_method_token == ""


@pytest.mark.parametrize(
    ("fixture", "status"),
    [
        ("stripe_payment_intent_created", "pending"),
        ("stripe_payment_intent_requires_action", "pending"),
        ("stripe_payment_intent_canceled", "canceled"),
    ],
)
def test_fetch_maps_unfinished_and_canceled_payment_intents(gateway, api, fixture, status):
    api.get(f"{API}/payment_intents/{PI}", json=recorded(fixture))

    charge = gateway.fetch(payment=make_payment(gateway_reference=PI), client_data={})

    assert (charge.status, charge.amount_minor, charge.payment_id) == (status, 5000, "")


def test_fetch_of_an_unknown_payment_intent_is_not_retryable(gateway, api):
    body = {"error": {"code": "resource_missing", "message": f"No such payment_intent: '{PI}'", "param": "intent", "type": "invalid_request_error"}}
    api.get(f"{API}/payment_intents/{PI}", json=body, status=404)

    with pytest.raises(base.GatewayError) as excinfo:
        gateway.fetch(payment=make_payment(gateway_reference=PI), client_data={})

    assert excinfo.value.retryable is False


# --- void ---------------------------------------------------------------------------------


def test_void_cancels_the_payment_intent(gateway, api):
    api.post(f"{API}/payment_intents/{PI}/cancel", json=recorded("stripe_payment_intent_canceled"))

    gateway.void(payment=make_payment(gateway_reference=PI))

    assert len(api.calls) == 1


def test_void_of_a_payment_intent_that_already_succeeded_returns_quietly(gateway, api):
    api.post(f"{API}/payment_intents/{PI}/cancel", json=recorded("stripe_error_unexpected_state"), status=400)

    gateway.void(payment=make_payment(gateway_reference=PI))


def test_void_of_an_already_canceled_payment_intent_returns_quietly(gateway, api):
    error = recorded("stripe_error_unexpected_state")
    error["error"]["payment_intent"]["status"] = "canceled"
    api.post(f"{API}/payment_intents/{PI}/cancel", json=error, status=400)

    gateway.void(payment=make_payment(gateway_reference=PI))


def test_void_of_a_processing_payment_intent_asks_to_try_again_later(gateway, api):
    error = recorded("stripe_error_unexpected_state")
    error["error"]["payment_intent"]["status"] = "processing"
    api.post(f"{API}/payment_intents/{PI}/cancel", json=error, status=400)

    with pytest.raises(base.GatewayError) as excinfo:
        gateway.void(payment=make_payment(gateway_reference=PI))

    assert excinfo.value.retryable is True


def test_void_without_a_payment_intent_does_nothing(gateway, api):
    gateway.void(payment=make_payment(gateway_reference=""))

    assert len(api.calls) == 0


# --- refunds ------------------------------------------------------------------------------

REFUND_KEY = "refund-0b5d7e3c-2f41-4a8e-b1f9-6c3a2d9e4f10"


def test_refund_sends_the_amount_and_key_but_not_our_reason(gateway, api):
    api.post(f"{API}/refunds", json=recorded("stripe_refund_succeeded"))

    result = gateway.refund(payment=make_payment(gateway_reference=PI), amount_minor=2500, idempotency_key=REFUND_KEY, reason="Patient felt unwell")

    assert result == base.RefundResult(reference="re_3SVq8nLkdIwHu7ix0RfNd1Qz", status="succeeded")
    request = api.calls[0].request
    assert form(request) == {"payment_intent": PI, "amount": "2500", "metadata[refund]": REFUND_KEY}
    assert request.headers["Idempotency-Key"] == REFUND_KEY


@pytest.mark.parametrize(
    ("stripe_status", "status"),
    [("succeeded", "succeeded"), ("pending", "pending"), ("requires_action", "pending"), ("failed", "failed"), ("canceled", "failed")],
)
def test_refund_statuses_are_mapped(gateway, api, stripe_status, status):
    refund = recorded("stripe_refund_succeeded") | {"status": stripe_status}
    if stripe_status == "failed":
        refund["failure_reason"] = "expired_or_canceled_card"
    api.post(f"{API}/refunds", json=refund)

    result = gateway.refund(payment=make_payment(gateway_reference=PI), amount_minor=2500, idempotency_key=REFUND_KEY, reason="")

    assert result.status == status
    assert result.failure_message == ("expired_or_canceled_card" if stripe_status == "failed" else "")


def test_a_refund_stripe_refuses_is_not_retryable(gateway, api):
    body = {
        "error": {
            "code": "charge_already_refunded",
            "message": "Charge ch_3SVq8nLkdIwHu7ix0s2TNbCd has already been refunded.",
            "type": "invalid_request_error",
        }
    }
    api.post(f"{API}/refunds", json=body, status=400)

    with pytest.raises(base.GatewayError) as excinfo:
        gateway.refund(payment=make_payment(gateway_reference=PI), amount_minor=2500, idempotency_key=REFUND_KEY, reason="")

    assert excinfo.value.retryable is False


# --- webhooks -----------------------------------------------------------------------------


def event_body(name: str) -> bytes:
    return (RECORDED / f"{name}.json").read_bytes()


def test_a_signed_payment_intent_succeeded_webhook_is_normalised(gateway):
    body = event_body("stripe_event_payment_intent_succeeded")

    event = gateway.parse_webhook(body=body, headers={"Stripe-Signature": sign(body), "Content-Type": "application/json"})

    assert event.event_id == "evt_3SVq8nLkdIwHu7ix0WbHk1Rt"
    assert event.event_type == "payment_intent.succeeded"
    assert event.kind == base.PAYMENT_SUCCEEDED
    assert event.payment_reference == PI
    assert event.charge.status == "succeeded"
    assert (event.charge.amount_minor, event.charge.currency) == (5000, "USD")
    assert event.charge.payment_id == "ch_3SVq8nLkdIwHu7ix0s2TNbCd"
    assert event.charge.payment_method_token == "pm_1SVq9hLkdIwHu7ixbQd0Hh3M"
    assert event.payload == json.loads(body)


def test_the_signature_header_is_found_in_any_case(gateway):
    body = event_body("stripe_event_payment_intent_succeeded")

    event = gateway.parse_webhook(body=body, headers={"stripe-signature": sign(body)})

    assert event.kind == base.PAYMENT_SUCCEEDED


def test_a_forged_webhook_signature_is_rejected(gateway):
    body = event_body("stripe_event_payment_intent_succeeded")

    with pytest.raises(base.InvalidSignature):
        gateway.parse_webhook(body=body, headers={"Stripe-Signature": sign(body, secret="whsec_someone_else")})


def test_a_webhook_body_changed_after_signing_is_rejected(gateway):
    body = event_body("stripe_event_payment_intent_succeeded")
    header = sign(body)
    tampered = body.replace(b'"amount_received": 5000', b'"amount_received": 500000')
    assert tampered != body

    with pytest.raises(base.InvalidSignature):
        gateway.parse_webhook(body=tampered, headers={"Stripe-Signature": header})


def test_a_webhook_signed_outside_the_tolerance_is_rejected(gateway, stripe_settings):
    body = event_body("stripe_event_payment_intent_succeeded")
    old = int(time.time()) - stripe_settings.STRIPE_WEBHOOK_TOLERANCE_SECONDS - 60

    with pytest.raises(base.InvalidSignature):
        gateway.parse_webhook(body=body, headers={"Stripe-Signature": sign(body, timestamp=old)})


@pytest.mark.parametrize("headers", [{}, {"Stripe-Signature": ""}, {"Stripe-Signature": "garbage"}, {"Stripe-Signature": "t=notanumber,v1=abc"}])
def test_a_missing_or_malformed_signature_header_is_rejected(gateway, headers):
    with pytest.raises(base.InvalidSignature):
        gateway.parse_webhook(body=event_body("stripe_event_payment_intent_succeeded"), headers=headers)


def test_a_correctly_signed_body_that_is_not_json_is_rejected(gateway):
    body = b"not json at all"

    with pytest.raises(base.InvalidSignature):
        gateway.parse_webhook(body=body, headers={"Stripe-Signature": sign(body)})


@pytest.mark.parametrize(
    ("fixture", "kind", "payment_reference"),
    [
        ("stripe_event_payment_intent_payment_failed", base.PAYMENT_FAILED, PI),
        ("stripe_event_payment_intent_canceled", base.PAYMENT_CANCELED, PI),
        ("stripe_event_refund_updated", base.REFUND_SUCCEEDED, PI),
        ("stripe_event_refund_failed", base.REFUND_FAILED, PI),
        ("stripe_event_refund_created_pending", base.OTHER, PI),
        ("stripe_event_charge_succeeded", base.OTHER, ""),
    ],
)
def test_webhook_events_are_normalised_to_kinds(gateway, fixture, kind, payment_reference):
    body = event_body(fixture)

    event = gateway.parse_webhook(body=body, headers={"Stripe-Signature": sign(body)})

    assert (event.kind, event.payment_reference) == (kind, payment_reference)


def test_a_payment_failed_event_carries_the_decline(gateway):
    event = gateway.event_from_payload(recorded("stripe_event_payment_intent_payment_failed"), event_id="evt_3SVq8nLkdIwHu7ix0Fa1LdEv")

    assert event.charge.status == "failed"
    assert (event.charge.failure_code, event.charge.failure_message) == ("insufficient_funds", "Your card has insufficient funds.")


def test_refund_events_carry_the_refund_reference_amount_and_failure(gateway):
    succeeded = gateway.event_from_payload(recorded("stripe_event_refund_updated"), event_id="evt_1")
    failed = gateway.event_from_payload(recorded("stripe_event_refund_failed"), event_id="evt_2")

    assert (succeeded.refund_reference, succeeded.refund_amount_minor, succeeded.refund_failure) == ("re_3SVq8nLkdIwHu7ix0RfNd1Qz", 2500, "")
    assert (failed.refund_reference, failed.refund_amount_minor, failed.refund_failure) == ("re_3SVq8nLkdIwHu7ix0RfNd1Qz", 2500, "expired_or_canceled_card")
    assert succeeded.charge is None


def test_a_stored_payload_normalises_to_the_same_event(gateway):
    body = event_body("stripe_event_payment_intent_succeeded")
    parsed = gateway.parse_webhook(body=body, headers={"Stripe-Signature": sign(body)})

    again = gateway.event_from_payload(copy.deepcopy(parsed.payload), event_id=parsed.event_id)

    assert again == parsed


# --- customers and ledger -----------------------------------------------------------------


def test_customer_ensure_keeps_an_existing_customer(gateway, api):
    user = User(email="patient@example.com")

    assert gateway.customer_ensure(user=user, existing="cus_existing") == "cus_existing"
    assert len(api.calls) == 0


def test_customer_ensure_creates_one_customer_per_user(gateway, api):
    user = User(email="patient@example.com", public_id=uuid.UUID("5d6c1a7e-0f2b-4d3c-8e9a-b1c2d3e4f5a6"))
    api.post(f"{API}/customers", json=recorded("stripe_customer_created"))

    assert gateway.customer_ensure(user=user) == "cus_TSk2mB9qXa0Lwe"
    request = api.calls[0].request
    assert form(request) == {"email": "patient@example.com", "metadata[user]": str(user.public_id)}
    assert request.headers["Idempotency-Key"] == f"customer-{user.public_id}"


def test_ledger_pages_through_payment_intents_in_the_range(gateway, api):
    since, until = datetime(2025, 11, 21, tzinfo=UTC), datetime(2025, 11, 22, tzinfo=UTC)
    api.get(f"{API}/payment_intents", json=recorded("stripe_payment_intent_list_page1"))
    api.get(f"{API}/payment_intents", json=recorded("stripe_payment_intent_list_page2"))

    entries = gateway.ledger(since=since, until=until)

    assert [(e.reference, e.status, e.amount_minor, e.currency, e.amount_refunded_minor) for e in entries] == [
        (PI, "succeeded", 5000, "USD", 2500),
        ("pi_3SVqC4LkdIwHu7ix1aJpYen0", "pending", 3000, "JPY", 0),
        ("pi_3SVqD9LkdIwHu7ix0CnLd2Xy", "canceled", 5000, "USD", 0),
    ]
    assert entries[0].created == datetime.fromtimestamp(1763712000, tz=UTC)
    first, second = (query(call.request) for call in api.calls)
    expected = {
        "created[gte]": [str(int(since.timestamp()))],
        "created[lt]": [str(int(until.timestamp()))],
        "limit": ["100"],
        "expand[0]": ["data.latest_charge"],
    }
    assert first == expected
    assert second == {**expected, "starting_after": ["pi_3SVqC4LkdIwHu7ix1aJpYen0"]}


def test_gateway_get_builds_the_stripe_gateway_from_settings(stripe_settings):
    from payments.gateways import gateway_get

    gateway = gateway_get("stripe")

    assert isinstance(gateway, StripeGateway)
    assert (gateway.name, gateway.checkout_kind) == ("stripe", "stripe_payment_intent")
