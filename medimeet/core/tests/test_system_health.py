"""The staff health page (/admin/system-health/): only staff with core.view_system_health, the
readiness checks of /ready/, and every service's connection with no secret on the page."""

from __future__ import annotations

import pytest
from allauth.mfa.models import Authenticator
from django.contrib.auth.models import Permission
from django.test import Client

from accounts.tests.factories import StaffFactory, UserFactory
from doctors.tests.factories import DoctorProfileFactory
from medimeet.core import health
from medimeet.core.models import AuditEvent

pytestmark = pytest.mark.django_db

URL = "/admin/system-health/"
SECRETS = {
    "db": "pg-Secret-Passw0rd",
    "redis": "redis-Secret-9b7c",
    "stripe": "sk_live_51HxSecretStripeKeyABCD1234",
    "stripe_webhook": "whsec_SecretWebhook77",
    "razorpay_id": "rzp_test_SecretKeyId5678",
    "razorpay_secret": "razorpay-Secret-Key",
    "twilio": "twilio-Secret-Token",
    "twilio_sid": "AC0123456789abcdef0123456789abcd99",
    "smtp": "smtp-Secret-Pass",
    "aws_key": "AKIASECRETACCESSKEY42",
    "aws_secret": "aws-Secret-Access-Key",
    "turn": "turn-Secret-Shared",
}


def client_for(user) -> Client:
    if user.is_staff:
        Authenticator.objects.create(user=user, type=Authenticator.Type.TOTP, data={"secret": "x"})
    client = Client()
    client.force_login(user)
    return client


def health_staff():
    staff = StaffFactory()
    staff.user_permissions.add(Permission.objects.get(content_type__app_label="core", codename="view_system_health"))
    return staff


@pytest.mark.parametrize("who", ["patient", "doctor", "anonymous"])
def test_people_who_are_not_staff_are_sent_to_the_admin_sign_in(who):
    client = Client() if who == "anonymous" else client_for(UserFactory() if who == "patient" else DoctorProfileFactory().user)

    response = client.get(URL)

    assert response.status_code == 302 and response["Location"].startswith("/admin/login/")
    assert not AuditEvent.objects.filter(action="system.health_viewed").exists()


def test_staff_without_the_permission_are_refused():
    response = client_for(StaffFactory()).get(URL)

    assert response.status_code == 403
    assert not AuditEvent.objects.filter(action="system.health_viewed").exists()


def test_staff_with_the_permission_see_the_readiness_checks_and_the_services():
    staff = health_staff()

    response = client_for(staff).get(URL)

    page = response.content.decode()
    assert response.status_code == 200
    assert response.context["checks"] == {"database": "ok", "cache": "ok", "broker": "ok", "storage": "ok"}
    assert all(f'data-check="{name}"' in page for name in ("database", "cache", "broker", "storage"))
    assert [service.name for service in response.context["services"]] == [
        "Database", "Cache", "Channel layer", "Celery broker", "File storage", "Email", "Text messages", "Payments", "Video (WebRTC)",
    ]  # fmt: skip
    assert AuditEvent.objects.filter(action="system.health_viewed", actor=staff).count() == 1


def test_a_failed_check_makes_the_page_say_not_ready(monkeypatch):
    def broken():
        raise OSError("broker at 10.0.0.5 refused")

    monkeypatch.setitem(health.readiness_run.__globals__["READY_CHECKS"], "broker", broken)

    response = client_for(health_staff()).get(URL)

    page = response.content.decode()
    assert response.status_code == 503
    assert response.context["checks"]["broker"] == "failed"
    assert "not ready" in page and "10.0.0.5" not in page  # the reason stays in the server log


