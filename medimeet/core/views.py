from __future__ import annotations

import logging
import sys
import uuid
from collections.abc import Callable

from django.conf import settings
from django.core.cache import cache
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.db import DatabaseError, connection
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.template.loader import render_to_string

from .errors import ERROR_CODES, OUTAGE_RETRY_AFTER_SECONDS, error_payload, is_outage

logger = logging.getLogger("medimeet.health")
READY_TIMEOUT_SECONDS = 2


def home(request: HttpRequest) -> HttpResponse:
    if request.user.is_authenticated:
        return redirect("accounts:dashboard")
    from doctors.models import Specialization

    return render(request, "home.html", {"specializations": Specialization.objects.filter(parent__isnull=True).order_by("name")})


def health(request: HttpRequest) -> JsonResponse:
    """Liveness: the process answers and reaches its database (503 with JSON when it cannot)."""
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
    except DatabaseError:
        return JsonResponse({"status": "error", "database": "unreachable"}, status=503)
    return JsonResponse({"status": "ok"})


def _ready_database() -> None:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")


def _ready_cache() -> None:
    key = f"ready:{uuid.uuid4().hex}"
    cache.set(key, "1", timeout=10)
    try:
        if cache.get(key) != "1":
            raise RuntimeError("the cache did not return the value just stored")
    finally:
        cache.delete(key)


def _ready_broker() -> None:
    # Read from settings on every call (not the Celery app's cached configuration), so what is
    # checked is what the worker and the web process are configured with now.
    from kombu import Connection

    with Connection(settings.CELERY_BROKER_URL, transport_options=settings.CELERY_BROKER_TRANSPORT_OPTIONS, connect_timeout=READY_TIMEOUT_SECONDS) as broker:
        broker.ensure_connection(max_retries=1, interval_start=0, interval_step=0, interval_max=0, timeout=READY_TIMEOUT_SECONDS)


def _ready_storage() -> None:
    name = default_storage.save(f"health/ready-{uuid.uuid4().hex}.txt", ContentFile(b"ok"))
    default_storage.delete(name)


READY_CHECKS: dict[str, Callable[[], None]] = {
    "database": _ready_database,
    "cache": _ready_cache,
    "broker": _ready_broker,
    "storage": _ready_storage,
}


def readiness_run() -> dict[str, str]:
    """Run every readiness check: {"database": "ok", "broker": "failed", …}. The reason for a
    failure (which may mention hosts) goes to the server log only. Used by ``/ready/`` and the
    staff health page (medimeet/core/health.py)."""
    checks: dict[str, str] = {}
    for name, check in READY_CHECKS.items():
        try:
            check()
        except Exception as exc:  # any failure makes the instance not ready
            logger.warning("readiness check %s failed: %s", name, type(exc).__name__)
            checks[name] = "failed"
        else:
            checks[name] = "ok"
    return checks


def ready(request: HttpRequest) -> JsonResponse:
    """Readiness: the database answers, the cache stores and returns a value, the Celery broker
    accepts a connection and the file storage is writable. 200, or 503 naming the failed checks.
    The answer names checks only; the reason (which may mention hosts) goes to the server log."""
    checks = readiness_run()
    failed = [name for name, result in checks.items() if result != "ok"]
    return JsonResponse({"status": "error" if failed else "ok", "checks": checks, "failed": failed}, status=503 if failed else 200)


def _wants_json(request: HttpRequest) -> bool:
    return request.path.startswith("/api/")


def page_not_found(request: HttpRequest, exception=None) -> HttpResponse:
    if _wants_json(request):
        return JsonResponse(error_payload("REQ_004", ERROR_CODES["REQ_004"][1]), status=404)
    return render(request, "404.html", status=404)


def server_error(request: HttpRequest) -> HttpResponse:
    """handler500, called while the exception is being handled: a backing service that cannot be
    reached (is_outage) is a 503 with Retry-After, not a bug."""
    outage = is_outage(sys.exc_info()[1])
    code, status = ("SERVER_002", 503) if outage else ("SERVER_001", 500)
    if _wants_json(request):
        response = JsonResponse(error_payload(code, ERROR_CODES[code][1]), status=status)
    else:
        from .platform import site_notice_or_default

        # Without the request: its context processors read the signed-in user and the
        # announcements from the database, which may be what just failed.
        response = HttpResponse(render_to_string("500.html", {"support": site_notice_or_default(), "outage": outage}), status=status)
    if outage:
        response["Retry-After"] = str(OUTAGE_RETRY_AFTER_SECONDS)
    return response
