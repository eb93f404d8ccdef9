"""Everything that changes accounts: registration, sign-in, sessions, blocking, profiles.

Web pages go through django-allauth (its views call our AccountAdapter); the API calls these
functions. Both share allauth's email confirmation keys, password reset tokens, login-failure
lockout and MFA authenticators, so a rule holds whichever door a person uses.
"""

from __future__ import annotations

import io
import secrets
import uuid
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from allauth.account.adapter import get_adapter as get_account_adapter
from allauth.account.forms import ResetPasswordForm, UserTokenForm
from allauth.account.internal.flows.email_verification import send_verification_email_to_address
from allauth.account.models import EmailAddress, EmailConfirmation, EmailConfirmationHMAC
from allauth.mfa.models import Authenticator
from allauth.mfa.recovery_codes.internal.auth import RecoveryCodes
from allauth.mfa.totp.internal.auth import TOTP
from allauth.mfa.utils import is_mfa_enabled
from allauth.usersessions.models import UserSession
from django.conf import settings
from django.contrib.auth import password_validation
from django.core import signing
from django.core.cache import cache
from django.core.exceptions import ValidationError
from django.core.files.base import ContentFile
from django.core.files.uploadedfile import UploadedFile
from django.db import IntegrityError, transaction
from django.http import HttpRequest
from django.utils import timezone
from django.utils.translation import gettext
from PIL import Image, ImageOps, UnidentifiedImageError
from rest_framework_simplejwt.exceptions import TokenBackendError, TokenError
from rest_framework_simplejwt.settings import api_settings as jwt_settings
from rest_framework_simplejwt.state import token_backend
from rest_framework_simplejwt.token_blacklist.models import BlacklistedToken, OutstandingToken
from rest_framework_simplejwt.tokens import RefreshToken

from medimeet.core.audit import audit_record
from medimeet.core.errors import ERROR_CODES, ApplicationError
from medimeet.core.requests import client_ip, describe_user_agent

from .models import ApiSession, PatientProfile, User
from .tokens import SESSION_CLAIM, session_user_check, token_error, tokens_issue

MFA_TOKEN_SALT = "medimeet.accounts.mfa-login"
MFA_TOKEN_MAX_AGE = 5 * 60
MFA_MAX_ATTEMPTS = 5

PICTURE_FORMATS = {"JPEG": "jpg", "PNG": "png", "WEBP": "webp"}
PICTURE_MAX_PIXELS = 40_000_000
PICTURE_SIZE = 512
THUMBNAIL_SIZE = 128


# --- Registration and email verification ----------------------------------------------------


def password_check(password: str, user: User | None = None, field: str = "password") -> None:
    try:
        password_validation.validate_password(password, user)
    except ValidationError as exc:
        raise ApplicationError("REQ_001", gettext("The password is too weak."), fields={field: list(exc.messages)}) from exc


def user_register(
    *,
    request: HttpRequest,
    email: str,
    password: str,
    first_name: str = "",
    last_name: str = "",
    timezone_name: str = "UTC",
    language: str = "en",
) -> User:
    """Create a patient account with an unverified email and send the verification email."""
    email = email.strip().lower()
    if User.objects.filter(email=email).exists():
        raise ApplicationError("USER_002", fields={"email": [gettext("An account with this email address already exists.")]})
    candidate = User(email=email, first_name=first_name, last_name=last_name)
    password_check(password, candidate)
    try:
        with transaction.atomic():
            user = User.objects.create_user(
                email=email,
                password=password,
                first_name=first_name,
                last_name=last_name,
                timezone=timezone_name,
                language=language,
                role=User.Role.PATIENT,
            )
            PatientProfile.objects.create(user=user)
            address = EmailAddress.objects.create(user=user, email=email, primary=True, verified=False)
            audit_record(action="account.registered", actor=user, target=user, subject_user=user, request=request, metadata={"channel": "api"})
    except IntegrityError as exc:  # lost a race with a concurrent registration of the same email
        raise ApplicationError("USER_002", fields={"email": [gettext("An account with this email address already exists.")]}) from exc
    send_verification_email_to_address(request, address, signup=True)
    return user


