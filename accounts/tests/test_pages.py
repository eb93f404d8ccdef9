"""Web sign-in rules enforced on the server-rendered side (allauth + SessionPolicyMiddleware)."""

from __future__ import annotations

from datetime import timedelta

import pytest
import time_machine
from allauth.mfa.models import Authenticator
from django.test import Client
from django.utils import timezone

from accounts import services
from accounts.models import User
from medimeet.core.models import AuditEvent

from .factories import PASSWORD, DoctorFactory, StaffFactory, UserFactory

pytestmark = pytest.mark.django_db


def web_login(client: Client, email: str, password: str = PASSWORD):
    return client.post("/accounts/login/", {"login": email, "password": password})


def test_patient_signs_in_on_the_web_and_the_login_is_audited(client):
    user = UserFactory(email="p@example.com")

    response = web_login(client, "p@example.com")

    assert response.status_code == 302
    assert response["Location"] == "/account/"
    assert client.get("/account/").status_code == 200
    assert AuditEvent.objects.filter(action="auth.login", actor=user, metadata__channel="web").count() == 1


def test_blocked_user_cannot_sign_in_on_the_web(client):
    user = UserFactory(email="p@example.com")
    services.user_block(user=user, by=StaffFactory(), reason="Chargeback fraud")

    web_login(client, "p@example.com")

    assert client.get("/account/").status_code == 302
    assert "_auth_user_id" not in client.session


def test_blocking_signs_out_an_open_web_session(client):
    user = UserFactory(email="p@example.com")
    web_login(client, "p@example.com")
    assert client.get("/account/").status_code == 200

    services.user_block(user=user, by=StaffFactory(), reason="Abuse")

    assert client.get("/account/").status_code == 302


def test_idle_web_session_is_signed_out(client, settings):
    settings.SESSION_IDLE_TIMEOUT = 30 * 60
    UserFactory(email="p@example.com")
    with time_machine.travel(timezone.now(), tick=False) as traveller:
        web_login(client, "p@example.com")
        traveller.shift(timedelta(minutes=29))
        still_in = client.get("/account/")
        traveller.shift(timedelta(minutes=29))  # active 29 min ago: still fine
        still_in_after_activity = client.get("/account/")
        traveller.shift(timedelta(minutes=31))
        idle = client.get("/account/")

    assert still_in.status_code == 200
    assert still_in_after_activity.status_code == 200
    assert idle.status_code == 302
    assert idle["Location"].startswith("/accounts/login/")


def test_web_session_has_an_absolute_lifetime_even_when_active(client, settings):
    settings.SESSION_IDLE_TIMEOUT = 30 * 60
    settings.SESSION_ABSOLUTE_LIFETIME = 2 * 60 * 60
    UserFactory(email="p@example.com")
    statuses = []
    with time_machine.travel(timezone.now(), tick=False) as traveller:
        web_login(client, "p@example.com")
        for _ in range(5):  # active every 25 minutes, for 125 minutes
            traveller.shift(timedelta(minutes=25))
            statuses.append(client.get("/account/").status_code)

    assert statuses == [200, 200, 200, 200, 302]


def test_web_login_is_locked_after_repeated_failures(client, settings):
    UserFactory(email="p@example.com")
    for i in range(settings.LOGIN_LOCKOUT_ATTEMPTS):
        web_login(client, "p@example.com", f"wrong-{i}")

    response = web_login(client, "p@example.com")

    assert response.status_code in (200, 429)
    assert "_auth_user_id" not in client.session


def test_api_failures_count_towards_the_web_lockout(client, settings):
    from rest_framework.test import APIClient

    UserFactory(email="p@example.com")
    api = APIClient()
    for i in range(settings.LOGIN_LOCKOUT_ATTEMPTS):
        api.post("/api/v1/auth/login/", {"email": "p@example.com", "password": f"wrong-{i}"}, format="json")

    web_login(client, "p@example.com")

    assert "_auth_user_id" not in client.session


def test_staff_without_mfa_is_sent_to_set_it_up(client):
    StaffFactory(email="s@example.com")
    web_login(client, "s@example.com")

    admin = client.get("/admin/")
    dashboard = client.get("/account/")

    assert admin.status_code == 302 and admin["Location"] == "/accounts/2fa/totp/activate/"
    assert dashboard.status_code == 302
    # allauth asks for the password again before enrolling a second factor; our policy lets
    # the staff member through to those pages (and only those).
    activate = client.get("/accounts/2fa/totp/activate/")
    assert activate["Location"].startswith("/accounts/reauthenticate/")
    client.post("/accounts/reauthenticate/", {"password": PASSWORD})
    assert client.get("/accounts/2fa/totp/activate/").status_code == 200


