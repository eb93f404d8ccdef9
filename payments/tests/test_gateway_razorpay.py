"""RazorpayGateway against recorded Razorpay v1 responses: the real razorpay SDK request code runs
and ``responses`` answers at the ``requests`` layer; callback and webhook signatures are real
HMAC-SHA256 made here with the same secrets."""

from __future__ import annotations

import base64
import copy
import hashlib
import hmac
import json
import uuid
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
import responses

from payments.gateways import base
from payments.gateways.razorpay import RazorpayGateway
from payments.models import Payment

RECORDED = Path(__file__).parent / "recorded"
API = "https://api.razorpay.com/v1"
PUBLIC_ID = uuid.UUID("8f0c6a3e-2b7d-4c1e-9a55-3d2f1b0e7c64")
ORDER = "order_RhN8dJx3pQw2Kv"
PAY = "pay_RhN9fKz4qRx3Lw"
KEY_ID = "rzp_test_MediMeet0000"
KEY_SECRET = "MediMeetTestOnlyKeySecret000"
WEBHOOK_SECRET = "MediMeetTestOnlyWebhookSecret"
REFUND_KEY = "refund-0b5d7e3c-2f41-4a8e-b1f9-6c3a2d9e4f10"


def recorded(name: str) -> dict:
    return json.loads((RECORDED / f"{name}.json").read_text())


def hmac_hex(secret: str, message: bytes | str) -> str:
    message = message.encode() if isinstance(message, str) else message
    return hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()


def callback(order_id: str = ORDER, payment_id: str = PAY, *, secret: str = KEY_SECRET) -> dict[str, str]:
    """What Checkout.js hands the client: the ids and HMAC-SHA256("<order>|<payment>", key secret)."""
    return {"razorpay_order_id": order_id, "razorpay_payment_id": payment_id, "razorpay_signature": hmac_hex(secret, f"{order_id}|{payment_id}")}


def sent_json(call) -> dict:
    return json.loads(call.request.body)


def query(call) -> dict[str, list[str]]:
    return parse_qs(urlsplit(call.request.url).query)


def make_payment(**fields) -> Payment:
    values = {"public_id": PUBLIC_ID, "amount_minor": 150000, "currency": "INR", "gateway": "razorpay", "gateway_reference": ORDER}
    return Payment(**{**values, **fields})


@pytest.fixture
def razorpay_settings(settings):
    settings.RAZORPAY_KEY_ID = KEY_ID
    settings.RAZORPAY_KEY_SECRET = KEY_SECRET
    settings.RAZORPAY_WEBHOOK_SECRET = WEBHOOK_SECRET
    settings.PAYMENT_GATEWAY_TIMEOUT_SECONDS = 5
    return settings


@pytest.fixture
def gateway(razorpay_settings) -> RazorpayGateway:
    return RazorpayGateway()


@pytest.fixture
def api():
    with responses.RequestsMock() as rsps:
        yield rsps


# --- start and checkout -------------------------------------------------------------------


def test_start_creates_an_order_with_our_id_as_receipt_and_note(gateway, api):
    api.post(f"{API}/orders", json=recorded("razorpay_order_created"))

    result = gateway.start(payment=make_payment(gateway_reference=""))

    assert result == base.StartResult(reference=ORDER)
    call = api.calls[0]
    assert sent_json(call) == {"amount": 150000, "currency": "INR", "receipt": str(PUBLIC_ID), "notes": {"payment": str(PUBLIC_ID)}, "payment_capture": True}
    assert call.request.headers["Authorization"] == "Basic " + base64.b64encode(f"{KEY_ID}:{KEY_SECRET}".encode()).decode()
    assert call.request.req_kwargs["timeout"] == 5


@pytest.mark.parametrize(("currency", "amount"), [("INR", 150000), ("USD", 5000), ("JPY", 3000)])
def test_start_sends_the_amount_in_minor_units_unchanged(gateway, api, currency, amount):
    api.post(f"{API}/orders", json=recorded("razorpay_order_created") | {"amount": amount, "currency": currency})

    gateway.start(payment=make_payment(amount_minor=amount, currency=currency))

    assert (sent_json(api.calls[0])["amount"], sent_json(api.calls[0])["currency"]) == (amount, currency)