def email_verification_resend(*, request: HttpRequest, email: str) -> None:
    """Send a new verification link if the address exists and is unverified; silent otherwise
    (no account enumeration). allauth's cooldown rate-limits repeats per address."""
    address = EmailAddress.objects.filter(email__iexact=email.strip(), verified=False).select_related("user").first()
    if address is not None:
        send_verification_email_to_address(request, address)


def user_verification_resend(*, user: User, by: User, request: HttpRequest) -> bool:
    """Staff: send the verification link again to an account whose address is unverified.
    False (nothing sent) when the account has no unverified address."""
    address = EmailAddress.objects.filter(user=user, verified=False).order_by("-primary").first()
    if address is None:
        return False
    send_verification_email_to_address(request, address)
    audit_record(action="account.verification_resent", actor=by, target=user, subject_user=user, request=request)
    return True


def email_verify(*, request: HttpRequest, key: str) -> User:
    confirmation = EmailConfirmationHMAC.from_key(key) or EmailConfirmation.from_key(key)
    address = confirmation.confirm(request) if confirmation else None
    if not address:
        raise ApplicationError("AUTH_011", gettext("The verification link is invalid or has expired."), fields={"key": [gettext("Invalid or expired key.")]})
    audit_record(action="account.email_verified", actor=address.user, target=address.user, subject_user=address.user, request=request)
    return address.user


# --- Sign-in --------------------------------------------------------------------------------


@dataclass(frozen=True)
class LoginResult:
    tokens: dict[str, str] | None = None
    mfa_token: str | None = None
    user: User | None = None


def _user_login_gate(user: User, request: HttpRequest) -> None:
    """Refuse sign-in for blocked, deactivated or unverified accounts, with a clear code."""
    if user.is_blocked:
        raise ApplicationError("AUTH_005")
    if not user.is_active:
        raise ApplicationError("AUTH_002")
    if not EmailAddress.objects.filter(user=user, verified=True).exists():
        raise ApplicationError("AUTH_006")


def login_with_password(*, request: HttpRequest, email: str, password: str, device_name: str = "") -> LoginResult:
    """Check the password (with allauth's shared lockout), then either issue tokens or, when the
    account has two-factor authentication, return a short-lived MFA challenge token."""
    adapter = get_account_adapter(request)
    try:
        user = adapter.authenticate(request, email=email.strip().lower(), password=password)
    except ValidationError as exc:  # allauth's "too_many_login_attempts"
        audit_record(action="auth.locked_out", request=request, metadata={"channel": "api"})
        # allauth does not say whether the account or the address hit its limit; the address
        # limit clears within a minute, the account lockout after LOGIN_LOCKOUT_SECONDS.
        raise ApplicationError("AUTH_007", extra={"retry_after": 60}) from exc
    if user is None:
        audit_record(action="auth.login_failed", request=request, metadata={"channel": "api"})
        raise ApplicationError("AUTH_002")
    _user_login_gate(user, request)
    if is_mfa_enabled(user):
        token = signing.dumps({"u": str(user.public_id), "n": secrets.token_hex(8), "d": device_name[:120]}, salt=MFA_TOKEN_SALT)
        return LoginResult(mfa_token=token, user=user)
    if user.requires_mfa():
        raise ApplicationError("AUTH_009")
    return LoginResult(tokens=api_session_start(user=user, request=request, device_name=device_name), user=user)


