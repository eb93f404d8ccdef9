"""Account emails go through the notification layer: allauth's templates, tracked delivery,
the recipient's language; and a sign-in from a new device alerts the account's owner."""

from __future__ import annotations

import re

import pytest
from django.core import mail
from django.test import Client
from rest_framework.test import APIClient

from accounts.tests.factories import PASSWORD, UserFactory
from medimeet.core.models import Notification

pytestmark = pytest.mark.django_db

FIREFOX = "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:128.0) Gecko/20100101 Firefox/128.0"
IPHONE = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 Version/17.5 Mobile/15E148 Safari/604.1"


def test_the_verification_email_is_logged_and_delivered_with_an_html_part(django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        response = APIClient().post("/api/v1/auth/register/", {"email": "nia@example.com", "password": "Correct-Horse-Battery-9", "first_name": "Nia"}, format="json")
    assert response.status_code == 201

    [row] = Notification.objects.all()
    assert (row.event, row.channel, row.to, row.status, row.user.email) == ("account.email_verification", "email", "nia@example.com", "sent", "nia@example.com")
    [message] = mail.outbox
    link = re.search(r"http://\S+/accounts/confirm-email/[^/\s]+/", message.body).group(0)
    assert f'href="{link}"' in message.alternatives[0][0]
    assert message.extra_headers["X-MediMeet-Notification"] == str(row.public_id)


def test_a_password_reset_for_an_unknown_address_is_logged_without_a_user(django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        Client().post("/accounts/password/reset/", {"email": "nobody@example.com"})

    [row] = Notification.objects.all()
    assert (row.event, row.user, row.to, row.status) == ("account.notice", None, "nobody@example.com", "sent")
    assert "<!doctype html>" in mail.outbox[0].alternatives[0][0]


def test_a_sign_in_from_a_new_device_alerts_the_owner_and_a_known_device_does_not(django_capture_on_commit_callbacks):
    user = UserFactory(email="ravi@example.com", timezone="Asia/Kolkata")
    with django_capture_on_commit_callbacks(execute=True):
        first = APIClient(HTTP_USER_AGENT=FIREFOX).post("/api/v1/auth/login/", {"email": "ravi@example.com", "password": PASSWORD}, format="json")
        again = Client(HTTP_USER_AGENT=FIREFOX).post("/accounts/login/", {"login": "ravi@example.com", "password": PASSWORD})
    assert (first.status_code, again.status_code) == (200, 302)
    assert mail.outbox == []  # the first sign-in ever, then the same browser: no alert

    with django_capture_on_commit_callbacks(execute=True):
        response = Client(HTTP_USER_AGENT=IPHONE, REMOTE_ADDR="203.0.113.7").post("/accounts/login/", {"login": "ravi@example.com", "password": PASSWORD})

    assert response.status_code == 302
    [message] = mail.outbox
    assert (message.to, message.subject) == (["ravi@example.com"], "MediMeet: new sign-in to your account")
    assert "Device: Safari on iPhone" in message.body and "IP address: 203.0.113.7" in message.body
    assert "(Asia/Kolkata)" in message.body
    assert Notification.objects.get().event == "account.new_device_sign_in"
    assert Notification.objects.get().user == user
