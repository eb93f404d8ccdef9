"""JWTs bound to an ApiSession.

Every token carries ``uid`` (the user's public id) and ``sid`` (the ApiSession id) and nothing
else about the person: no email, no name, no PHI. Authentication loads the session and its
user in one statement by primary key, so revoking a device, force-logout or blocking takes effect on the very
next request, for access tokens as well as refresh tokens.
"""

from __future__ import annotations

import uuid
from datetime import timedelta

from django.db import connection
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from rest_framework import exceptions
from rest_framework_simplejwt.authentication import JWTAuthentication
from rest_framework_simplejwt.exceptions import ExpiredTokenError, InvalidToken, TokenError
from rest_framework_simplejwt.tokens import AccessToken, RefreshToken

from medimeet.core import sql

from .models import ApiSession, User

SESSION_CLAIM = "sid"
LAST_USED_RESOLUTION = timedelta(minutes=1)


class AuthFailed(exceptions.AuthenticationFailed):
    """AuthenticationFailed that carries our stable error code to the envelope handler."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.medimeet_code = code


def token_error(exc: Exception) -> AuthFailed:
    if isinstance(exc, ExpiredTokenError) or "expired" in str(exc).lower():
        return AuthFailed("AUTH_003", str(_("The token has expired.")))
    return AuthFailed("AUTH_004", str(_("The token is invalid or has been revoked.")))


def tokens_issue(*, session: ApiSession) -> dict[str, str]:
    refresh = RefreshToken.for_user(session.user)
    refresh[SESSION_CLAIM] = str(session.id)
    return {"access": str(refresh.access_token), "refresh": str(refresh)}


def session_user_check(session: ApiSession | None) -> User:
    """The user a token session stands for, or the auth error that says why not."""
    if session is None or not session.is_active:
        raise AuthFailed("AUTH_004", str(_("The token is invalid or has been revoked.")))
    user = session.user
    if user.is_blocked:
        raise AuthFailed("AUTH_005", str(_("This account is blocked.")))
    if not user.is_active:
        raise AuthFailed("AUTH_004", str(_("The token is invalid or has been revoked.")))
    return user


def session_touch(session: ApiSession) -> None:
    """Record use at most once a minute, with a conditional update (no read-modify-write)."""
    now = timezone.now()
    if now - session.last_used_at >= LAST_USED_RESOLUTION:
        ApiSession.objects.filter(pk=session.pk, last_used_at__lt=now - LAST_USED_RESOLUTION).update(last_used_at=now)


def session_with_user(sid: uuid.UUID) -> ApiSession | None:
    """The API session ``sid`` with its user, in one statement by primary key: every
    authenticated API request reads them, so in SQL (medimeet/core/sql.py says why)."""
    statement = (
        f"SELECT {sql.columns(ApiSession, 's')}, {sql.columns(User, 'u')}"
        " FROM accounts_apisession s JOIN accounts_user u ON u.id = s.user_id WHERE s.id = %s"
    )
    found = sql.rows(statement, [ApiSession._meta.pk.get_db_prep_value(sid, connection)])
    if not found:
        return None
    session, user = sql.instances(found[0], ApiSession, User)
    session.user = user
    return session


class SessionBoundJWTAuthentication(JWTAuthentication):
    def get_validated_token(self, raw_token: bytes) -> AccessToken:
        try:
            return AccessToken(raw_token)
        except TokenError as exc:
            raise token_error(exc) from exc

    def get_user(self, validated_token) -> User:
        try:
            sid = uuid.UUID(str(validated_token.get(SESSION_CLAIM)))
            uid = uuid.UUID(str(validated_token.get("uid")))
        except ValueError:
            sid = uid = None
        session = None
        if sid and uid:
            # No join condition on ``uid``: the signature already binds it to ``sid``, so
            # comparing it in Python is enough.
            session = session_with_user(sid)
            if session is not None and session.user.public_id != uid:
                session = None
        user = session_user_check(session)
        session_touch(session)
        user.api_session = session  # type: ignore[attr-defined]
        return user

    def authenticate(self, request):
        try:
            return super().authenticate(request)
        except InvalidToken as exc:  # raised by simplejwt for malformed headers
            raise AuthFailed("AUTH_004", str(_("The token is invalid or has been revoked."))) from exc