def login_complete_mfa(*, request: HttpRequest, mfa_token: str, code: str) -> LoginResult:
    """Second step of an API sign-in: a TOTP or recovery code for the challenge token."""
    try:
        payload = signing.loads(mfa_token, salt=MFA_TOKEN_SALT, max_age=MFA_TOKEN_MAX_AGE)
    except signing.SignatureExpired as exc:
        raise ApplicationError("AUTH_003", gettext("The sign-in challenge has expired. Sign in again.")) from exc
    except signing.BadSignature as exc:
        raise ApplicationError("AUTH_004", gettext("The sign-in challenge is not valid.")) from exc
    attempts_key = f"mfa-attempts:{payload['n']}"
    cache.add(attempts_key, 0, MFA_TOKEN_MAX_AGE)
    if cache.incr(attempts_key) > MFA_MAX_ATTEMPTS:
        raise ApplicationError("AUTH_007", gettext("Too many wrong codes. Sign in again."))
    user = User.objects.filter(public_id=payload["u"]).first()
    if user is None:
        raise ApplicationError("AUTH_004", gettext("The sign-in challenge is not valid."))
    _user_login_gate(user, request)
    if not mfa_code_check(user=user, code=code):
        audit_record(action="auth.mfa_failed", actor=None, subject_user=user, request=request, metadata={"channel": "api"})
        raise ApplicationError("AUTH_008", fields={"code": [gettext("The code is not valid.")]})
    if not cache.add(f"mfa-used:{payload['n']}", 1, MFA_TOKEN_MAX_AGE):
        raise ApplicationError("AUTH_004", gettext("The sign-in challenge was already used."))
    return LoginResult(tokens=api_session_start(user=user, request=request, device_name=payload.get("d", "")), user=user)


def mfa_code_check(*, user: User, code: str) -> bool:
    code = (code or "").strip().replace(" ", "")
    for authenticator in Authenticator.objects.filter(user=user):
        if authenticator.type == Authenticator.Type.TOTP and TOTP(authenticator).validate_code(code):
            authenticator.record_usage()
            return True
        if authenticator.type == Authenticator.Type.RECOVERY_CODES and RecoveryCodes(authenticator).validate_code(code):
            authenticator.record_usage()
            return True
    return False


def api_session_start(*, user: User, request: HttpRequest, device_name: str = "") -> dict[str, str]:
    """Record the device and issue a refresh/access pair bound to it."""
    user_agent = request.META.get("HTTP_USER_AGENT", "")[:300]
    with transaction.atomic():
        return _api_session_create(user=user, request=request, device_name=device_name, user_agent=user_agent)


def _api_session_create(*, user: User, request: HttpRequest, device_name: str, user_agent: str) -> dict[str, str]:
    session = ApiSession.objects.create(
        user=user,
        device_name=(device_name or describe_user_agent(user_agent))[:120],
        user_agent=user_agent,
        ip_address=client_ip(request),
        expires_at=timezone.now() + jwt_settings.REFRESH_TOKEN_LIFETIME,
    )
    User.objects.filter(pk=user.pk).update(last_login=timezone.now())
    login_new_device_alert(user=user, request=request)
    audit_record(action="auth.login", actor=user, target=session, subject_user=user, request=request, metadata={"channel": "api"})
    return tokens_issue(session=session)


def login_new_device_alert(*, user: User, request: HttpRequest) -> bool:
    """Before a sign-in is audited: if this person has signed in before but never with this
    browser or app (by user agent, from the audit log), send them a security alert. The first
    sign-in of an account alerts nobody. Returns whether an alert was queued."""
    from django.urls import reverse

    from medimeet.core.models import AuditEvent
    from medimeet.core.notifications import notify

    user_agent = request.META.get("HTTP_USER_AGENT", "")[:300]
    logins = AuditEvent.objects.filter(subject_user=user, action="auth.login")
    if not logins.exists() or logins.filter(user_agent=user_agent).exists():
        return False
    notify(
        user=user,
        event="account.new_device_sign_in",
        context={"device": describe_user_agent(user_agent), "ip_address": client_ip(request) or "—", "signed_in_at": timezone.now(), "devices_url": settings.SITE_URL + reverse("accounts:devices")},
    )
    return True