def test_checkout_gives_the_client_the_order_and_key_id(gateway):
    assert gateway.checkout(make_payment()) == base.Checkout(kind="razorpay_order", reference=ORDER, public_key=KEY_ID)


# --- fetch (the Checkout.js callback) -----------------------------------------------------


def test_a_valid_callback_signature_is_accepted_and_the_captured_payment_read_from_razorpay(gateway, api):
    api.get(f"{API}/payments/{PAY}", json=recorded("razorpay_payment_captured"))

    charge = gateway.fetch(payment=make_payment(), client_data=callback())

    assert charge == base.ChargeResult(status="succeeded", amount_minor=150000, currency="INR", payment_id=PAY, card_brand="visa", card_last4="1111")
    assert query(api.calls[0]) == {"expand[]": ["card"]}


def test_a_forged_callback_signature_is_rejected_without_asking_razorpay(gateway, api):
    with pytest.raises(base.InvalidSignature):
        gateway.fetch(payment=make_payment(), client_data=callback(secret="not-our-secret"))

    assert len(api.calls) == 0


def test_a_signature_over_another_payment_id_is_rejected(gateway, api):
    data = callback() | {"razorpay_payment_id": "pay_SomeoneElses01"}

    with pytest.raises(base.InvalidSignature):
        gateway.fetch(payment=make_payment(), client_data=data)


def test_a_validly_signed_callback_for_another_order_is_rejected(gateway, api):
    with pytest.raises(base.InvalidSignature):
        gateway.fetch(payment=make_payment(), client_data=callback(order_id="order_AnotherOrder01"))

    assert len(api.calls) == 0


@pytest.mark.parametrize("missing", ["razorpay_order_id", "razorpay_payment_id", "razorpay_signature"])
def test_an_incomplete_callback_is_rejected(gateway, missing):
    data = callback()
    del data[missing]

    with pytest.raises(base.InvalidSignature):
        gateway.fetch(payment=make_payment(), client_data=data)


def test_fetch_maps_an_authorized_payment_to_pending(gateway, api):
    api.get(f"{API}/payments/{PAY}", json=recorded("razorpay_payment_authorized"))

    charge = gateway.fetch(payment=make_payment(), client_data=callback())

    assert (charge.status, charge.payment_id) == ("pending", "")


def test_fetch_maps_a_failed_payment_with_its_reason(gateway, api):
    failed = recorded("razorpay_payment_failed")
    api.get(f"{API}/payments/{failed['id']}", json=failed)

    charge = gateway.fetch(payment=make_payment(), client_data=callback(payment_id=failed["id"]))

    assert (charge.status, charge.amount_minor, charge.payment_id) == ("failed", 150000, "")
    assert charge.failure_code == "insufficient_funds"
    assert charge.failure_message.startswith("Your payment could not be completed due to insufficient account balance")
    assert (charge.card_brand, charge.card_last4) == ("mastercard", "0002")


# --- void and refunds ---------------------------------------------------------------------


def test_void_does_not_call_razorpay(gateway, api):
    gateway.void(payment=make_payment())

    assert len(api.calls) == 0


def test_refund_creates_a_refund_carrying_the_idempotency_key_but_not_our_reason(gateway, api):
    api.get(f"{API}/payments/{PAY}/refunds", json=recorded("razorpay_refunds_list_other"))  # notes: [] on that one
    api.post(f"{API}/payments/{PAY}/refund", json=recorded("razorpay_refund_processed"))

    result = gateway.refund(payment=make_payment(gateway_payment_id=PAY), amount_minor=50000, idempotency_key=REFUND_KEY, reason="Patient felt unwell")

    assert result == base.RefundResult(reference="rfnd_RhQ2xMb6tUz5Ny", status="succeeded")
    assert sent_json(api.calls[1]) == {"amount": 50000, "notes": {"idempotency_key": REFUND_KEY}, "receipt": REFUND_KEY[:40]}


