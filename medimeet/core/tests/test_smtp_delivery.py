"""Delivery over real SMTP: an aiosmtpd server started on 127.0.0.1 for each test, MediMeet's
SMTP backend pointed at it. A server that refuses is retried with backoff and, if it never
recovers, the message is marked failed with the server's answer — and kept, so staff can
resend it once the server is back."""

from __future__ import annotations

import email
import socket
from email import policy

import pytest
from aiosmtpd.controller import Controller

from accounts.tests.factories import UserFactory
from medimeet.core.models import Notification
from medimeet.core.notifications import Attachment, notify
from medimeet.core.notifications.services import notification_resend

from .notification_samples import cast, context_for

pytestmark = pytest.mark.django_db


class Mailbox:
    """An SMTP handler that refuses the first ``failures`` messages with 451, then accepts."""

    def __init__(self, failures: int = 0):
        self.failures = failures
        self.refused = 0
        self.received: list[email.message.EmailMessage] = []

    async def handle_DATA(self, server, session, envelope):
        if self.refused < self.failures:
            self.refused += 1
            return "451 4.3.0 Mail server temporarily unavailable"
        self.received.append(email.message_from_bytes(envelope.content, policy=policy.default))
        return "250 OK"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture
def smtp(settings):
    def start(failures: int = 0) -> Mailbox:
        mailbox = Mailbox(failures)
        controller = Controller(mailbox, hostname="127.0.0.1", port=free_port())
        controller.start()
        started.append(controller)
        settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
        settings.EMAIL_HOST, settings.EMAIL_PORT = "127.0.0.1", controller.port
        settings.EMAIL_USE_TLS = settings.EMAIL_USE_SSL = False
        settings.EMAIL_HOST_USER = settings.EMAIL_HOST_PASSWORD = ""
        return mailbox

    started: list[Controller] = []
    yield start
    for controller in started:
        controller.stop()


def send_receipt(django_capture_on_commit_callbacks) -> Notification:
    user, context = context_for("payment.receipt", cast())
    with django_capture_on_commit_callbacks(execute=True):
        [row] = notify(user=user, event="payment.receipt", context=context, attachments=[Attachment("MM-2026-000042.pdf", b"%PDF-1.4 receipt", "application/pdf")])
    row.refresh_from_db()
    return row


def test_a_message_reaches_the_smtp_server_with_both_parts_and_the_attachment(smtp, django_capture_on_commit_callbacks):
    mailbox = smtp()

    row = send_receipt(django_capture_on_commit_callbacks)

    assert (row.status, row.attempts, row.last_error) == ("sent", 1, "")
    [received] = mailbox.received
    assert received["To"] == "asha@example.com"
    assert received["Subject"] == "MediMeet receipt MM-2026-000042: ₹500.00 paid"
    assert received["Message-ID"] == row.provider_message_id
    assert received.get_body(("plain",)).get_content().startswith("Dear Asha Verma,")
    assert '<html lang="en">' in received.get_body(("html",)).get_content()
    [attachment] = received.iter_attachments()
    assert (attachment.get_filename(), attachment.get_content_type(), attachment.get_content()) == ("MM-2026-000042.pdf", "application/pdf", b"%PDF-1.4 receipt")


def test_a_refusing_server_is_retried_and_the_message_delivered_once(smtp, django_capture_on_commit_callbacks):
    mailbox = smtp(failures=2)

    row = send_receipt(django_capture_on_commit_callbacks)

    assert (row.status, row.attempts, row.last_error) == ("sent", 3, "")
    assert (mailbox.refused, len(mailbox.received)) == (2, 1)


def test_a_server_that_never_recovers_marks_the_message_failed_and_staff_can_resend_it(smtp, settings, django_capture_on_commit_callbacks):
    mailbox = smtp(failures=100)

    row = send_receipt(django_capture_on_commit_callbacks)

    assert (row.status, row.attempts) == ("failed", settings.NOTIFICATION_MAX_RETRIES + 1)
    assert row.last_error == "SMTPDataError: (451, b'4.3.0 Mail server temporarily unavailable')"
    assert mailbox.received == []

    mailbox.failures = 0  # the server is back: nothing was lost, staff resend it
    with django_capture_on_commit_callbacks(execute=True):
        copy = notification_resend(notification=row, by=UserFactory(role="staff", is_staff=True))
    copy.refresh_from_db()
    assert (copy.status, copy.resent_from_id) == ("sent", row.pk)
    [received] = mailbox.received
    assert [a.get_filename() for a in received.iter_attachments()] == ["MM-2026-000042.pdf"]


def test_no_server_listening_is_retried_then_failed(settings, django_capture_on_commit_callbacks):
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT, settings.EMAIL_TIMEOUT = "127.0.0.1", free_port(), 2  # nobody listens there

    row = send_receipt(django_capture_on_commit_callbacks)

    assert (row.status, row.attempts) == ("failed", settings.NOTIFICATION_MAX_RETRIES + 1)
    assert row.last_error.startswith("ConnectionRefusedError")