def tokens_refresh(*, refresh: str) -> dict[str, str]:
    """Rotate a refresh token: the old one is blacklisted and the session must still be active.

    Presenting a refresh token that was already rotated means two parties hold the same token
    family (a stolen token): the whole session is revoked, as OAuth 2.0 security BCP advises."""
    try:
        token = RefreshToken(refresh)
    except TokenError as exc:
        _revoke_session_on_reuse(refresh)
        raise token_error(exc) from exc
    session = ApiSession.objects.select_related("user").filter(pk=_session_id(token)).first()
    session_user_check(session)
    with transaction.atomic():
        # Lock the token's row so two concurrent rotations of one token cannot both succeed.
        outstanding = OutstandingToken.objects.select_for_update().filter(jti=token[jwt_settings.JTI_CLAIM]).first()
        if outstanding is None or BlacklistedToken.objects.filter(token=outstanding).exists():
            raise token_error(TokenError("Token is blacklisted"))
        BlacklistedToken.objects.create(token=outstanding)
        token.set_jti()
        token.set_exp()
        token.set_iat()
        token.outstand()
        ApiSession.objects.filter(pk=session.pk).update(last_used_at=timezone.now())
    return {"access": str(token.access_token), "refresh": str(token)}


def _revoke_session_on_reuse(raw: str) -> None:
    try:
        payload = token_backend.decode(raw, verify=True)  # signature and expiry, not the blacklist
    except TokenBackendError:
        return
    jti = payload.get(jwt_settings.JTI_CLAIM)
    if payload.get(jwt_settings.TOKEN_TYPE_CLAIM) == "refresh" and BlacklistedToken.objects.filter(token__jti=jti).exists():
        _api_sessions_revoke(ApiSession.objects.filter(pk=_session_id(payload)), reason="refresh_reuse")


def _session_id(token) -> uuid.UUID | None:
    try:
        return uuid.UUID(str(token.get(SESSION_CLAIM)))
    except (TypeError, ValueError):
        return None


def api_logout(*, user: User, refresh: str, request: HttpRequest) -> None:
    """Blacklist the refresh token and end its session (its access tokens stop working too)."""
    try:
        token = RefreshToken(refresh)
    except TokenError as exc:
        raise token_error(exc) from exc
    session = ApiSession.objects.filter(pk=_session_id(token), user=user).first()
    if session is None:
        raise ApplicationError("AUTH_004", fields={"refresh": [gettext("This refresh token does not belong to you.")]})
    try:
        token.blacklist()
    except IntegrityError:
        pass
    _api_sessions_revoke(ApiSession.objects.filter(pk=session.pk), reason="logout")
    audit_record(action="auth.logout", actor=user, target=session, subject_user=user, request=request, metadata={"channel": "api"})


# --- Sessions and devices -------------------------------------------------------------------


def _api_sessions_revoke(sessions, *, reason: str) -> int:
    return sessions.filter(revoked_at__isnull=True).update(revoked_at=timezone.now(), revoked_reason=reason)


def _blacklist_all_refresh_tokens(user: User) -> None:
    outstanding = OutstandingToken.objects.filter(user=user, expires_at__gt=timezone.now()).exclude(blacklistedtoken__isnull=False)
    BlacklistedToken.objects.bulk_create([BlacklistedToken(token=t) for t in outstanding], ignore_conflicts=True)


def session_revoke(*, user: User, session_id: str, request: HttpRequest) -> None:
    """End one of the user's own sessions: an API device (uuid) or a web session (number)."""
    if _is_uuid(session_id):
        updated = _api_sessions_revoke(ApiSession.objects.filter(pk=session_id, user=user), reason="revoked")
        if not updated:
            raise ApplicationError("USER_004")
        audit_record(action="auth.session_revoked", actor=user, target=None, subject_user=user, request=request, metadata={"session": session_id, "kind": "api"})
        return
    web_session = UserSession.objects.filter(pk=session_id if session_id.isdigit() else None, user=user).first()
    if web_session is None:
        raise ApplicationError("USER_004")
    web_session.end()
    audit_record(action="auth.session_revoked", actor=user, subject_user=user, request=request, metadata={"session": session_id, "kind": "web"})


