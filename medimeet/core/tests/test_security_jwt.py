"""JWT tampering: forged, re-signed, confused and orphaned tokens are 401 with a stable code.

accounts/tests/test_api.py already covers: an expired access token (AUTH_003), a payload edited
under the original signature and `alg: none` (AUTH_004), a malformed or another user's `sid`
(AUTH_004), a blocked user's tokens (AUTH_005), reuse of a rotated refresh token and logout.
This module adds what an attacker tries next.
"""

from __future__ import annotations

import base64
import json
from datetime import timedelta

import jwt
import pytest
from django.conf import settings
from django.utils import timezone
from rest_framework.test import APIClient

from accounts.models import ApiSession, User
from accounts.tests.factories import UserFactory
from accounts.tokens import tokens_issue

pytestmark = pytest.mark.django_db

ME = "/api/v1/auth/me/"


def b64(data: dict) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).decode().rstrip("=")


def claims(token: str) -> dict:
    return jwt.decode(token, options={"verify_signature": False})


def get_me(token: str):
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
    return api.get(ME)


def code(response) -> str:
    return response.json()["error"]["code"]


@pytest.fixture
def victim():
    user = UserFactory(email="victim@example.com")
    session = ApiSession.objects.create(user=user, device_name="phone", expires_at=timezone.now() + timedelta(days=1))
    return {"user": user, "session": session, **tokens_issue(session=session)}


def test_the_genuine_token_works(victim):
    assert get_me(victim["access"]).status_code == 200


@pytest.mark.parametrize("alg", ["none", "None", "NONE", "nOnE"])
def test_an_unsigned_token_in_any_spelling_of_alg_none_is_auth_004(victim, alg):
    forged = f"{b64({'alg': alg, 'typ': 'JWT'})}.{b64(claims(victim['access']))}."

    response = get_me(forged)

    assert response.status_code == 401 and code(response) == "AUTH_004"


@pytest.mark.parametrize("alg", ["HS256", "HS384", "HS512"])
def test_a_token_signed_with_another_key_is_auth_004(victim, alg):
    forged = jwt.encode(claims(victim["access"]), "not-the-server-key-" * 4, algorithm=alg)

    response = get_me(forged)

    assert response.status_code == 401 and code(response) == "AUTH_004"


def test_a_token_signed_with_the_right_key_but_another_algorithm_is_auth_004(victim):
    """The server accepts HS256 only; HS512 under the same key is not a way around that."""
    forged = jwt.encode(claims(victim["access"]), settings.SIMPLE_JWT["SIGNING_KEY"], algorithm="HS512")

    response = get_me(forged)

    assert response.status_code == 401 and code(response) == "AUTH_004"


def test_the_refresh_token_is_not_an_access_token(victim):
    response = get_me(victim["refresh"])

    assert response.status_code == 401 and code(response) == "AUTH_004"


def test_an_access_token_with_another_users_id_under_the_original_signature_is_auth_004(victim):
    other = UserFactory()
    header, _, signature = victim["access"].split(".")
    forged = f"{header}.{b64(claims(victim['access']) | {'uid': str(other.public_id)})}.{signature}"

    response = get_me(forged)

    assert response.status_code == 401 and code(response) == "AUTH_004"


def test_a_deleted_users_tokens_are_auth_004(victim):
    User.objects.filter(pk=victim["user"].pk).delete()

    response = get_me(victim["access"])

    assert response.status_code == 401 and code(response) == "AUTH_004"


def test_a_deactivated_users_tokens_are_auth_004(victim):
    User.objects.filter(pk=victim["user"].pk).update(is_active=False)

    response = get_me(victim["access"])

    assert response.status_code == 401 and code(response) == "AUTH_004"


def test_a_blocked_users_refresh_token_cannot_mint_new_tokens(victim):
    User.objects.filter(pk=victim["user"].pk).update(status=User.Status.BLOCKED, blocked_reason="abuse", blocked_at=timezone.now())

    response = APIClient().post("/api/v1/auth/token/refresh/", {"refresh": victim["refresh"]}, format="json")

    assert response.status_code in (401, 403) and code(response) in ("AUTH_004", "AUTH_005")
    assert "access" not in response.json()


def test_a_validly_signed_token_without_a_session_is_auth_004(victim):
    """A token made outside a sign-in (no `sid`) is refused even though its signature is right."""
    from rest_framework_simplejwt.tokens import AccessToken

    response = get_me(str(AccessToken.for_user(victim["user"])))

    assert response.status_code == 401 and code(response) == "AUTH_004"


def test_an_expired_refresh_token_cannot_mint_new_tokens(victim):
    import time_machine

    with time_machine.travel(timezone.now() + settings.SIMPLE_JWT["REFRESH_TOKEN_LIFETIME"] + timedelta(minutes=1)):
        response = APIClient().post("/api/v1/auth/token/refresh/", {"refresh": victim["refresh"]}, format="json")

    assert response.status_code == 401 and code(response) in ("AUTH_003", "AUTH_004")


@pytest.mark.parametrize("header", ["Bearer", "Bearer ", "Bearer a.b", "Bearer a.b.c.d", "Bearer ....", "Token abc", "Bearer " + "A" * 5000])
def test_garbage_authorization_headers_are_a_clean_401(header):
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=header)

    response = api.get(ME)

    assert response.status_code == 401 and code(response) in ("AUTH_001", "AUTH_004")