def test_a_retried_refund_finds_the_refund_already_made_with_its_key(gateway, api):
    api.get(f"{API}/payments/{PAY}/refunds", json=recorded("razorpay_refunds_list"))

    result = gateway.refund(payment=make_payment(gateway_payment_id=PAY), amount_minor=50000, idempotency_key=REFUND_KEY, reason="")

    assert result == base.RefundResult(reference="rfnd_RhQ2xMb6tUz5Ny", status="succeeded")
    assert [call.request.method for call in api.calls] == ["GET"]
    assert query(api.calls[0]) == {"count": ["100"]}


@pytest.mark.parametrize(("razorpay_status", "status"), [("processed", "succeeded"), ("pending", "pending"), ("failed", "failed")])
def test_refund_statuses_are_mapped(gateway, api, razorpay_status, status):
    api.get(f"{API}/payments/{PAY}/refunds", json={"entity": "collection", "count": 0, "items": []})
    api.post(f"{API}/payments/{PAY}/refund", json=recorded("razorpay_refund_processed") | {"status": razorpay_status})

    result = gateway.refund(payment=make_payment(gateway_payment_id=PAY), amount_minor=50000, idempotency_key=REFUND_KEY, reason="")

    assert result.status == status
    assert bool(result.failure_message) == (status == "failed")


def test_a_refund_razorpay_refuses_is_not_retryable(gateway, api):
    api.get(f"{API}/payments/{PAY}/refunds", json={"entity": "collection", "count": 0, "items": []})
    api.post(f"{API}/payments/{PAY}/refund", json=recorded("razorpay_error_refund_exceeds"), status=400)

    with pytest.raises(base.GatewayError) as excinfo:
        gateway.refund(payment=make_payment(gateway_payment_id=PAY), amount_minor=999999, idempotency_key=REFUND_KEY, reason="")

    assert excinfo.value.retryable is False
    assert "greater than amount captured" in str(excinfo.value)


def test_a_refund_of_a_payment_never_captured_fails_without_calling_razorpay(gateway, api):
    result = gateway.refund(payment=make_payment(gateway_payment_id=""), amount_minor=50000, idempotency_key=REFUND_KEY, reason="")

    assert result.status == "failed"
    assert len(api.calls) == 0


# --- errors -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "failure",
    [
        requests.exceptions.ConnectionError("Connection refused"),
        requests.exceptions.ReadTimeout("Read timed out. (read timeout=5)"),
    ],
)
def test_network_failures_are_retryable(gateway, api, failure):
    api.post(f"{API}/orders", body=failure)

    with pytest.raises(base.GatewayError) as excinfo:
        gateway.start(payment=make_payment())

    assert excinfo.value.retryable is True


def test_a_razorpay_server_error_is_retryable(gateway, api):
    api.post(f"{API}/orders", json=recorded("razorpay_error_server"), status=500)

    with pytest.raises(base.GatewayError) as excinfo:
        gateway.start(payment=make_payment())

    assert excinfo.value.retryable is True


def test_an_unreadable_answer_from_a_proxy_is_retryable(gateway, api):
    api.post(f"{API}/orders", body="<html><body><h1>502 Bad Gateway</h1></body></html>", status=502, content_type="text/html")

    with pytest.raises(base.GatewayError) as excinfo:
        gateway.start(payment=make_payment())

    assert excinfo.value.retryable is True


def test_a_bad_request_is_not_retryable(gateway, api):
    api.post(f"{API}/orders", json=recorded("razorpay_error_bad_request"), status=400)

    with pytest.raises(base.GatewayError) as excinfo:
        gateway.start(payment=make_payment(amount_minor=50))

    assert excinfo.value.retryable is False


