"""The staff health page (``/admin/system-health/``): the readiness checks of ``/ready/`` and how
each service is connected, with every secret redacted.

Only staff with ``core.view_system_health`` see it (an admin view; other staff get 403, anyone
else the admin sign-in). Passwords, keys and tokens never reach the page: URLs lose their
password, API keys show their last four characters, secrets only whether they are set. Each
view is audited.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlsplit, urlunsplit

from django.conf import settings
from django.contrib import admin
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from django.utils.translation import gettext as _

from .audit import audit_record
from .views import readiness_run

HIDDEN = "••••"


def url_redact(url: str) -> str:
    """The URL with its password replaced (``redis://:••••@cache:6379/0``); "" stays ""."""
    if not url:
        return ""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    user = parts.username or ""
    host = parts.hostname or ""
    if ":" in host:  # IPv6 literal
        host = f"[{host}]"
    netloc = f"{user}:{HIDDEN}@{host}" + (f":{parts.port}" if parts.port else "")
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))


def key_redact(key: str) -> str:
    """An API key or account id as its last four characters (``••••1234``), or "not set"."""
    if not key:
        return _("not set")
    return HIDDEN + key[-4:] if len(key) >= 12 else HIDDEN


def secret_state(secret: str) -> str:
    return _("set") if secret else _("not set")


def key_mode(key: str, *, test_prefixes: tuple[str, ...], live_prefixes: tuple[str, ...]) -> str:
    if not key:
        return _("not configured")
    if key.startswith(live_prefixes):
        return _("live")
    if key.startswith(test_prefixes):
        return _("test")
    return _("unknown")


@dataclass(frozen=True)
class Service:
    name: str
    rows: list[tuple[str, str]]


def service_parameters() -> list[Service]:
    """How this process reaches each service, redacted."""
    db = settings.DATABASES["default"]
    cache = settings.CACHES["default"]
    layer = settings.CHANNEL_LAYERS["default"]
    storage = settings.STORAGES["default"]
    options = storage.get("OPTIONS", {})
    email_smtp = "smtp" in settings.EMAIL_BACKEND
    stripe_key, razorpay_key = settings.STRIPE_SECRET_KEY, settings.RAZORPAY_KEY_ID
    return [
        Service(
            _("Database"),
            [
                (_("Engine"), db["ENGINE"]),
                (_("Host"), str(db.get("HOST") or "—")),
                (_("Port"), str(db.get("PORT") or "—")),
                (_("Name"), str(db.get("NAME") or "")),
                (_("User"), str(db.get("USER") or "—")),
                (_("Password"), secret_state(db.get("PASSWORD") or "")),
            ],
        ),
        Service(
            _("Cache"),
            [(_("Backend"), cache["BACKEND"]), (_("Location"), url_redact(str(cache.get("LOCATION") or "")) or "—"), (_("Redis URL"), url_redact(settings.REDIS_URL) or "—")],
        ),
        Service(
            _("Channel layer"),
            [(_("Backend"), layer["BACKEND"]), *((_("Host"), url_redact(str(host["address"] if isinstance(host, dict) else host))) for host in layer.get("CONFIG", {}).get("hosts", []))],
        ),
        Service(_("Celery broker"), [(_("URL"), url_redact(settings.CELERY_BROKER_URL)), (_("Tasks run eagerly"), _("yes") if settings.CELERY_TASK_ALWAYS_EAGER else _("no"))]),
        Service(
            _("File storage"),
            [
                (_("Backend"), storage["BACKEND"]),
                (_("Bucket"), options.get("bucket_name") or "—"),
                (_("Endpoint"), url_redact(options.get("endpoint_url") or "") or "—"),
                (_("Region"), options.get("region_name") or "—"),
                (_("Access key"), key_redact(options.get("access_key") or "") if options else "—"),
                (_("Secret key"), secret_state(options.get("secret_key") or "") if options else "—"),
                (_("Local folder"), str(settings.MEDIA_ROOT) if "FileSystemStorage" in storage["BACKEND"] else "—"),
            ],
        ),
        Service(
            _("Email"),
            [
                (_("Backend"), settings.EMAIL_BACKEND),
                (_("Host"), f"{settings.EMAIL_HOST}:{settings.EMAIL_PORT}" if email_smtp else "—"),
                (_("User"), (settings.EMAIL_HOST_USER or "—") if email_smtp else "—"),
                (_("Password"), secret_state(settings.EMAIL_HOST_PASSWORD) if email_smtp else "—"),
                (_("Encryption"), ("TLS" if settings.EMAIL_USE_TLS else "SSL" if settings.EMAIL_USE_SSL else _("none")) if email_smtp else "—"),
                (_("From"), settings.DEFAULT_FROM_EMAIL),
            ],
        ),
        Service(
            _("Text messages"),
            [
                (_("Backend"), settings.SMS_BACKEND),
                (_("Twilio account"), key_redact(settings.TWILIO_ACCOUNT_SID)),
                (_("Twilio auth token"), secret_state(settings.TWILIO_AUTH_TOKEN)),
                (_("Sender number"), settings.TWILIO_FROM_NUMBER or "—"),
            ],
        ),
        Service(
            _("Payments"),
            [
                (_("Forced gateway"), settings.PAYMENT_GATEWAY or "—"),
                (_("Stripe mode"), key_mode(stripe_key, test_prefixes=("sk_test_", "rk_test_"), live_prefixes=("sk_live_", "rk_live_"))),
                (_("Stripe secret key"), key_redact(stripe_key)),
                (_("Stripe webhook secret"), secret_state(settings.STRIPE_WEBHOOK_SECRET)),
                (_("Razorpay mode"), key_mode(razorpay_key, test_prefixes=("rzp_test_",), live_prefixes=("rzp_live_",))),
                (_("Razorpay key id"), key_redact(razorpay_key)),
                (_("Razorpay key secret"), secret_state(settings.RAZORPAY_KEY_SECRET)),
                (_("Razorpay webhook secret"), secret_state(settings.RAZORPAY_WEBHOOK_SECRET)),
                (_("Sandbox allowed"), _("yes") if settings.PAYMENT_SANDBOX_ALLOWED else _("no")),
            ],
        ),
        Service(
            _("Video (WebRTC)"),
            [
                (_("STUN servers"), str(len(settings.STUN_URLS))),
                (_("TURN configured"), _("yes") if settings.TURN_URLS and settings.TURN_SECRET else _("no")),
            ],
        ),
    ]


def system_health(request: HttpRequest) -> HttpResponse:
    if not request.user.has_perm("core.view_system_health"):
        raise PermissionDenied
    checks = readiness_run()
    audit_record(action="system.health_viewed", actor=request.user, request=request, metadata={"failed": [n for n, r in checks.items() if r != "ok"]})
    context = {
        **admin.site.each_context(request),
        "title": _("System health"),
        "checks": checks,
        "ready": all(result == "ok" for result in checks.values()),
        "services": service_parameters(),
    }
    return TemplateResponse(request, "admin/system_health.html", context, status=200 if context["ready"] else 503)
