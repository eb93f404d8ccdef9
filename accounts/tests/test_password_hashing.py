"""Passwords are stored with Argon2id; an account still on an older hash (PBKDF2) is moved to
Argon2 when its owner next signs in, on the web and through the API."""

from __future__ import annotations

import pytest
from django.contrib.auth.hashers import make_password
from rest_framework.test import APIClient

from medimeet.settings import base

from .factories import PASSWORD, UserFactory

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def production_hashers(settings):
    settings.PASSWORD_HASHERS = base.PASSWORD_HASHERS  # the test settings use a fast hasher


def test_a_new_password_is_stored_with_argon2id():
    user = UserFactory(password=PASSWORD)

    assert user.password.startswith("argon2$argon2id$")


@pytest.mark.parametrize("surface", ["web", "api"])
def test_an_older_pbkdf2_hash_is_upgraded_to_argon2_at_the_next_sign_in(client, surface):
    user = UserFactory(email="old@example.com")
    user.password = make_password(PASSWORD, hasher="pbkdf2_sha256")
    user.save(update_fields=["password"])

    if surface == "web":
        response = client.post("/accounts/login/", {"login": "old@example.com", "password": PASSWORD})
        assert response.status_code == 302
    else:
        response = APIClient().post("/api/v1/auth/login/", {"email": "old@example.com", "password": PASSWORD}, format="json")
        assert response.status_code == 200

    user.refresh_from_db()
    assert user.password.startswith("argon2$argon2id$")
    assert user.check_password(PASSWORD)


def test_a_wrong_password_does_not_touch_the_stored_hash():
    user = UserFactory(email="old@example.com")
    user.password = old = make_password(PASSWORD, hasher="pbkdf2_sha256")
    user.save(update_fields=["password"])

    response = APIClient().post("/api/v1/auth/login/", {"email": "old@example.com", "password": "not-it"}, format="json")

    user.refresh_from_db()
    assert response.status_code in {400, 401}
    assert user.password == old
