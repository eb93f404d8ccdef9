"""Accounts API: registration, verification, sign-in, tokens, sessions, profile, staff actions."""

from __future__ import annotations

import base64
import io
import json
import os
import re
import uuid
from datetime import timedelta

import pytest
import time_machine
from allauth.account.models import EmailAddress
from allauth.mfa.recovery_codes.internal.auth import RecoveryCodes
from allauth.mfa.totp.internal.auth import TOTP, generate_totp_secret
from django.core import mail
from django.db import connection
from django.test import override_settings
from django.utils import timezone
from PIL import Image
from rest_framework.test import APIClient

from accounts.models import ApiSession, PatientProfile, User
from medimeet.core import roles
from medimeet.core.models import AuditEvent
from medimeet.core.tests.browser import totp_code

from .factories import PASSWORD, StaffFactory, UserFactory, staff_member

pytestmark = pytest.mark.django_db

STRONG = "Vivid-Harbor-2026!"


@pytest.fixture
def client() -> APIClient:
    return APIClient()


def login(client: APIClient, email: str, password: str = PASSWORD, **extra) -> dict:
    response = client.post("/api/v1/auth/login/", {"email": email, "password": password, **extra}, format="json")
    assert response.status_code == 200, response.content
    return response.json()


def bearer(access: str) -> APIClient:
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Bearer {access}")
    return api


def error_code(response) -> str:
    return response.json()["error"]["code"]


def jwt_claims(token: str) -> dict:
    payload = token.split(".")[1]
    return json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))




# --- Registration and verification -----------------------------------------------------------


def test_register_creates_unverified_patient_and_emails_a_verification_link(client, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(
            "/api/v1/auth/register/",
            {"email": "New.Person@Example.com", "password": STRONG, "first_name": "Nia", "last_name": "Long", "timezone": "Asia/Kolkata"},
            format="json",
        )

    assert response.status_code == 201
    body = response.json()
    assert body["email"] == "new.person@example.com"
    assert body["role"] == "patient"
    assert body["timezone"] == "Asia/Kolkata"
    assert body["profile"]["phone"] == ""
    user = User.objects.get(email="new.person@example.com")
    assert PatientProfile.objects.filter(user=user).exists()
    assert EmailAddress.objects.get(user=user).verified is False
    assert len(mail.outbox) == 1
    assert mail.outbox[0].to == ["new.person@example.com"]
    assert re.search(r"/accounts/confirm-email/[^/\s]+/", mail.outbox[0].body)


def test_register_with_an_existing_email_is_refused_with_user_002_and_creates_nothing(client):
    UserFactory(email="taken@example.com")

    response = client.post("/api/v1/auth/register/", {"email": "TAKEN@example.com", "password": STRONG}, format="json")

    assert response.status_code == 409
    assert response.json()["error"]["code"] == "USER_002"
    assert "email" in response.json()["error"]["fields"]
    assert User.objects.filter(email="taken@example.com").count() == 1
    assert mail.outbox == []


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ({"email": "a@example.com", "password": "short"}, "password"),
        ({"email": "a@example.com", "password": "1234567890123"}, "password"),
        ({"email": "not-an-email", "password": STRONG}, "email"),
        ({"password": STRONG}, "email"),
        ({"email": "a@example.com", "password": STRONG, "timezone": "Mars/Olympus"}, "timezone"),
        ({"email": "a@example.com", "password": STRONG, "language": "xx"}, "language"),
    ],
)
def test_register_rejects_bad_input_with_field_messages(client, payload, field):
    response = client.post("/api/v1/auth/register/", payload, format="json")

    assert response.status_code == 400
    assert response.json()["error"]["code"] == "REQ_001"
    assert field in response.json()["error"]["fields"]
    assert User.objects.count() == 0


def test_malformed_json_gets_the_error_envelope(client):
    response = client.post("/api/v1/auth/register/", "{not json", content_type="application/json")

    assert response.status_code == 400
    assert error_code(response) == "REQ_006"


