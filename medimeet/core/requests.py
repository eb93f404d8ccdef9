"""Facts about the incoming request that several apps need (client IP, request id, device)."""

from __future__ import annotations

from django.conf import settings
from django.http import HttpRequest


def client_ip(request: HttpRequest) -> str | None:
    """The client's address; behind a proxy the first X-Forwarded-For hop when trusted."""
    if getattr(settings, "USE_X_FORWARDED_FOR", False):
        forwarded = request.META.get("HTTP_X_FORWARDED_FOR", "")
        if forwarded:
            return forwarded.split(",")[0].strip() or None
    return request.META.get("REMOTE_ADDR") or None


def request_id_of(request: HttpRequest) -> str:
    return getattr(request, "request_id", "") or ""


def describe_user_agent(user_agent: str) -> str:
    """A short human label for a device list, e.g. "Firefox on Windows"."""
    ua = user_agent or ""
    browser = next(
        (name for token, name in (
            ("Edg/", "Edge"), ("OPR/", "Opera"), ("Firefox/", "Firefox"), ("Chrome/", "Chrome"),
            ("Safari/", "Safari"), ("okhttp", "Android app"), ("CFNetwork", "iOS app"),
            ("python-requests", "Script"), ("python-httpx", "Script"),
        ) if token in ua),
        "Unknown browser",
    )
    system = next(
        (name for token, name in (
            ("Android", "Android"), ("iPhone", "iPhone"), ("iPad", "iPad"), ("Windows", "Windows"),
            ("Mac OS X", "macOS"), ("Linux", "Linux"),
        ) if token in ua),
        "",
    )
    return f"{browser} on {system}" if system else browser
