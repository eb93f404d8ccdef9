"""CSRF: every server-rendered page refuses a POST without the token, and the API refuses unsafe
methods to a session-authenticated caller without it (DRF's SessionAuthentication).

A signed-in person (so a form view cannot answer with a redirect to the sign-in page first)
posts to every page URL of the project with `Client(enforce_csrf_checks=True)` and no token:
403 from Django's CSRF check, or the view is in `CSRF_EXEMPT` with the reason.
"""

from __future__ import annotations

import pytest
from django.test import Client
from rest_framework.authentication import SessionAuthentication

from accounts.tests.factories import UserFactory, staff_member
from doctors.tests.factories import DoctorProfileFactory
from medimeet.core.roles import SUPPORT

from .security import any_url, project_routes

pytestmark = pytest.mark.django_db

CSRF_EXEMPT = {
    # RFC 8058 one-click unsubscribe: mail clients POST without a CSRF token; the signed token in
    # the URL is the credential and unsubscribing is all it can do.
    "notifications:unsubscribe": "the signed token is the credential (RFC 8058 one-click)",
    # Google's ID-token sign-in (One Tap) posts cross-site from Google; allauth checks Google's
    # own double-submit cookie (g_csrf_token) and the signed ID token instead.
    "google_login_by_token": "allauth: Google's g_csrf_token double-submit check and the signed ID token",
}
# Webhooks (gateways, SMS provider) are API endpoints authenticated by the provider's signature,
# not by a session: the API walk below skips nothing for them, a signature failure is a 4xx.


def page_routes():
    return [r for r in project_routes() if not r.is_api and r.name not in CSRF_EXEMPT]


def test_every_csrf_exempt_page_is_justified():
    exempt = {r.name for r in project_routes() if not r.is_api and getattr(r.callback, "csrf_exempt", False)}
    assert exempt == set(CSRF_EXEMPT)


def signed_in(user) -> Client:
    client = Client(enforce_csrf_checks=True)
    client.force_login(user)
    return client


@pytest.fixture
def cast():
    return {"patient": UserFactory(), "doctor": DoctorProfileFactory().user, "staff": staff_member(SUPPORT)}


@pytest.mark.parametrize("who", ["patient", "doctor", "staff"])
def test_a_post_without_the_csrf_token_is_refused_on_every_page(cast, who):
    client = signed_in(cast[who])
    accepted = []
    for route in page_routes():
        url = any_url(route)
        response = client.post(url, {"anything": "x"})
        if response.status_code != 403 or b"CSRF" not in response.content:
            accepted.append(f"POST {url} ({route.name}): {response.status_code}")
    assert accepted == [], "\n".join(accepted)


def test_the_same_post_with_the_token_is_not_refused_by_the_csrf_check(cast):
    """The walk above is not vacuous: with the cookie and token, the sign-out form goes through."""
    client = signed_in(cast["patient"])
    client.get("/account/profile/")
    token = client.cookies["csrftoken"].value
    response = client.post("/accounts/logout/", {"csrfmiddlewaretoken": token})
    assert response.status_code == 302


def session_authenticated(route) -> bool:
    """Views that read the browser session (DRF's SessionAuthentication among their classes).
    The others (sign-in, registration, password reset, webhooks: `authentication_classes = []`)
    never act as the session's person, so a cross-site post gains nothing there."""
    view = getattr(route.callback, "cls", None)
    return view is None or any(issubclass(c, SessionAuthentication) for c in view.authentication_classes)


@pytest.mark.parametrize("who", ["patient", "doctor", "staff"])
def test_the_api_refuses_unsafe_methods_to_a_session_without_the_csrf_token(cast, who):
    client = signed_in(cast[who])
    accepted = []
    for route in project_routes():
        if not route.is_api or "schema" in route.route:
            continue
        url = any_url(route)
        for method in ("post", "put", "patch", "delete"):
            response = getattr(client, method)(url, {}, content_type="application/json")
            if response.status_code == 403 and response.json()["error"]["code"] == "SEC_001":
                continue
            if not session_authenticated(route):
                continue
            accepted.append(f"{method.upper()} {url} ({route.name}): {response.status_code} {response.content[:120]!r}")
    assert accepted == [], "\n".join(accepted)


def test_the_api_answers_the_same_request_with_the_csrf_token(cast):
    """The 403s above are the CSRF check's: with the token, the same session signs out."""
    client = signed_in(cast["patient"])
    client.get("/account/profile/")
    response = client.delete("/api/v1/auth/sessions/revoke-all/", {}, content_type="application/json", HTTP_X_CSRFTOKEN=client.cookies["csrftoken"].value)
    assert response.status_code != 403, response.content