def test_rejected_keys_are_not_retryable(gateway, api):
    body = {"error": {"code": "BAD_REQUEST_ERROR", "description": "Authentication failed", "source": "NA", "step": "NA", "reason": "NA", "metadata": {}}}
    api.post(f"{API}/orders", json=body, status=401)

    with pytest.raises(base.GatewayError) as excinfo:
        gateway.start(payment=make_payment())

    assert excinfo.value.retryable is False
    assert KEY_SECRET not in str(excinfo.value)


# --- webhooks -----------------------------------------------------------------------------


def event_body(name: str) -> bytes:
    return (RECORDED / f"{name}.json").read_bytes()


def webhook_headers(body: bytes, *, event_id: str = "RhQ5yNc7uVa6Oz", secret: str = WEBHOOK_SECRET) -> dict[str, str]:
    return {"X-Razorpay-Signature": hmac_hex(secret, body), "X-Razorpay-Event-Id": event_id, "Content-Type": "application/json"}


def test_a_signed_payment_captured_webhook_is_normalised(gateway):
    body = event_body("razorpay_webhook_payment_captured")

    event = gateway.parse_webhook(body=body, headers=webhook_headers(body))

    assert event.event_id == "RhQ5yNc7uVa6Oz"
    assert (event.event_type, event.kind) == ("payment.captured", base.PAYMENT_SUCCEEDED)
    assert event.payment_reference == ORDER
    assert event.charge == base.ChargeResult(status="succeeded", amount_minor=150000, currency="INR", payment_id=PAY, card_brand="visa", card_last4="1111")
    assert event.payload == json.loads(body)


def test_webhook_headers_are_found_in_any_case(gateway):
    body = event_body("razorpay_webhook_payment_captured")
    headers = {key.lower(): value for key, value in webhook_headers(body).items()}

    assert gateway.parse_webhook(body=body, headers=headers).event_id == "RhQ5yNc7uVa6Oz"


def test_a_forged_webhook_signature_is_rejected(gateway):
    body = event_body("razorpay_webhook_payment_captured")

    with pytest.raises(base.InvalidSignature):
        gateway.parse_webhook(body=body, headers=webhook_headers(body, secret="not-our-webhook-secret"))


def test_a_webhook_signed_with_the_key_secret_instead_of_the_webhook_secret_is_rejected(gateway):
    body = event_body("razorpay_webhook_payment_captured")

    with pytest.raises(base.InvalidSignature):
        gateway.parse_webhook(body=body, headers=webhook_headers(body, secret=KEY_SECRET))


def test_a_webhook_body_changed_after_signing_is_rejected(gateway):
    body = event_body("razorpay_webhook_payment_captured")
    headers = webhook_headers(body)
    tampered = body.replace(b'"amount": 150000', b'"amount": 15000000')
    assert tampered != body

    with pytest.raises(base.InvalidSignature):
        gateway.parse_webhook(body=tampered, headers=headers)


def test_a_webhook_without_a_signature_is_rejected(gateway):
    body = event_body("razorpay_webhook_payment_captured")

    with pytest.raises(base.InvalidSignature):
        gateway.parse_webhook(body=body, headers={"X-Razorpay-Event-Id": "RhQ5yNc7uVa6Oz"})


def test_no_webhook_secret_configured_rejects_everything(gateway, razorpay_settings):
    razorpay_settings.RAZORPAY_WEBHOOK_SECRET = ""
    body = event_body("razorpay_webhook_payment_captured")

    with pytest.raises(base.InvalidSignature):
        gateway.parse_webhook(body=body, headers=webhook_headers(body, secret=""))


@pytest.mark.parametrize(
    ("fixture", "kind", "payment_reference"),
    [
        ("razorpay_webhook_order_paid", base.PAYMENT_SUCCEEDED, ORDER),
        ("razorpay_webhook_payment_failed", base.PAYMENT_FAILED, ORDER),
        ("razorpay_webhook_refund_processed", base.REFUND_SUCCEEDED, PAY),
        ("razorpay_webhook_refund_failed", base.REFUND_FAILED, PAY),
        ("razorpay_webhook_payment_authorized", base.OTHER, ORDER),
    ],
)
def test_webhook_events_are_normalised_to_kinds(gateway, fixture, kind, payment_reference):
    body = event_body(fixture)

    event = gateway.parse_webhook(body=body, headers=webhook_headers(body))

    assert (event.kind, event.payment_reference) == (kind, payment_reference)


