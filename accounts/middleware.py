"""Web session policy: idle log-off, absolute lifetime, blocked accounts, required MFA."""

from __future__ import annotations

import time

from allauth.mfa.utils import is_mfa_enabled
from django.conf import settings
from django.contrib import messages
from django.contrib.auth import logout
from django.http import HttpRequest, JsonResponse
from django.shortcuts import redirect
from django.urls import reverse
from django.utils.translation import gettext as _

from medimeet.core.errors import ERROR_CODES, error_payload

AUTH_AT = "_mm_auth_at"
SEEN_AT = "_mm_seen_at"
# Refreshing the last-seen mark at most once a minute keeps most requests from writing the session.
SEEN_RESOLUTION = 60
MFA_EXEMPT_PREFIXES = ("/accounts/", "/static/", "/media/", "/health/", "/ready/")


def session_mark_authenticated(request: HttpRequest) -> None:
    now = int(time.time())
    request.session[AUTH_AT] = now
    request.session[SEEN_AT] = now


class SessionPolicyMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request: HttpRequest):
        user = getattr(request, "user", None)
        if user is not None and user.is_authenticated:
            response = self._enforce(request, user)
            if response is not None:
                return response
        return self.get_response(request)

    def _enforce(self, request: HttpRequest, user):
        now = int(time.time())
        session = request.session
        auth_at = session.get(AUTH_AT)
        seen_at = session.get(SEEN_AT)
        if auth_at is None:  # signed in by a path that did not mark the session (e.g. a test client)
            session_mark_authenticated(request)
            auth_at = seen_at = now
        reason = None
        if user.is_blocked:
            reason = _("This account is blocked.")
        elif now - seen_at > settings.SESSION_IDLE_TIMEOUT:
            reason = _("You were signed out after a period of inactivity.")
        elif now - auth_at > settings.SESSION_ABSOLUTE_LIFETIME:
            reason = _("Your session has ended. Please sign in again.")
        if reason:
            logout(request)
            if request.path.startswith("/api/"):
                return None  # the API answers AUTH_001 for the now anonymous request
            messages.info(request, reason)
            return redirect(f"{reverse('account_login')}?next={request.path}")
        if now - seen_at >= SEEN_RESOLUTION:
            session[SEEN_AT] = now
        if user.requires_mfa() and not request.path.startswith(MFA_EXEMPT_PREFIXES) and not is_mfa_enabled(user):
            if request.path.startswith("/api/"):
                return JsonResponse(error_payload("AUTH_009", ERROR_CODES["AUTH_009"][1]), status=403)
            messages.warning(request, _("Set up two-factor authentication to continue."))
            return redirect("mfa_activate_totp")
        return None