def test_verify_email_with_the_emailed_key_then_login_works(client, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        client.post("/api/v1/auth/register/", {"email": "v@example.com", "password": STRONG}, format="json")
    key = re.search(r"/accounts/confirm-email/([^/\s]+)/", mail.outbox[0].body).group(1)

    before = client.post("/api/v1/auth/login/", {"email": "v@example.com", "password": STRONG}, format="json")
    response = client.post("/api/v1/auth/verify-email/", {"key": key}, format="json")
    after = client.post("/api/v1/auth/login/", {"email": "v@example.com", "password": STRONG}, format="json")

    assert before.status_code == 403 and error_code(before) == "AUTH_006"
    assert response.status_code == 200
    assert EmailAddress.objects.get(email="v@example.com").verified is True
    assert after.status_code == 200 and after.json()["mfa_required"] is False


def test_verify_email_with_a_bad_key_is_auth_011(client):
    response = client.post("/api/v1/auth/verify-email/", {"key": "forged:key"}, format="json")

    assert response.status_code == 400
    assert error_code(response) == "AUTH_011"


# --- Login, lockout, throttling ---------------------------------------------------------------


def test_login_returns_tokens_without_personal_data_and_records_the_device(client):
    user = UserFactory(email="p@example.com")

    tokens = login(client, "p@example.com", device_name="Pixel 9", HTTP_USER_AGENT="okhttp/4.12")

    for token in (tokens["access"], tokens["refresh"]):
        claims = jwt_claims(token)
        assert set(claims) == {"token_type", "exp", "iat", "jti", "uid", "sid"}
        assert claims["uid"] == str(user.public_id)
        assert "p@example.com" not in json.dumps(claims)
    session = ApiSession.objects.get(user=user)
    assert str(session.id) == jwt_claims(tokens["access"])["sid"]
    assert session.device_name == "Pixel 9"
    assert session.ip_address == "127.0.0.1"
    assert AuditEvent.objects.filter(action="auth.login", actor=user).count() == 1


def test_wrong_password_is_auth_002(client):
    UserFactory(email="p@example.com")

    response = client.post("/api/v1/auth/login/", {"email": "p@example.com", "password": "wrong-password"}, format="json")

    assert response.status_code == 401
    assert error_code(response) == "AUTH_002"
    assert ApiSession.objects.count() == 0


def test_unknown_email_is_the_same_auth_002(client):
    response = client.post("/api/v1/auth/login/", {"email": "nobody@example.com", "password": "wrong-password"}, format="json")

    assert response.status_code == 401
    assert error_code(response) == "AUTH_002"


def test_blocked_user_cannot_log_in(client):
    staff = StaffFactory()
    user = UserFactory(email="p@example.com")
    from accounts import services

    services.user_block(user=user, by=staff, reason="Fraudulent bookings")

    response = client.post("/api/v1/auth/login/", {"email": "p@example.com", "password": PASSWORD}, format="json")

    assert response.status_code == 403
    assert error_code(response) == "AUTH_005"
    assert ApiSession.objects.filter(user=user).count() == 0


@override_settings(LOGIN_LOCKOUT_ATTEMPTS=5)
def test_repeated_failures_lock_the_account_even_for_the_right_password(client):
    UserFactory(email="p@example.com")
    failures = [
        client.post("/api/v1/auth/login/", {"email": "p@example.com", "password": f"wrong-{i}"}, format="json").status_code
        for i in range(5)
    ]

    locked = client.post("/api/v1/auth/login/", {"email": "p@example.com", "password": PASSWORD}, format="json")

    assert failures == [401] * 5
    assert locked.status_code == 429
    assert error_code(locked) == "AUTH_007"
    assert int(locked["Retry-After"]) > 0
    assert ApiSession.objects.count() == 0


def test_login_endpoint_is_throttled_and_says_its_limit(client, settings):
    settings.REST_FRAMEWORK = {**settings.REST_FRAMEWORK, "DEFAULT_THROTTLE_RATES": {**settings.REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"], "login": "3/min"}}
    UserFactory(email="p@example.com")

    responses = [client.post("/api/v1/auth/login/", {"email": "p@example.com", "password": PASSWORD}, format="json") for _ in range(4)]

    assert [r.status_code for r in responses] == [200, 200, 200, 429]
    assert [r["X-RateLimit-Remaining"] for r in responses[:3]] == ["2", "1", "0"]
    assert responses[0]["X-RateLimit-Limit"] == "3"
    assert error_code(responses[3]) == "REQ_002"
    assert int(responses[3]["Retry-After"]) > 0


# --- Tokens -----------------------------------------------------------------------------------


def test_me_requires_authentication_with_auth_001(client):
    response = client.get("/api/v1/auth/me/")

    assert response.status_code == 401
    assert error_code(response) == "AUTH_001"


def test_expired_access_token_is_auth_003(client):
    UserFactory(email="p@example.com")
    tokens = login(client, "p@example.com")

    with time_machine.travel(timezone.now() + timedelta(hours=1)):
        response = bearer(tokens["access"]).get("/api/v1/auth/me/")

    assert response.status_code == 401
    assert error_code(response) == "AUTH_003"


def test_tampered_token_is_auth_004(client):
    UserFactory(email="p@example.com")
    tokens = login(client, "p@example.com")
    header, payload, signature = tokens["access"].split(".")
    forged_claims = jwt_claims(tokens["access"]) | {"uid": "00000000-0000-0000-0000-000000000000"}
    forged_payload = base64.urlsafe_b64encode(json.dumps(forged_claims).encode()).decode().rstrip("=")

    response = bearer(f"{header}.{forged_payload}.{signature}").get("/api/v1/auth/me/")
    none_alg = base64.urlsafe_b64encode(b'{"alg":"none","typ":"JWT"}').decode().rstrip("=")
    unsigned = bearer(f"{none_alg}.{payload}.").get("/api/v1/auth/me/")

    assert response.status_code == 401 and error_code(response) == "AUTH_004"
    assert unsigned.status_code == 401 and error_code(unsigned) == "AUTH_004"


def test_refresh_rotates_and_a_reused_refresh_token_revokes_the_session(client):
    UserFactory(email="p@example.com")
    first = login(client, "p@example.com")

    rotated = client.post("/api/v1/auth/token/refresh/", {"refresh": first["refresh"]}, format="json")
    replay = client.post("/api/v1/auth/token/refresh/", {"refresh": first["refresh"]}, format="json")
    after_replay = client.post("/api/v1/auth/token/refresh/", {"refresh": rotated.json()["refresh"]}, format="json")

    assert rotated.status_code == 200
    assert rotated.json()["refresh"] != first["refresh"]
    assert jwt_claims(rotated.json()["access"])["sid"] == jwt_claims(first["access"])["sid"]
    assert replay.status_code == 401 and error_code(replay) == "AUTH_004"
    # Reuse of a rotated token means it leaked: the whole family is dead now.
    assert after_replay.status_code == 401 and error_code(after_replay) == "AUTH_004"
    assert ApiSession.objects.get().revoked_reason == "refresh_reuse"


def test_logout_blacklists_the_refresh_token_and_kills_its_access_token(client):
    UserFactory(email="p@example.com")
    tokens = login(client, "p@example.com")
    api = bearer(tokens["access"])

    response = api.post("/api/v1/auth/logout/", {"refresh": tokens["refresh"]}, format="json")

    assert response.status_code == 204
    assert error_code(api.get("/api/v1/auth/me/")) == "AUTH_004"
    refreshed = client.post("/api/v1/auth/token/refresh/", {"refresh": tokens["refresh"]}, format="json")
    assert refreshed.status_code == 401 and error_code(refreshed) == "AUTH_004"


def test_logout_with_someone_elses_refresh_token_changes_nothing(client):
    UserFactory(email="a@example.com")
    UserFactory(email="b@example.com")
    alice = login(client, "a@example.com")
    bob = login(client, "b@example.com")

    response = bearer(alice["access"]).post("/api/v1/auth/logout/", {"refresh": bob["refresh"]}, format="json")

    assert response.status_code == 401
    assert error_code(response) == "AUTH_004"
    assert bearer(bob["access"]).get("/api/v1/auth/me/").status_code == 200
    assert client.post("/api/v1/auth/token/refresh/", {"refresh": bob["refresh"]}, format="json").status_code == 200


# --- Sessions and devices ---------------------------------------------------------------------


def test_user_lists_their_devices_and_revoking_one_kills_its_tokens(client):
    UserFactory(email="p@example.com")
    phone = login(client, "p@example.com", device_name="Phone")
    tablet = login(client, "p@example.com", device_name="Tablet")
    api = bearer(phone["access"])

    listed = api.get("/api/v1/auth/sessions/").json()
    tablet_sid = jwt_claims(tablet["access"])["sid"]
    revoked = api.delete(f"/api/v1/auth/sessions/{tablet_sid}/")

    assert sorted(s["device"] for s in listed) == ["Phone", "Tablet"]
    assert [s["current"] for s in listed if s["device"] == "Phone"] == [True]
    assert revoked.status_code == 204
    assert error_code(bearer(tablet["access"]).get("/api/v1/auth/me/")) == "AUTH_004"
    assert client.post("/api/v1/auth/token/refresh/", {"refresh": tablet["refresh"]}, format="json").status_code == 401
    assert api.get("/api/v1/auth/me/").status_code == 200


def test_user_cannot_revoke_another_users_session(client):
    UserFactory(email="a@example.com")
    UserFactory(email="b@example.com")
    alice = login(client, "a@example.com")
    bob = login(client, "b@example.com")

    response = bearer(alice["access"]).delete(f"/api/v1/auth/sessions/{jwt_claims(bob['access'])['sid']}/")

    assert response.status_code == 404
    assert error_code(response) == "USER_004"
    assert bearer(bob["access"]).get("/api/v1/auth/me/").status_code == 200


def test_revoke_all_keeps_only_the_current_device(client):
    UserFactory(email="p@example.com")
    tokens = [login(client, "p@example.com", device_name=f"D{i}") for i in range(3)]

    response = bearer(tokens[0]["access"]).post("/api/v1/auth/sessions/revoke-all/", {}, format="json")

    assert response.status_code == 204
    assert [bearer(t["access"]).get("/api/v1/auth/me/").status_code for t in tokens] == [200, 401, 401]


def test_staff_force_logout_ends_every_token_and_web_session(client):
    staff = staff_member(roles.SUPPORT)
    user = UserFactory(email="p@example.com")
    tokens = login(client, "p@example.com")
    web = APIClient()
    web.force_login(user)
    from allauth.usersessions.models import UserSession

    web.get("/account/")  # creates the tracked web session
    assert UserSession.objects.filter(user=user).count() == 1
    staff_api = APIClient()
    staff_api.force_authenticate(staff)

    response = staff_api.post(f"/api/v1/admin/users/{user.public_id}/force-logout/")

    assert response.status_code == 200
    assert error_code(bearer(tokens["access"]).get("/api/v1/auth/me/")) == "AUTH_004"
    assert client.post("/api/v1/auth/token/refresh/", {"refresh": tokens["refresh"]}, format="json").status_code == 401
    assert UserSession.objects.filter(user=user).count() == 0
    assert web.get("/account/").status_code == 302
    assert AuditEvent.objects.filter(action="account.force_logout", actor=staff, target_id=str(user.pk)).count() == 1


def test_blocking_rejects_existing_tokens_with_auth_005(client):
    staff = staff_member(roles.SUPPORT)
    user = UserFactory(email="p@example.com")
    tokens = login(client, "p@example.com")
    staff_api = APIClient()
    staff_api.force_authenticate(staff)

    response = staff_api.post(f"/api/v1/admin/users/{user.public_id}/block/", {"reason": "Abusive messages"}, format="json")

    assert response.status_code == 200
    assert response.json()["status"] == "blocked"
    user.refresh_from_db()
    assert user.blocked_reason == "Abusive messages" and user.blocked_at is not None
    me = bearer(tokens["access"]).get("/api/v1/auth/me/")
    assert me.status_code == 401 and error_code(me) in {"AUTH_004", "AUTH_005"}


def test_block_without_reason_is_refused_and_changes_nothing(client):
    staff = staff_member(roles.SUPPORT)
    user = UserFactory()
    staff_api = APIClient()
    staff_api.force_authenticate(staff)

    response = staff_api.post(f"/api/v1/admin/users/{user.public_id}/block/", {"reason": ""}, format="json")

    assert response.status_code == 400
    assert "reason" in response.json()["error"]["fields"]
    user.refresh_from_db()
    assert user.status == User.Status.ACTIVE


@pytest.mark.parametrize("role", ["patient", "doctor"])
def test_non_staff_cannot_use_staff_endpoints(client, role):
    actor = UserFactory(role=role)
    victim = UserFactory(email="victim@example.com")
    victim_tokens = login(client, "victim@example.com")
    api = APIClient()
    api.force_authenticate(actor)

    responses = [
        api.post(f"/api/v1/admin/users/{victim.public_id}/force-logout/"),
        api.post(f"/api/v1/admin/users/{victim.public_id}/block/", {"reason": "x"}, format="json"),
    ]

    assert [r.status_code for r in responses] == [403, 403]
    assert {error_code(r) for r in responses} == {"AUTH_010"}
    victim.refresh_from_db()
    assert victim.status == User.Status.ACTIVE
    assert bearer(victim_tokens["access"]).get("/api/v1/auth/me/").status_code == 200
    assert not AuditEvent.objects.filter(action__in=["account.force_logout", "account.blocked"]).exists()


def test_anonymous_cannot_use_staff_endpoints(client):
    victim = UserFactory()

    response = client.post(f"/api/v1/admin/users/{victim.public_id}/force-logout/")

    assert response.status_code == 401
    assert error_code(response) == "AUTH_001"


# --- Profile ----------------------------------------------------------------------------------


def test_patient_updates_profile_and_phi_is_encrypted_in_the_database(client):
    user = UserFactory(email="p@example.com")
    api = bearer(login(client, "p@example.com")["access"])

    response = api.patch(
        "/api/v1/auth/me/",
        {"first_name": "Ada", "phone": "+44 20 7946 0958", "date_of_birth": "1990-04-01", "allergies": "Penicillin", "address": "1 Baker Street"},
        format="json",
    )

    assert response.status_code == 200
    assert response.json()["first_name"] == "Ada"
    assert response.json()["profile"]["allergies"] == "Penicillin"
    assert response.json()["profile"]["date_of_birth"] == "1990-04-01"
    with connection.cursor() as cursor:
        cursor.execute("SELECT phone, date_of_birth, allergies, address FROM accounts_patientprofile WHERE user_id = %s", [user.pk])
        raw = cursor.fetchone()
    assert all(value.startswith("gAAAAA") for value in raw)
    assert not any(secret in "".join(raw) for secret in ("7946", "1990", "Penicillin", "Baker"))
    profile = PatientProfile.objects.get(user=user)
    assert profile.phone == "+44 20 7946 0958"
    event = AuditEvent.objects.get(action="profile.updated")
    assert "Penicillin" not in json.dumps(event.metadata)


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ({"phone": "call me maybe"}, "phone"),
        ({"date_of_birth": "2999-01-01"}, "date_of_birth"),
        ({"date_of_birth": "yesterday"}, "date_of_birth"),
        ({"timezone": "Nowhere/Land"}, "timezone"),
        ({"email": "new@example.com"}, "email"),
        ({"role": "staff"}, "role"),
        ({"sex": "robot"}, "sex"),
    ],
)
def test_profile_update_rejects_bad_or_forbidden_fields_and_changes_nothing(client, payload, field):
    user = UserFactory(email="p@example.com")
    api = bearer(login(client, "p@example.com")["access"])

    response = api.patch("/api/v1/auth/me/", payload, format="json")

    assert response.status_code == 400
    assert error_code(response) == "REQ_001"
    assert field in response.json()["error"]["fields"]
    user.refresh_from_db()
    assert (user.email, user.role, user.timezone) == ("p@example.com", "patient", "Europe/London")


def png_bytes(size=(600, 400), color=(10, 120, 140)) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", size, color).save(buffer, format="PNG")
    return buffer.getvalue()


def upload(name: str, content: bytes, content_type: str):
    from django.core.files.uploadedfile import SimpleUploadedFile

    return SimpleUploadedFile(name, content, content_type=content_type)


def test_picture_upload_stores_a_resized_image_and_a_thumbnail(client):
    user = UserFactory(email="p@example.com")
    api = bearer(login(client, "p@example.com")["access"])

    response = api.post("/api/v1/auth/me/picture/", {"picture": upload("me.png", png_bytes(), "image/png")}, format="multipart")

    assert response.status_code == 200
    user.refresh_from_db()
    with Image.open(user.picture_thumbnail) as thumb:
        assert thumb.size == (128, 128)
        assert thumb.format == "JPEG"
    with Image.open(user.picture) as picture:
        assert picture.size == (400, 400)  # centre-cropped square of the 600x400 upload, not upscaled
    assert response.json()["picture_thumbnail"].endswith(".jpg")


@pytest.mark.parametrize(
    ("name", "content", "content_type"),
    [
        ("evil.png", b"MZ\x90\x00 this is a renamed executable", "image/png"),
        ("doc.jpg", b"%PDF-1.7 not an image", "image/jpeg"),
        ("anim.gif", b"GIF89a" + b"\x00" * 100, "image/gif"),
    ],
)
def test_picture_upload_refuses_files_that_are_not_images_and_stores_nothing(client, name, content, content_type):
    user = UserFactory(email="p@example.com")
    api = bearer(login(client, "p@example.com")["access"])

    response = api.post("/api/v1/auth/me/picture/", {"picture": upload(name, content, content_type)}, format="multipart")

    assert response.status_code == 400
    assert error_code(response) == "USER_003"
    assert "picture" in response.json()["error"]["fields"]
    user.refresh_from_db()
    assert not user.picture and not user.picture_thumbnail


@override_settings(PROFILE_PICTURE_MAX_BYTES=10_000)
def test_picture_upload_refuses_oversized_files(client):
    user = UserFactory(email="p@example.com")
    api = bearer(login(client, "p@example.com")["access"])
    noisy = io.BytesIO()
    Image.frombytes("RGB", (100, 100), os.urandom(30_000)).save(noisy, format="PNG")  # incompressible: ~30 kB
    assert len(noisy.getvalue()) > 10_000

    response = api.post("/api/v1/auth/me/picture/", {"picture": upload("big.png", noisy.getvalue(), "image/png")}, format="multipart")

    assert response.status_code == 400
    assert error_code(response) == "USER_003"
    user.refresh_from_db()
    assert not user.picture


# --- Passwords --------------------------------------------------------------------------------


def test_password_reset_by_api_sets_the_new_password_and_ends_old_sessions(client, django_capture_on_commit_callbacks):
    user = UserFactory(email="p@example.com")
    old = login(client, "p@example.com")

    with django_capture_on_commit_callbacks(execute=True):
        requested = client.post("/api/v1/auth/password/reset/", {"email": "p@example.com"}, format="json")
    key = re.search(r"/accounts/password/reset/key/([^/\s]+)/", mail.outbox[-1].body).group(1)
    confirmed = client.post("/api/v1/auth/password/reset/confirm/", {"key": key, "password": STRONG}, format="json")
    reused = client.post("/api/v1/auth/password/reset/confirm/", {"key": key, "password": "Another-Strong-Pass-7"}, format="json")

    assert requested.status_code == 202
    assert confirmed.status_code == 200
    assert reused.status_code == 400 and error_code(reused) == "AUTH_011"
    user.refresh_from_db()
    assert user.check_password(STRONG)
    assert bearer(old["access"]).get("/api/v1/auth/me/").status_code == 401
    assert login(client, "p@example.com", STRONG)["mfa_required"] is False


def test_password_reset_for_unknown_email_answers_the_same(client):
    response = client.post("/api/v1/auth/password/reset/", {"email": "ghost@example.com"}, format="json")

    assert response.status_code == 202


def test_password_reset_confirm_with_weak_password_keeps_the_old_one(client, django_capture_on_commit_callbacks):
    user = UserFactory(email="p@example.com")
    with django_capture_on_commit_callbacks(execute=True):
        client.post("/api/v1/auth/password/reset/", {"email": "p@example.com"}, format="json")
    key = re.search(r"/accounts/password/reset/key/([^/\s]+)/", mail.outbox[-1].body).group(1)

    response = client.post("/api/v1/auth/password/reset/confirm/", {"key": key, "password": "password"}, format="json")

    assert response.status_code == 400
    assert "password" in response.json()["error"]["fields"]
    user.refresh_from_db()
    assert user.check_password(PASSWORD)


@pytest.mark.parametrize("key", ["-3148280", "-", "", "abc-", "0-x", "zzzzzzzzzzzzzz-token", "\u00fc-\u00fc"])
def test_password_reset_confirm_with_a_malformed_key_is_auth_011(client, key):
    # API fuzzing found "-3148280" (no user part) answered with a 500 from inside allauth's form.
    user = UserFactory(email="p@example.com")

    response = client.post("/api/v1/auth/password/reset/confirm/", {"key": key, "password": STRONG}, format="json")

    assert response.status_code == 400
    assert error_code(response) in {"AUTH_011", "REQ_001"}
    user.refresh_from_db()
    assert user.check_password(PASSWORD)


def test_password_change_needs_the_current_password(client):
    user = UserFactory(email="p@example.com")
    api = bearer(login(client, "p@example.com")["access"])

    wrong = api.post("/api/v1/auth/password/change/", {"current_password": "nope", "new_password": STRONG}, format="json")
    right = api.post("/api/v1/auth/password/change/", {"current_password": PASSWORD, "new_password": STRONG}, format="json")

    assert wrong.status_code == 400 and error_code(wrong) == "AUTH_012"
    assert right.status_code == 200
    user.refresh_from_db()
    assert user.check_password(STRONG)


# --- Two-factor authentication ----------------------------------------------------------------


def test_login_with_totp_enabled_needs_the_second_factor(client):
    user = UserFactory(email="p@example.com")
    secret = generate_totp_secret()
    TOTP.activate(user, secret)

    first = login(client, "p@example.com")
    wrong = client.post("/api/v1/auth/login/mfa/", {"mfa_token": first["mfa_token"], "code": "000000"}, format="json")
    right = client.post("/api/v1/auth/login/mfa/", {"mfa_token": first["mfa_token"], "code": totp_code(secret)}, format="json")

    assert first["mfa_required"] is True and "access" not in first
    assert ApiSession.objects.filter(user=user).count() == 1  # only after the right code
    assert wrong.status_code == 401 and error_code(wrong) == "AUTH_008"
    assert right.status_code == 200
    assert bearer(right.json()["access"]).get("/api/v1/auth/me/").json()["mfa_enabled"] is True


def test_recovery_code_completes_login_once(client):
    user = UserFactory(email="p@example.com")
    TOTP.activate(user, generate_totp_secret())
    code = RecoveryCodes.activate(user).get_unused_codes()[0]

    first = client.post("/api/v1/auth/login/mfa/", {"mfa_token": login(client, "p@example.com")["mfa_token"], "code": code}, format="json")
    again = client.post("/api/v1/auth/login/mfa/", {"mfa_token": login(client, "p@example.com")["mfa_token"], "code": code}, format="json")

    assert first.status_code == 200
    assert again.status_code == 401 and error_code(again) == "AUTH_008"


def test_mfa_challenge_token_expires(client):
    user = UserFactory(email="p@example.com")
    secret = generate_totp_secret()
    TOTP.activate(user, secret)
    challenge = login(client, "p@example.com")["mfa_token"]

    with time_machine.travel(timezone.now() + timedelta(minutes=10)):
        response = client.post("/api/v1/auth/login/mfa/", {"mfa_token": challenge, "code": totp_code(secret)}, format="json")

    assert response.status_code == 401
    assert error_code(response) == "AUTH_003"


def test_staff_without_mfa_cannot_get_api_tokens(client):
    StaffFactory(email="staff@example.com")

    response = client.post("/api/v1/auth/login/", {"email": "staff@example.com", "password": PASSWORD}, format="json")

    assert response.status_code == 403
    assert error_code(response) == "AUTH_009"
    assert ApiSession.objects.count() == 0


@override_settings(MFA_REQUIRED_FOR_DOCTORS=True)
def test_doctors_need_mfa_when_the_setting_says_so(client):
    UserFactory(email="doc@example.com", role="doctor")

    response = client.post("/api/v1/auth/login/", {"email": "doc@example.com", "password": PASSWORD}, format="json")

    assert error_code(response) == "AUTH_009"


# --- API conventions --------------------------------------------------------------------------


def test_unknown_api_path_gets_the_json_envelope(client):
    response = client.get("/api/v1/does-not-exist/")

    assert response.status_code == 404
    assert response.json()["error"]["code"] == "REQ_004"


def test_wrong_method_gets_the_json_envelope(client):
    response = client.get("/api/v1/auth/login/")

    assert response.status_code == 405
    assert error_code(response) == "REQ_003"


def test_me_costs_a_constant_number_of_queries(client, django_assert_max_num_queries):
    UserFactory(email="p@example.com")
    api = bearer(login(client, "p@example.com")["access"])

    with django_assert_max_num_queries(3):
        response = api.get("/api/v1/auth/me/")

    assert response.status_code == 200


def test_a_validly_signed_token_with_a_malformed_session_claim_is_auth_004(client):
    from rest_framework_simplejwt.tokens import AccessToken

    user = UserFactory(email="p@example.com")
    token = AccessToken.for_user(user)
    token["sid"] = "not-a-uuid"

    response = bearer(str(token)).get("/api/v1/auth/me/")

    assert response.status_code == 401
    assert error_code(response) == "AUTH_004"


def test_a_validly_signed_token_naming_another_users_session_is_auth_004(client):
    from rest_framework_simplejwt.tokens import AccessToken

    UserFactory(email="p@example.com")
    mallory = UserFactory(email="m@example.com")
    login(client, "p@example.com")
    victims_session = ApiSession.objects.get(user__email="p@example.com")
    token = AccessToken.for_user(mallory)
    token["sid"] = str(victims_session.pk)

    response = bearer(str(token)).get("/api/v1/auth/me/")

    assert response.status_code == 401
    assert error_code(response) == "AUTH_004"


def test_session_read_in_sql_gives_the_orm_s_session_and_whole_user():
    from accounts.tokens import session_with_user

    user = UserFactory(email="p@example.com", timezone="Asia/Kolkata")
    live = ApiSession.objects.create(user=user, device_name="Pixel", expires_at=timezone.now() + timedelta(days=1))
    revoked = ApiSession.objects.create(user=user, expires_at=timezone.now() + timedelta(days=1), revoked_at=timezone.now())
    expired = ApiSession.objects.create(user=user, expires_at=timezone.now() - timedelta(seconds=1))

    found = {session.pk: session_with_user(session.pk) for session in (live, revoked, expired)}

    def fields(instance) -> dict:
        return {f.attname: getattr(instance, f.attname) for f in type(instance)._meta.concrete_fields}

    for session in (live, revoked, expired):
        orm = ApiSession.objects.select_related("user").get(pk=session.pk)
        got = found[session.pk]
        assert fields(got) == fields(orm) and fields(got.user) == fields(orm.user)
        assert got.get_deferred_fields() == set() and got.user.get_deferred_fields() == set()
    assert [found[s.pk].is_active for s in (live, revoked, expired)] == [True, False, False]
    assert found[live.pk].device_name == "Pixel" and found[live.pk].user.timezone == "Asia/Kolkata"
    assert session_with_user(uuid.uuid4()) is None


def test_token_authentication_reads_the_session_and_its_user_by_primary_key_unordered(client):
    from django.test.utils import CaptureQueriesContext

    UserFactory(email="p@example.com")
    api = bearer(login(client, "p@example.com")["access"])

    with CaptureQueriesContext(connection) as captured:
        response = api.get("/api/v1/auth/me/")

    assert response.status_code == 200
    auth_sql = captured.captured_queries[0]["sql"]
    assert "FROM accounts_apisession s JOIN accounts_user u ON u.id = s.user_id WHERE s.id = " in auth_sql
    assert "ORDER BY" not in auth_sql and "LIMIT" not in auth_sql
    assert len(captured.captured_queries) == 2  # the session with its user, then the profile
