from django.apps import AppConfig


class PaymentsConfig(AppConfig):
    """Gateways, payments, refunds and receipts (Step 4)."""

    name = "payments"
    verbose_name = "Payments"
