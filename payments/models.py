"""Gateways, payments, refunds and receipts (Step 4). Models arrive with that step."""
