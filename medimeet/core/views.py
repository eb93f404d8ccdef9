from __future__ import annotations

from django.db import DatabaseError, connection
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render

from .errors import ERROR_CODES, error_payload


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


def _wants_json(request: HttpRequest) -> bool:
    return request.path.startswith("/api/")


def page_not_found(request: HttpRequest, exception=None) -> HttpResponse:
    if _wants_json(request):
        return JsonResponse(error_payload("REQ_004", ERROR_CODES["REQ_004"][1]), status=404)
    return render(request, "404.html", status=404)


def server_error(request: HttpRequest) -> HttpResponse:
    if _wants_json(request):
        return JsonResponse(error_payload("SERVER_001", ERROR_CODES["SERVER_001"][1]), status=500)
    return render(request, "500.html", status=500)