def test_no_secret_reaches_the_page(settings):
    settings.DATABASES = {
        **settings.DATABASES,
        "default": {**settings.DATABASES["default"], "HOST": "db.internal", "PORT": "5432", "USER": "medimeet", "PASSWORD": SECRETS["db"]},
    }
    settings.REDIS_URL = f"redis://:{SECRETS['redis']}@cache.internal:6379/0"
    settings.CELERY_BROKER_URL = f"redis://:{SECRETS['redis']}@cache.internal:6379/1"
    settings.CACHES = {**settings.CACHES, "default": {**settings.CACHES["default"]}}
    settings.CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer", "CONFIG": {"hosts": [{"address": settings.REDIS_URL}]}}}
    settings.STRIPE_SECRET_KEY, settings.STRIPE_WEBHOOK_SECRET = SECRETS["stripe"], SECRETS["stripe_webhook"]
    settings.RAZORPAY_KEY_ID, settings.RAZORPAY_KEY_SECRET, settings.RAZORPAY_WEBHOOK_SECRET = SECRETS["razorpay_id"], SECRETS["razorpay_secret"], SECRETS["razorpay_secret"]
    settings.TWILIO_ACCOUNT_SID, settings.TWILIO_AUTH_TOKEN, settings.TWILIO_FROM_NUMBER = SECRETS["twilio_sid"], SECRETS["twilio"], "+15005550006"
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT, settings.EMAIL_HOST_USER, settings.EMAIL_HOST_PASSWORD = "smtp.internal", 587, "mailer", SECRETS["smtp"]
    settings.STORAGES = {
        **settings.STORAGES,
        "default": {
            "BACKEND": "django.core.files.storage.FileSystemStorage",  # the parameters as S3 has them; the page only reads them
            "OPTIONS": {"bucket_name": "medimeet-files", "access_key": SECRETS["aws_key"], "secret_key": SECRETS["aws_secret"], "endpoint_url": "https://s3.example.com"},
        },
    }
    settings.TURN_URLS, settings.TURN_SECRET = ["turn:turn.example.com:3478"], SECRETS["turn"]
    services = {service.name: dict(service.rows) for service in health.service_parameters()}
    settings.STORAGES = {**settings.STORAGES, "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"}}  # the readiness check writes a file
    settings.CELERY_BROKER_URL = "memory://"

    page = client_for(health_staff()).get(URL).content.decode()

    for name, secret in SECRETS.items():
        assert secret not in str(services), name
        assert secret not in page, name
    assert services["Database"]["Host"] == "db.internal" and services["Database"]["User"] == "medimeet" and services["Database"]["Password"] == "set"
    assert services["Cache"]["Redis URL"] == "redis://:••••@cache.internal:6379/0"
    assert services["Channel layer"]["Host"] == "redis://:••••@cache.internal:6379/0"
    assert (services["Payments"]["Stripe mode"], services["Payments"]["Stripe secret key"]) == ("live", "••••1234")
    assert (services["Payments"]["Razorpay mode"], services["Payments"]["Razorpay key id"]) == ("test", "••••5678")
    assert services["Text messages"]["Twilio account"] == "••••cd99"
    assert (services["Email"]["Host"], services["Email"]["User"], services["Email"]["Password"]) == ("smtp.internal:587", "mailer", "set")
    assert (services["File storage"]["Bucket"], services["File storage"]["Access key"], services["File storage"]["Secret key"]) == ("medimeet-files", "••••EY42", "set")
    assert services["Video (WebRTC)"]["TURN configured"] == "yes"
    assert "redis://:••••@cache.internal:6379/0" in page


@pytest.mark.parametrize(
    ("url", "redacted"),
    [
        ("redis://:pw@cache:6379/0", "redis://:••••@cache:6379/0"),
        ("postgres://user:pw@db.internal:5432/medimeet", "postgres://user:••••@db.internal:5432/medimeet"),
        ("redis://cache:6379/0", "redis://cache:6379/0"),
        ("amqp://guest:pw@[::1]:5672//", "amqp://guest:••••@[::1]:5672//"),
        ("", ""),
    ],
)
def test_urls_lose_their_password(url, redacted):
    assert health.url_redact(url) == redacted