def test_a_payment_failed_event_carries_the_reason(gateway):
    event = gateway.event_from_payload(recorded("razorpay_webhook_payment_failed"), event_id="evt")

    assert (event.charge.status, event.charge.failure_code) == ("failed", "insufficient_funds")


def test_refund_events_carry_the_refund_reference_and_amount(gateway):
    processed = gateway.event_from_payload(recorded("razorpay_webhook_refund_processed"), event_id="evt_1")
    failed = gateway.event_from_payload(recorded("razorpay_webhook_refund_failed"), event_id="evt_2")

    assert (processed.refund_reference, processed.refund_amount_minor, processed.refund_failure) == ("rfnd_RhQ2xMb6tUz5Ny", 50000, "")
    assert (failed.refund_reference, failed.refund_amount_minor) == ("rfnd_RhQ2xMb6tUz5Ny", 50000)
    assert failed.refund_failure


def test_a_stored_payload_normalises_to_the_same_event(gateway):
    body = event_body("razorpay_webhook_order_paid")
    parsed = gateway.parse_webhook(body=body, headers=webhook_headers(body))

    assert gateway.event_from_payload(copy.deepcopy(parsed.payload), event_id=parsed.event_id) == parsed


# --- ledger -------------------------------------------------------------------------------


def test_ledger_pages_with_skip_and_keeps_one_entry_per_order(gateway, api):
    since, until = datetime(2025, 11, 21, tzinfo=UTC), datetime(2025, 11, 22, tzinfo=UTC)
    captured, failed = recorded("razorpay_payment_captured"), recorded("razorpay_payment_failed")
    page1 = [captured, failed]  # a decline, then a success, on one order
    for i in range(98):
        page1.append(
            captured
            | {"id": f"pay_Ledger{i:08d}", "order_id": f"order_Ledger{i:08d}", "amount_refunded": 1000 * (i % 2), "created_at": captured["created_at"] + 10 + i}
        )
    page2 = [
        failed | {"id": "pay_LedgerLast0001", "order_id": "order_LedgerLast01", "created_at": captured["created_at"] + 500},
        captured | {"id": "pay_NoOrder000001", "order_id": None},  # not one of ours (a payment link)
    ]
    api.get(f"{API}/payments", json={"entity": "collection", "count": 100, "items": page1})
    api.get(f"{API}/payments", json={"entity": "collection", "count": 2, "items": page2})

    entries = gateway.ledger(since=since, until=until)

    assert len(entries) == 100  # 98 + the order with two attempts + the last one
    by_reference = {entry.reference: entry for entry in entries}
    assert (by_reference[ORDER].status, by_reference[ORDER].amount_minor, by_reference[ORDER].currency) == ("succeeded", 150000, "INR")
    assert by_reference["order_Ledger00000001"].amount_refunded_minor == 1000
    assert by_reference["order_LedgerLast01"].status == "failed"
    assert by_reference[ORDER].created == datetime.fromtimestamp(captured["created_at"], tz=UTC)
    window = {"from": [str(int(since.timestamp()))], "to": [str(int(until.timestamp()))], "count": ["100"]}
    assert query(api.calls[0]) == {**window, "skip": ["0"]}
    assert query(api.calls[1]) == {**window, "skip": ["100"]}


def test_gateway_get_builds_the_razorpay_gateway_from_settings(razorpay_settings):
    from payments.gateways import gateway_get

    gateway = gateway_get("razorpay")

    assert isinstance(gateway, RazorpayGateway)
    assert (gateway.name, gateway.checkout_kind) == ("razorpay", "razorpay_order")