def sessions_revoke_all(*, user: User, request: HttpRequest, keep_current: bool = True) -> None:
    """Sign the user out everywhere else (or everywhere with ``keep_current=False``)."""
    current_api = getattr(user, "api_session", None)
    api_sessions = ApiSession.objects.filter(user=user)
    if keep_current and current_api is not None:
        api_sessions = api_sessions.exclude(pk=current_api.pk)
    _api_sessions_revoke(api_sessions, reason="revoked")
    current_key = request.session.session_key if hasattr(request, "session") else None
    for web_session in UserSession.objects.filter(user=user):
        if keep_current and web_session.session_key == current_key:
            continue
        web_session.end()
    audit_record(action="auth.sessions_revoked_all", actor=user, subject_user=user, request=request)


def _is_uuid(value: str) -> bool:
    try:
        uuid.UUID(str(value))
    except ValueError:
        return False
    return True


def _staff_may_act_on(*, user: User, by: User) -> None:
    """A superuser's account is acted on by superusers only (support cannot lock out an admin)."""
    if user.is_superuser and not by.is_superuser:
        raise ApplicationError("AUTH_010", gettext("Only a superuser can do this to a superuser's account."))


def user_force_logout(*, user: User, by: User, request: HttpRequest | None = None) -> None:
    """Staff action: every refresh token blacklisted, every API session revoked, every web
    session deleted. Access tokens die with their session on the next request."""
    _staff_may_act_on(user=user, by=by)
    with transaction.atomic():
        _blacklist_all_refresh_tokens(user)
        _api_sessions_revoke(ApiSession.objects.filter(user=user), reason="forced")
        for web_session in UserSession.objects.filter(user=user):
            web_session.end()
        audit_record(action="account.force_logout", actor=by, target=user, subject_user=user, request=request)


def user_block(*, user: User, by: User, reason: str, request: HttpRequest | None = None) -> User:
    reason = (reason or "").strip()
    if not reason:
        raise ApplicationError("REQ_001", fields={"reason": [gettext("A reason is required to block an account.")]})
    if user.pk == by.pk:
        raise ApplicationError("AUTH_010", gettext("You cannot block your own account."))
    _staff_may_act_on(user=user, by=by)
    with transaction.atomic():
        user = User.objects.select_for_update().get(pk=user.pk)
        if not user.is_blocked:
            user.status = User.Status.BLOCKED
            user.blocked_reason = reason[:500]
            user.blocked_at = timezone.now()
            user.save(update_fields=["status", "blocked_reason", "blocked_at"])
            audit_record(action="account.blocked", actor=by, target=user, subject_user=user, request=request, metadata={"reason": reason[:500]})
        user_force_logout(user=user, by=by, request=request)
    return user


def user_unblock(*, user: User, by: User, request: HttpRequest | None = None) -> User:
    with transaction.atomic():
        user = User.objects.select_for_update().get(pk=user.pk)
        if user.is_blocked:
            user.status = User.Status.ACTIVE
            user.blocked_reason = ""
            user.blocked_at = None
            user.save(update_fields=["status", "blocked_reason", "blocked_at"])
            audit_record(action="account.unblocked", actor=by, target=user, subject_user=user, request=request)
    return user


# --- Passwords ------------------------------------------------------------------------------


def password_reset_request(*, request: HttpRequest, email: str) -> None:
    """Email a time-limited reset link (PASSWORD_RESET_TIMEOUT). Unknown addresses get an
    "unknown account" email instead, so the response never reveals who is registered."""
    form = ResetPasswordForm(data={"email": email})
    if not form.is_valid():
        raise ApplicationError("REQ_001", fields=dict(form.errors))
    form.save(request)


def password_reset_confirm(*, request: HttpRequest, key: str, password: str) -> User:
    """``key`` is the last part of the emailed link: ``<uidb36>-<token>``."""
    uidb36, _, token = (key or "").partition("-")
    # allauth's form fails with a TypeError (a 500) on an empty user part, e.g. "-123": refuse first.
    if not uidb36 or not token or not (form := UserTokenForm(data={"uidb36": uidb36, "key": token})).is_valid():
        raise ApplicationError("AUTH_011", gettext("The password reset link is invalid or has expired."), fields={"key": [gettext("Invalid or expired key.")]})
    user = form.reset_user
    password_check(password, user)
    with transaction.atomic():
        user.set_password(password)
        user.save(update_fields=["password"])
        # A reset means the old password may be known to someone else: end every session.
        user_force_logout(user=user, by=user, request=request)
        audit_record(action="account.password_reset", actor=user, target=user, subject_user=user, request=request)
    get_account_adapter(request)._delete_login_attempts_cached_email(request, email=user.email)
    return user


