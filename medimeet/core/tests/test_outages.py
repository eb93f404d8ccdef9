"""Backing services that go away (docs/testing.md, Fault injection): Redis down (the cache and
the broker at a port where nothing listens: real clients, real connection refusals), a database
error, a mail server down then up. The scripts under scripts/fault-* do the same against real
servers that are killed and restarted."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.core import mail
from django.db import OperationalError
from django.test import RequestFactory
from django.utils import timezone

from medimeet.core import cache as tolerant_cache
from medimeet.core.errors import api_exception_handler
from medimeet.core.models import FailedTask, Notification
from medimeet.core.notifications.services import RETRY, SENT, claim_lease, notification_deliver, notifications_requeue_stalled
from medimeet.core.views import server_error

from .notification_samples import cast, context_for
from .test_smtp_delivery import Mailbox, free_port

pytestmark = pytest.mark.django_db


@pytest.fixture
def redis_down(settings):
    """The cache (and the broker, for the tests that ask) pointed at a Redis that is not there."""
    url = f"redis://127.0.0.1:{free_port()}/0"
    tolerant_cache._down_until = 0.0
    settings.CACHES = {"default": {"BACKEND": "medimeet.core.cache.SharedPoolRedisCache", "LOCATION": url, "KEY_PREFIX": "outage"}}
    yield url
    tolerant_cache._down_until = 0.0


def queue_receipt(django_capture_on_commit_callbacks) -> Notification:
    from medimeet.core.notifications import notify

    user, context = context_for("payment.receipt", cast())
    with django_capture_on_commit_callbacks(execute=True):
        [row] = notify(user=user, event="payment.receipt", context=context)
    row.refresh_from_db()
    return row


# --- Redis down: the cache ----------------------------------------------------------------------


def test_with_redis_down_the_cache_misses_and_skips_writes_instead_of_failing(redis_down):
    from django.core.cache import cache

    assert cache.get("anything", "fallback") == "fallback"
    assert cache.set("k", 1) is None and cache.delete("k") is False
    assert cache.get_or_set("count", lambda: 42, 60) == 42
    assert tolerant_cache.cache_is_down()  # the next calls do not even try for a few seconds


def test_with_redis_down_counting_wrong_codes_is_refused_not_guessed(redis_down):
    from django.core.cache import cache

    assert cache.add("ratelimit-lock", 1, 60) is True  # allauth's rate-limit lock: taken, no 1 s wait and 429
    with pytest.raises(tolerant_cache.CacheUnavailable):
        cache.incr("mfa-attempts:abc")  # counting wrong codes has no safe answer: 503 SERVER_002


def test_with_redis_down_the_second_sign_in_factor_is_refused_with_503(redis_down, client):
    from django.core import signing

    from accounts.services import MFA_TOKEN_SALT

    challenge = signing.dumps({"u": "00000000-0000-0000-0000-000000000000", "n": "abc", "d": ""}, salt=MFA_TOKEN_SALT)
    response = client.post("/api/v1/auth/login/mfa/", {"mfa_token": challenge, "code": "123456"}, content_type="application/json")

    assert response.status_code == 503
    assert response.json()["error"]["code"] == "SERVER_002"


def test_with_redis_down_pages_search_and_throttled_api_calls_still_answer(redis_down, client):
    assert client.get("/").status_code == 200
    response = client.get("/api/v1/doctors/")  # anonymous throttle: a cache read and write
    assert response.status_code == 200
    assert client.get("/doctors/").status_code == 200


# --- Outages become 503 SERVER_002, never 500 -------------------------------------------------------


@pytest.mark.parametrize("exc", [OperationalError("connection to server was lost"), tolerant_cache.CacheUnavailable("add")], ids=["database", "cache"])
def test_an_unreachable_service_is_a_503_with_the_envelope_and_retry_after(exc):
    response = api_exception_handler(exc, {})

    assert response.status_code == 503
    assert response.data["error"]["code"] == "SERVER_002"
    assert response["Retry-After"] == "5"


def test_a_page_that_loses_the_database_gets_the_503_page_not_the_500_one():
    request = RequestFactory().get("/appointments/")
    try:
        raise OperationalError("terminating connection due to administrator command")
    except OperationalError:
        response = server_error(request)  # Django calls handler500 while handling the exception

    assert response.status_code == 503 and response["Retry-After"] == "5"
    assert "MediMeet is briefly unavailable" in response.content.decode()


def test_the_error_page_renders_even_when_the_signed_in_user_cannot_be_read():
    from django.utils.functional import SimpleLazyObject

    def lost():
        raise OperationalError("the connection is closed")

    request = RequestFactory().get("/payments/sandbox/ref/")
    request.user = SimpleLazyObject(lost)  # what AuthenticationMiddleware leaves: read on first use
    try:
        raise OperationalError("terminating connection due to administrator command")
    except OperationalError:
        response = server_error(request)

    assert response.status_code == 503
    assert "MediMeet is briefly unavailable" in response.content.decode()


def test_an_api_call_that_loses_the_database_gets_the_envelope():
    request = RequestFactory().get("/api/v1/appointments/")
    try:
        raise OperationalError("server closed the connection unexpectedly")
    except OperationalError:
        response = server_error(request)

    assert response.status_code == 503
    assert b'"code": "SERVER_002"' in response.content or b'"code":"SERVER_002"' in response.content


# --- Redis down: tasks that cannot be queued are not lost -----------------------------------------


@pytest.fixture
def broker_down(redis_down):
    from medimeet.celery import app

    saved = app.conf.task_always_eager, app.conf.broker_url, app.conf.broker_transport_options
    saved_pools = app._pool, app.amqp._producer_pool  # the connection pools are built once from the URL
    app.conf.task_always_eager, app.conf.broker_url, app.conf.broker_transport_options = False, redis_down, {}
    app._pool = app.amqp._producer_pool = None
    yield
    app.conf.task_always_eager, app.conf.broker_url, app.conf.broker_transport_options = saved
    if app._pool is not None:
        app._pool.force_close_all()
    app._pool, app.amqp._producer_pool = saved_pools


def test_a_message_queued_while_the_broker_is_down_is_delivered_once_by_the_requeue_scan(broker_down, django_capture_on_commit_callbacks, settings):
    from medimeet.celery import app

    row = queue_receipt(django_capture_on_commit_callbacks)  # the commit's delay() fails: logged, not raised

    assert (row.status, row.attempts) == ("queued", 0)
    assert mail.outbox == []
    [failed] = FailedTask.objects.all()  # staff see it on the dashboard
    assert (failed.task_name, failed.exception_type) == ("medimeet.core.tasks.deliver_notification", "kombu.exceptions.OperationalError")

    app.conf.task_always_eager = True  # Redis is back: the worker runs what the scan queues
    assert notifications_requeue_stalled() == 0  # too recent: its task may still be on its way
    Notification.objects.filter(pk=row.pk).update(created_at=timezone.now() - timedelta(seconds=settings.NOTIFICATION_REQUEUE_AFTER_SECONDS + 1))

    assert notifications_requeue_stalled() == 1
    assert notifications_requeue_stalled() == 0

    row.refresh_from_db()
    assert (row.status, row.attempts) == ("sent", 1)
    assert len(mail.outbox) == 1


def test_a_booking_made_while_the_broker_is_down_still_stores_both_messages_for_the_requeue_scan(broker_down, django_capture_on_commit_callbacks, settings):
    from appointments.services import appointment_notify
    from medimeet.celery import app

    appointment = cast()["appointment"]
    with django_capture_on_commit_callbacks(execute=True):
        appointment_notify(appointment=appointment, change="confirmed")  # the rendering task cannot be queued: it runs here

    rows = Notification.objects.filter(event="appointment.update")
    assert sorted(rows.values_list("to", "status")) == [("asha@example.com", "queued"), ("priya@example.com", "queued")]
    assert not FailedTask.objects.filter(task_name="appointments.tasks.send_appointment_update").exists()  # it ran: nothing for staff to chase

    app.conf.task_always_eager = True  # Redis is back: the scan queues the deliveries
    rows.update(created_at=timezone.now() - timedelta(seconds=settings.NOTIFICATION_REQUEUE_AFTER_SECONDS + 1))
    assert notifications_requeue_stalled() == 2
    assert sorted(m.to[0] for m in mail.outbox) == ["asha@example.com", "priya@example.com"]


def test_a_message_left_sending_by_a_killed_worker_is_sent_after_the_lease(django_capture_on_commit_callbacks):
    row = queue_receipt(django_capture_on_commit_callbacks)
    mail.outbox.clear()
    Notification.objects.filter(pk=row.pk).update(status="sending", claimed_at=timezone.now() - claim_lease() + timedelta(seconds=30))
    assert notifications_requeue_stalled() == 0  # the worker may still be sending it

    Notification.objects.filter(pk=row.pk).update(claimed_at=timezone.now() - claim_lease() - timedelta(seconds=1))

    assert notifications_requeue_stalled() == 1
    row.refresh_from_db()
    assert row.status == "sent" and len(mail.outbox) == 1


# --- SMTP down, then up -------------------------------------------------------------------------


def test_a_mail_server_that_is_down_then_comes_back_gets_the_message_once(settings, django_capture_on_commit_callbacks):
    from aiosmtpd.controller import Controller

    port = free_port()
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT, settings.EMAIL_TIMEOUT = "127.0.0.1", port, 2
    settings.EMAIL_USE_TLS = settings.EMAIL_USE_SSL = False
    settings.EMAIL_HOST_USER = settings.EMAIL_HOST_PASSWORD = ""
    user, context = context_for("payment.receipt", cast())
    from medimeet.core.notifications import notify

    with django_capture_on_commit_callbacks(execute=False):  # the task is not run here: attempts are driven below
        [row] = notify(user=user, event="payment.receipt", context=context)

    assert notification_deliver(notification_id=row.pk, final_attempt=False) == RETRY  # nobody listens
    row.refresh_from_db()
    assert (row.status, row.attempts) == ("queued", 1) and row.last_error.startswith("ConnectionRefusedError")

    mailbox = Mailbox()
    controller = Controller(mailbox, hostname="127.0.0.1", port=port)
    controller.start()  # the server is back
    try:
        assert notification_deliver(notification_id=row.pk, final_attempt=False) == SENT  # the retry
        assert notification_deliver(notification_id=row.pk, final_attempt=False) == "skipped"  # a duplicate run
    finally:
        controller.stop()

    row.refresh_from_db()
    assert (row.status, row.attempts, row.last_error) == ("sent", 2, "")
    assert len(mailbox.received) == 1
