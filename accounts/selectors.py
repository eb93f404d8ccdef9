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


def users_for_staff(*, q: str = "", role: str = "", status: str = "", is_staff: bool | None = None, email_verified: bool | None = None, joined_after=None, joined_before=None, ordering: str = "-date_joined"):
    """The staff user list (admin API): filters, search and one row per user with what staff
    need to decide — verified email, MFA, doctor verification, roles, live API sessions — in a
    constant number of queries (annotations + one prefetch of the role groups)."""
    from allauth.account.models import EmailAddress
    from django.db.models import Count, Q

    queryset = (
        User.objects.select_related("doctor_profile")
        .prefetch_related("groups")
        .annotate(
            email_verified=Exists(EmailAddress.objects.filter(user=OuterRef("pk"), verified=True)),
            mfa_enabled=Exists(Authenticator.objects.filter(user=OuterRef("pk"), type=Authenticator.Type.TOTP)),
            live_api_sessions=Count("api_sessions", filter=Q(api_sessions__revoked_at__isnull=True, api_sessions__expires_at__gt=timezone.now()), distinct=True),
        )
    )
    if q:
        queryset = queryset.filter(Q(email__icontains=q) | Q(first_name__icontains=q) | Q(last_name__icontains=q))
    if role:
        queryset = queryset.filter(role=role)
    if status:
        queryset = queryset.filter(status=status)
    if is_staff is not None:
        queryset = queryset.filter(is_staff=is_staff)
    if email_verified is not None:
        queryset = queryset.filter(email_verified=email_verified)
    if joined_after:
        queryset = queryset.filter(date_joined__gte=joined_after)
    if joined_before:
        queryset = queryset.filter(date_joined__lt=joined_before)
    return queryset.order_by(ordering, "pk")