def test_staff_with_mfa_reaches_the_admin(client):
    staff = StaffFactory(email="s@example.com", is_superuser=True)
    Authenticator.objects.create(user=staff, type=Authenticator.Type.TOTP, data={"secret": "unused"})
    client.force_login(staff)

    assert client.get("/admin/").status_code == 200


def test_doctor_mfa_is_optional_by_default(client):
    client.force_login(DoctorFactory())

    assert client.get("/account/").status_code == 200


def test_unverified_user_cannot_sign_in_on_the_web(client):
    UserFactory(email="p@example.com", verified=False)

    web_login(client, "p@example.com")

    assert "_auth_user_id" not in client.session


def test_profile_page_saves_encrypted_fields(client):
    user = UserFactory(email="p@example.com")
    client.force_login(user)

    response = client.post(
        "/account/profile/",
        {"first_name": "Ada", "last_name": "Lovelace", "timezone": "Europe/London", "language": "en", "phone": "+44 20 7946 0958", "allergies": "Latex"},
    )

    assert response.status_code == 302
    user.refresh_from_db()
    assert user.first_name == "Ada"
    assert user.patient_profile.allergies == "Latex"


def test_profile_page_shows_field_errors_and_saves_nothing(client):
    user = UserFactory(email="p@example.com", first_name="Old")
    client.force_login(user)

    response = client.post("/account/profile/", {"first_name": "New", "last_name": "X", "timezone": "Mars/Base", "language": "en", "phone": "nope"})

    assert response.status_code == 200
    assert set(response.context["form"].errors) == {"timezone", "phone"}
    user.refresh_from_db()
    assert user.first_name == "Old"


def test_devices_page_signs_out_another_session(client):
    from rest_framework.test import APIClient

    user = UserFactory(email="p@example.com")
    tokens = APIClient().post("/api/v1/auth/login/", {"email": "p@example.com", "password": PASSWORD}, format="json").json()
    web_login(client, "p@example.com")
    session_id = user.api_sessions.get().pk

    page = client.get("/account/devices/")
    revoke = client.post(f"/account/devices/{session_id}/revoke/")

    assert page.status_code == 200
    assert len(page.context["sessions"]) == 2
    assert revoke.status_code == 302
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Bearer {tokens['access']}")
    assert api.get("/api/v1/auth/me/").status_code == 401


def test_another_users_session_cannot_be_revoked_from_the_devices_page(client):
    UserFactory(email="a@example.com")
    bob = UserFactory(email="b@example.com")
    from rest_framework.test import APIClient

    APIClient().post("/api/v1/auth/login/", {"email": "b@example.com", "password": PASSWORD}, format="json")
    web_login(client, "a@example.com")

    client.post(f"/account/devices/{bob.api_sessions.get().pk}/revoke/")

    assert bob.api_sessions.get().revoked_at is None


def test_seed_demo_creates_sign_in_ready_accounts_and_is_idempotent():
    from django.core.management import call_command

    call_command("seed_demo")
    call_command("seed_demo")

    assert User.objects.filter(email__endswith="@medimeet.local").count() == 12  # admin, 6 role staff, 3 doctors, 2 patients
    assert User.objects.get(email="admin@medimeet.local").is_superuser
    finance = User.objects.get(email="finance@medimeet.local")
    assert (finance.is_staff, finance.is_superuser, list(finance.groups.values_list("name", flat=True))) == (True, False, ["finance"])
    assert User.objects.get(email="patient@medimeet.local").check_password("medimeet-demo-2026")


def test_social_login_buttons_appear_only_when_keys_are_configured(client, settings):
    without = client.get("/accounts/login/").content.decode()
    settings.SOCIALACCOUNT_PROVIDERS = {
        "google": {"APPS": [{"client_id": "id.apps.googleusercontent.com", "secret": "s"}], "SCOPE": ["profile", "email"]},
    }
    with_google = client.get("/accounts/login/").content.decode()

    assert "/accounts/google/login/" not in without
    assert "/accounts/google/login/" in with_google
    assert "/accounts/facebook/login/" not in with_google


@pytest.mark.parametrize("path", ["/accounts/google/login/", "/accounts/google/login/callback/", "/accounts/google/login/token/", "/accounts/facebook/login/"])
def test_sign_in_urls_of_a_provider_without_keys_are_not_found_not_a_server_error(client, path):
    assert client.get(path).status_code == 404
    assert client.post(path).status_code in (403, 404)  # no CSRF token: refused before or by the view
