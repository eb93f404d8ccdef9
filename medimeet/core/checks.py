"""System checks for configuration that would otherwise fail late."""

from cryptography.fernet import Fernet
from django.conf import settings
from django.core.checks import Error, Tags, register


@register(Tags.security, deploy=True)
def check_payment_gateways(app_configs, **kwargs):
    from django.core.checks import Warning

    from payments.gateways import gateway_configured

    warnings = []
    if settings.PAYMENT_SANDBOX_ALLOWED:
        warnings.append(Warning("PAYMENT_SANDBOX_ALLOWED is on: payments without gateway keys go to the test-card sandbox.", id="medimeet.W010"))
    if not (gateway_configured("stripe") or gateway_configured("razorpay")):
        warnings.append(Warning("No payment gateway has keys (STRIPE_* / RAZORPAY_*): paid bookings cannot be paid.", id="medimeet.W011"))
    return warnings


@register(Tags.security, deploy=True)
def check_field_encryption_keys(app_configs, **kwargs):
    errors = []
    if not settings.FIELD_ENCRYPTION_KEYS:
        errors.append(Error("FIELD_ENCRYPTION_KEYS is empty: PHI would be encrypted with a key derived from SECRET_KEY.", id="medimeet.E001"))
    for key in settings.FIELD_ENCRYPTION_KEYS:
        try:
            Fernet(key.encode())
        except (ValueError, TypeError):
            errors.append(Error("A FIELD_ENCRYPTION_KEYS entry is not a valid Fernet key (32 url-safe base64 bytes).", id="medimeet.E002"))
    return errors


@register(Tags.security, deploy=True)
def check_pdf_signing_key(app_configs, **kwargs):
    """Receipts and prescriptions are signed when made: a missing or unreadable key would fail
    every receipt email and download, so the deploy check says so first."""
    from django.core.exceptions import ImproperlyConfigured

    from .pdf import signing_credentials

    try:
        signing_credentials()
    except ImproperlyConfigured as exc:
        return [Error(f"PDF signing is not configured: {exc}", hint="Set PDF_SIGNING_KEY_FILE and PDF_SIGNING_CERT_FILE (docs/deployment.md).", id="medimeet.E010")]
    return []
