"""Platform settings that decide payments (medimeet/core/platform.py): which gateway takes a
payment, and the tax carved out on the invoice. (Currencies: test_services, PAY_005.)"""

from __future__ import annotations

from decimal import Decimal

import pytest
from constance import config
from constance.test import override_config

from payments import services
from payments.gateways import gateway_name_for
from payments.models import Invoice
from payments.tests.conftest import awaiting_payment
from payments.tests.test_services import pay

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("frozen_time")]


@pytest.fixture
def keys(settings):
    settings.STRIPE_SECRET_KEY, settings.STRIPE_WEBHOOK_SECRET = "sk_test_x", "whsec_x"
    settings.RAZORPAY_KEY_ID, settings.RAZORPAY_KEY_SECRET, settings.RAZORPAY_WEBHOOK_SECRET = "rzp_test_x", "secret", "whsecret"


def test_gateway_routes_pick_by_country_then_currency_then_the_rest(keys):
    with override_config(PAYMENT_GATEWAY_ROUTES="GB=razorpay, EUR=razorpay, *=stripe"):
        chosen = [
            gateway_name_for(currency="GBP", billing_country="gb"),
            gateway_name_for(currency="EUR", billing_country="US"),
            gateway_name_for(currency="INR", billing_country="IN"),
            gateway_name_for(currency="INR"),
        ]

    assert chosen == ["razorpay", "razorpay", "stripe", "stripe"]
    assert gateway_name_for(currency="INR") == "razorpay"  # the default routes again


def test_an_unusable_stored_route_falls_back_to_the_default_and_checkout_still_works(clinic, patient, keys, settings, caplog):
    settings.RAZORPAY_KEY_ID = ""  # Razorpay has no keys here: the sandbox takes it
    config.PAYMENT_GATEWAY_ROUTES = "IN=paypal"  # written past the admin's validation (a shell)

    payment = services.payment_create(patient=patient, appointment=awaiting_payment(clinic, patient))

    assert payment.gateway == "sandbox"  # IN → razorpay (default routes) → no keys → sandbox
    assert "platform setting PAYMENT_GATEWAY_ROUTES is not usable" in caplog.text


@pytest.mark.parametrize(
    ("rules", "expected"),
    [
        # 5 % included in 500.00: 500 × 5 / 105 = 23.8095… → 23.81 (half up, in paise)
        ("IN=GST:5", (50000, 2381, 47619, "GST", Decimal("5"))),
        ("GB=VAT:20", (50000, 0, 50000, "", Decimal("0"))),  # no rule for India: no tax line
    ],
)
def test_the_invoice_carves_out_the_tax_of_the_platform_setting(clinic, patient, rules, expected, django_capture_on_commit_callbacks):
    with override_config(TAX_RULES=rules), django_capture_on_commit_callbacks(execute=True):
        pay(services.payment_create(patient=patient, appointment=awaiting_payment(clinic, patient)))

    invoice = Invoice.objects.get()
    assert (invoice.total_minor, invoice.tax_minor, invoice.subtotal_minor, invoice.tax_name, invoice.tax_rate) == expected