def password_change(*, user: User, current_password: str, new_password: str, request: HttpRequest) -> None:
    if not user.check_password(current_password):
        raise ApplicationError("AUTH_012", fields={"current_password": [gettext("The current password is not correct.")]})
    password_check(new_password, user, field="new_password")
    user.set_password(new_password)
    user.save(update_fields=["password"])
    audit_record(action="account.password_changed", actor=user, target=user, subject_user=user, request=request)


# --- Profile --------------------------------------------------------------------------------

USER_FIELDS = {"first_name", "last_name", "timezone", "language"}
PROFILE_FIELDS = {
    "date_of_birth",
    "sex",
    "phone",
    "address",
    "medical_history_summary",
    "allergies",
    "chronic_conditions",
    "emergency_contact_name",
    "emergency_contact_phone",
}


def profile_update(*, user: User, data: dict[str, Any], request: HttpRequest | None = None) -> User:
    """Apply already-validated fields to the user and their patient profile, atomically."""
    unknown = set(data) - USER_FIELDS - PROFILE_FIELDS
    if unknown:
        raise ApplicationError("REQ_001", fields={name: [gettext("This field cannot be changed.")] for name in sorted(unknown)})
    with transaction.atomic():
        user_changes = {k: v for k, v in data.items() if k in USER_FIELDS}
        if user_changes:
            for name, value in user_changes.items():
                setattr(user, name, value)
            user.full_clean(exclude=["password", "picture", "picture_thumbnail"], validate_unique=False)
            user.save(update_fields=sorted(user_changes))
        profile_changes = {k: v for k, v in data.items() if k in PROFILE_FIELDS}
        if profile_changes:
            profile, _ = PatientProfile.objects.get_or_create(user=user)
            for name, value in profile_changes.items():
                setattr(profile, name, value)
            profile.save()
        # Field names only: the values are PHI.
        audit_record(action="profile.updated", actor=user, target=user, subject_user=user, request=request, metadata={"fields": sorted(data)})
    return user


def profile_picture_set(*, user: User, upload: UploadedFile, request: HttpRequest | None = None) -> User:
    """Validate an uploaded picture by its content (JPEG, PNG or WebP, within the size limit),
    re-encode it (which drops EXIF and anything smuggled after the image) and make a thumbnail."""
    if upload.size is None or upload.size > settings.PROFILE_PICTURE_MAX_BYTES:
        limit_mb = settings.PROFILE_PICTURE_MAX_BYTES // (1024 * 1024)
        raise ApplicationError("USER_003", gettext("The picture is larger than %(size)s MB.") % {"size": limit_mb}, fields={"picture": [gettext("Maximum size is %(size)s MB.") % {"size": limit_mb}]})
    try:
        upload.seek(0)
        with Image.open(upload) as probe:
            image_format = probe.format
            if image_format not in PICTURE_FORMATS:
                raise ApplicationError("USER_003", gettext("Upload a JPEG, PNG or WebP image."), fields={"picture": [gettext("Unsupported image type.")]})
            if probe.width * probe.height > PICTURE_MAX_PIXELS:
                raise ApplicationError("USER_003", gettext("The picture has too many pixels."), fields={"picture": [gettext("Image dimensions are too large.")]})
            probe.verify()
        upload.seek(0)
        with Image.open(upload) as opened:
            image = ImageOps.exif_transpose(opened).convert("RGB")
    except (UnidentifiedImageError, OSError, SyntaxError, Image.DecompressionBombError) as exc:
        raise ApplicationError("USER_003", gettext("The file is not a valid image."), fields={"picture": [gettext("Not a valid image.")]}) from exc

    def encoded(size: int) -> ContentFile:
        side = min(min(image.size), size)  # square, centre-cropped, never upscaled
        copy = ImageOps.fit(image, (side, side))
        buffer = io.BytesIO()
        copy.save(buffer, format="JPEG", quality=85, optimize=True)
        return ContentFile(buffer.getvalue())

    name = f"{user.public_id.hex}-{secrets.token_hex(4)}.jpg"
    old_files = [f.name for f in (user.picture, user.picture_thumbnail) if f]
    user.picture.save(name, encoded(PICTURE_SIZE), save=False)
    user.picture_thumbnail.save(name, encoded(THUMBNAIL_SIZE), save=False)
    user.save(update_fields=["picture", "picture_thumbnail"])
    storage = user.picture.storage
    transaction.on_commit(lambda: [storage.delete(n) for n in old_files])
    audit_record(action="profile.picture_updated", actor=user, target=user, subject_user=user, request=request)
    return user


