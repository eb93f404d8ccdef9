"""Reads of account data that are more than a one-line queryset."""

from __future__ import annotations

from allauth.mfa.models import Authenticator
from allauth.usersessions.models import UserSession
from django.contrib.sessions.models import Session
from django.db.models import Exists, OuterRef
from django.http import HttpRequest
from django.utils import timezone

from medimeet.core.requests import describe_user_agent

from .models import ApiSession, User


def user_with_profile(*, user: User) -> User:
    """The user with the patient profile and the MFA flag in one query."""
    return (
        User.objects.select_related("patient_profile")
        .annotate(mfa_enabled=Exists(Authenticator.objects.filter(user=OuterRef("pk"), type=Authenticator.Type.TOTP)))
        .get(pk=user.pk)
    )


def web_sessions_live(*, user: User):
    """The user's web sessions whose Django session still exists (one query, no per-row purge)."""
    live = Session.objects.filter(session_key=OuterRef("session_key"), expire_date__gt=timezone.now())
    return UserSession.objects.filter(user=user).filter(Exists(live))


def sessions_for_user(*, user: User, request: HttpRequest) -> list[dict]:
    """Every live sign-in of the user, web and API, most recently used first."""
    current_api = getattr(user, "api_session", None)
    current_key = request.session.session_key if hasattr(request, "session") else None

    rows = [
        {
            "id": str(s.id),
            "kind": "api",
            "device": s.device_name or describe_user_agent(s.user_agent),
            "ip_address": s.ip_address,
            "user_agent": s.user_agent,
            "created_at": s.created_at,
            "last_seen_at": s.last_used_at,
            "current": current_api is not None and current_api.pk == s.pk,
        }
        for s in ApiSession.objects.active().filter(user=user)
    ]
    rows += [
        {
            "id": str(s.pk),
            "kind": "web",
            "device": describe_user_agent(s.user_agent),
            "ip_address": s.ip,
            "user_agent": s.user_agent,
            "created_at": s.created_at,
            "last_seen_at": s.last_seen_at,
            "current": s.session_key == current_key,
        }
        for s in web_sessions_live(user=user)
    ]
    return sorted(rows, key=lambda row: row["last_seen_at"] or row["created_at"], reverse=True)