def api_sessions_purge_expired(*, older_than: timedelta = timedelta(days=30)) -> int:
    """Delete API session rows that expired or were revoked long ago (housekeeping)."""
    cutoff = timezone.now() - older_than
    deleted, _ = ApiSession.objects.filter(expires_at__lt=cutoff).delete()
    deleted_revoked, _ = ApiSession.objects.filter(revoked_at__lt=cutoff).delete()
    OutstandingToken.objects.filter(expires_at__lt=cutoff).delete()
    return deleted + deleted_revoked


# --- Staff: bulk operations on accounts ------------------------------------------------------

BULK_ACTIONS = ("block", "unblock", "force_logout", "resend_verification")
BULK_LIMIT = 100


def users_bulk_action(*, by: User, action: str, user_ids: list, reason: str = "", request: HttpRequest | None = None) -> list[dict]:
    """Staff apply one action to many accounts (the admin's bulk actions, for the API). Every id
    gets its own outcome; one refusal (e.g. blocking yourself) does not undo the others, and
    each applied one is its own transaction and audit entry, as in the admin."""
    if action not in BULK_ACTIONS:
        raise ApplicationError("REQ_001", fields={"action": [gettext("Choose one of: %(actions)s.") % {"actions": ", ".join(BULK_ACTIONS)}]})
    if not user_ids or len(user_ids) > BULK_LIMIT:
        raise ApplicationError("REQ_001", fields={"ids": [gettext("Give between 1 and %(limit)d user ids.") % {"limit": BULK_LIMIT}]})
    if action == "block" and not (reason or "").strip():
        raise ApplicationError("REQ_001", fields={"reason": [gettext("A reason is required to block accounts.")]})
    users = {str(user.public_id): user for user in User.objects.filter(public_id__in=user_ids)}
    results = []
    for user_id in dict.fromkeys(str(i) for i in user_ids):
        user = users.get(user_id)
        if user is None:
            results.append({"id": user_id, "ok": False, "error": {"code": "USER_001", "message": str(ERROR_CODES["USER_001"][1])}})
            continue
        try:
            status, detail = _bulk_apply(action, user=user, by=by, reason=reason, request=request)
        except ApplicationError as exc:
            results.append({"id": user_id, "ok": False, "error": {"code": exc.code, "message": exc.message}})
        else:
            results.append({"id": user_id, "ok": True, "status": status, "detail": detail})
    return results


def _bulk_apply(action: str, *, user: User, by: User, reason: str, request: HttpRequest | None) -> tuple[str, str]:
    """The account's status after ``action``, and what happened ("" when nothing to add)."""
    if action == "block":
        return user_block(user=user, by=by, reason=reason, request=request).status, ""
    if action == "unblock":
        return user_unblock(user=user, by=by, request=request).status, ""
    if action == "force_logout":
        user_force_logout(user=user, by=by, request=request)
        return user.status, "signed out everywhere"
    sent = user_verification_resend(user=user, by=by, request=request)
    return user.status, "verification link sent" if sent else "already verified"
