"""Live availability: the socket at /ws/doctors/<slug>/availability/ (WebsocketCommunicator over
the real ASGI application and the channel layer of the settings) and every service that changes
what is free publishing to it, after commit only, scoped to its doctor."""

from __future__ import annotations

import asyncio
import json
import logging
import time as clock
from datetime import UTC, datetime, time, timedelta

import pytest
import pytest_asyncio
from channels.db import database_sync_to_async
from channels.layers import get_channel_layer
from channels.testing import WebsocketCommunicator
from django.db import transaction
from django.test import override_settings
from django.utils import timezone

from accounts.tests.factories import UserFactory
from appointments import services
from appointments.availability_events import LONGEST_SERVICE, availability_group
from appointments.models import Appointment, DoctorSchedule, WaitlistEntry, WeeklyHours
from doctors.models import DoctorProfile
from doctors.tests.factories import DoctorProfileFactory, ServiceFactory
from medimeet.asgi import application
from medimeet.core.tests.layers import unreachable_channel_layers

pytestmark = [pytest.mark.django_db(transaction=True)]

_sync = database_sync_to_async


@pytest_asyncio.fixture(autouse=True)
async def close_worker_connections():
    """Services run in asgiref's database thread here: close its connection after each test."""
    yield
    from django.db import connections

    await database_sync_to_async(connections.close_all)()


def day_after_tomorrow_at(hour: int, minute: int = 0) -> datetime:
    return datetime.combine(timezone.now().date() + timedelta(days=2), time(hour, minute), tzinfo=UTC)


def clinic(**schedule_fields):
    """A listed doctor working 09:00–12:00 UTC every day, 5-minute buffers, and a 30-minute service."""
    doctor = DoctorProfileFactory()
    fields = {"timezone": "UTC", "buffer_before_minutes": 5, "buffer_after_minutes": 5, "min_notice_minutes": 60, "max_days_ahead": 30, **schedule_fields}
    schedule = DoctorSchedule.objects.create(doctor=doctor, **fields)
    WeeklyHours.objects.bulk_create([WeeklyHours(schedule=schedule, weekday=d, start_time=time(9), end_time=time(12)) for d in range(7)])
    return doctor, ServiceFactory(doctor=doctor, duration_minutes=30, price_minor=50000)


def socket(slug: str) -> WebsocketCommunicator:
    return WebsocketCommunicator(application, f"/ws/doctors/{slug}/availability/", headers=[(b"origin", b"http://127.0.0.1"), (b"host", b"127.0.0.1")])


async def subscribed(slug: str) -> WebsocketCommunicator:
    ws = socket(slug)
    connected, _ = await ws.connect()
    assert connected
    assert await ws.receive_json_from(timeout=3) == {"type": "subscribed", "doctor": slug}
    return ws


async def frames(ws: WebsocketCommunicator, wait: float = 0.5) -> list[dict]:
    """Every frame that arrives until none has for ``wait`` seconds."""
    received = []
    # receive_nothing() waits without cancelling the consumer (a timed-out receive_output would).
    while not await ws.receive_nothing(timeout=wait):
        message = await ws.receive_output()
        if message["type"] == "websocket.close":
            return received
        received.append(json.loads(message["text"]))
    return received


async def published(doctor: DoctorProfile, action) -> list[dict]:
    """The frames a subscriber of ``doctor`` receives while ``action`` runs (synchronously, in a
    transaction of its own as a request would)."""
    ws = await subscribed(doctor.slug)
    await _sync(action)()
    received = await frames(ws)
    await ws.disconnect()
    return received


def iso(value: datetime) -> str:
    return value.astimezone(UTC).isoformat()


def states(received: list[dict]) -> list[tuple[str, str, str]]:
    return [(frame["state"], frame["start"], frame["end"]) for frame in received]


# --- The socket -------------------------------------------------------------------------------


@pytest.mark.asyncio
async def test_anyone_may_subscribe_to_a_listed_doctor_and_ping_it():
    doctor, _ = await _sync(clinic)()

    ws = await subscribed(doctor.slug)
    await ws.send_json_to({"type": "ping", "t": 12.5})
    pong = await ws.receive_json_from(timeout=3)
    await ws.send_json_to({"type": "book", "start": "2026-12-01T09:00:00Z"})
    refused = await ws.receive_json_from(timeout=3)
    await ws.disconnect()

    assert pong == {"type": "pong", "t": 12.5}
    assert refused["type"] == "error" and refused["code"] == "WS_BAD_MESSAGE"


async def closed_with(ws: WebsocketCommunicator) -> tuple[dict, int]:
    error = await ws.receive_json_from(timeout=3)
    message = await ws.receive_output(timeout=3)
    assert message["type"] == "websocket.close"
    return error, message["code"]


@pytest.mark.asyncio
async def test_unknown_and_unlisted_doctors_are_refused_with_4404():
    unverified = await _sync(DoctorProfileFactory)(verification_status=DoctorProfile.Status.SUBMITTED)

    for slug in ("dr-nobody", unverified.slug):
        ws = socket(slug)
        await ws.connect()
        error, code = await closed_with(ws)

        assert (error["type"], error["code"], code) == ("error", "WS_NOT_FOUND", 4404)


@pytest.mark.asyncio
async def test_with_the_channel_layer_down_the_socket_is_closed_with_4503_then_subscribes_when_it_is_back(settings):
    doctor, _ = await _sync(clinic)()
    layer = settings.CHANNEL_LAYERS
    settings.CHANNEL_LAYERS = unreachable_channel_layers()

    ws = socket(doctor.slug)
    await ws.connect()
    error, code = await closed_with(ws)

    assert (error["code"], code) == ("WS_UNAVAILABLE", 4503)  # not a 44xx refusal: the page keeps retrying
    await ws.wait(timeout=5)  # the consumer ends by itself once its read of the layer fails too
    settings.CHANNEL_LAYERS = layer  # Redis is back: the page's next attempt subscribes
    again = await subscribed(doctor.slug)
    await again.disconnect()


@pytest.mark.asyncio
async def test_a_socket_sending_more_than_its_share_of_frames_is_closed_with_4429():
    doctor, _ = await _sync(clinic)()
    ws = await subscribed(doctor.slug)

    for n in range(31):
        await ws.send_json_to({"type": "ping", "t": n})
    received = await frames(ws, wait=0.3)

    assert received[-1]["code"] == "WS_RATE_LIMITED"
    assert len(received) == 31  # thirty pongs, then the refusal


# --- Scoping and on-commit --------------------------------------------------------------------


@pytest.mark.asyncio
async def test_a_hold_reaches_its_doctors_subscribers_and_never_another_doctors():
    (doctor_a, service_a), (doctor_b, service_b) = await _sync(clinic)(), await _sync(clinic)()
    patient = await _sync(UserFactory)()
    watching_a, watching_b = await subscribed(doctor_a.slug), await subscribed(doctor_b.slug)
    start = day_after_tomorrow_at(9, 5)

    await _sync(services.appointment_hold)(patient=patient, service=service_a, start=start)
    to_a, to_b = await frames(watching_a), await frames(watching_b)
    await _sync(services.appointment_hold)(patient=patient, service=service_b, start=day_after_tomorrow_at(10, 25))
    later_to_a, later_to_b = await frames(watching_a), await frames(watching_b)
    await watching_a.disconnect()
    await watching_b.disconnect()

    assert to_a == [
        {
            "type": "slots.changed", "doctor": doctor_a.slug, "service": None, "state": "held",
            "start": iso(start), "end": iso(start + timedelta(minutes=30)),
            # Slots whose blocked time (5-minute buffers, any service up to 4 h) reaches into
            # the held one's blocked time [09:00, 09:40): starts in (09:00 - 4 h - 5 min, 09:45).
            "refetch_from": iso(start - timedelta(minutes=5) - LONGEST_SERVICE - timedelta(minutes=5)),
            "refetch_until": iso(start + timedelta(minutes=35) + timedelta(minutes=5)),
        }
    ]
    assert to_b == [] and later_to_a == []
    assert [(f["doctor"], f["state"]) for f in later_to_b] == [(doctor_b.slug, "held")]


@pytest.mark.asyncio
async def test_a_rolled_back_hold_publishes_nothing():
    doctor, service = await _sync(clinic)()
    patient = await _sync(UserFactory)()

    def hold_then_fail():
        with pytest.raises(RuntimeError), transaction.atomic():
            services.appointment_hold(patient=patient, service=service, start=day_after_tomorrow_at(9, 5))
            raise RuntimeError("the request failed after holding")

    received = await published(doctor, hold_then_fail)

    assert received == []
    assert not await _sync(Appointment.objects.exists)()


@pytest.mark.asyncio
async def test_with_a_daily_cap_a_change_refetches_the_doctors_whole_day():
    doctor, service = await _sync(clinic)(timezone="Asia/Kolkata", daily_cap=4)
    patient = await _sync(UserFactory)()
    start = day_after_tomorrow_at(3, 35)  # 09:05 in Kolkata

    (frame,) = await published(doctor, lambda: services.appointment_hold(patient=patient, service=service, start=start))

    local_midnight = datetime.combine(start.date(), time(0)).replace(tzinfo=UTC) - timedelta(hours=5, minutes=30)
    assert (frame["refetch_from"], frame["refetch_until"]) == (iso(local_midnight), iso(local_midnight + timedelta(days=1)))


# --- Every path that changes what is free -------------------------------------------------------


def held(service, start, patient=None, **kwargs) -> Appointment:
    return services.appointment_hold(patient=patient or UserFactory(), service=service, start=start, **kwargs)


def booked(service, start, patient=None) -> Appointment:
    """A confirmed booking (a free one: no payment needed)."""
    patient = patient or UserFactory()
    hold = held(service, start, patient)
    Appointment.objects.filter(pk=hold.pk).update(price_minor=0)
    hold.refresh_from_db()
    return services.appointment_confirm_details(appointment=hold, patient=patient, reason="Chest pain when climbing stairs")


def completed_consultation(service, patient) -> None:
    """Yesterday's consultation: a follow-up with the same doctor is free (free_follow_up_days)."""
    start = timezone.now() - timedelta(days=1)
    type(service).objects.filter(pk=service.pk).update(free_follow_up_days=30)
    Appointment.objects.create(
        doctor=service.doctor, patient=patient, service=service, start=start, end=start + timedelta(minutes=30),
        blocked_start=start, blocked_end=start + timedelta(minutes=30), status="completed", price_minor=service.price_minor, currency="INR",
    )
    service.refresh_from_db()


@pytest.mark.asyncio
async def test_a_free_one_step_booking_is_published_as_booked_and_confirming_a_hold_publishes_nothing():
    doctor, service = await _sync(clinic)()
    patient = await _sync(UserFactory)()
    await _sync(completed_consultation)(service, patient)
    start = day_after_tomorrow_at(9, 5)
    hold = await _sync(held)(service, day_after_tomorrow_at(10, 25))

    one_step = await published(doctor, lambda: held(service, start, patient, reason="Palpitations"))
    confirming = await published(doctor, lambda: services.appointment_confirm_details(appointment=hold, patient=hold.patient, reason="Follow-up"))

    assert states(one_step) == [("booked", iso(start), iso(start + timedelta(minutes=30)))]
    assert confirming == []  # the time was taken already


@pytest.mark.asyncio
async def test_a_new_hold_replacing_the_patients_previous_one_frees_it_in_the_same_event():
    doctor, service = await _sync(clinic)()
    patient = await _sync(UserFactory)()
    first, second = day_after_tomorrow_at(9, 5), day_after_tomorrow_at(10, 25)
    await _sync(held)(service, first, patient)

    received = await published(doctor, lambda: held(service, second, patient))

    assert states(received) == [("freed", iso(first), iso(first + timedelta(minutes=30))), ("held", iso(second), iso(second + timedelta(minutes=30)))]


@pytest.mark.asyncio
async def test_a_lapsed_hold_released_is_published_as_freed():
    doctor, service = await _sync(clinic)()
    start = day_after_tomorrow_at(9, 5)
    hold = await _sync(held)(service, start)
    await _sync(Appointment.objects.filter(pk=hold.pk).update)(hold_expires_at=timezone.now() - timedelta(seconds=1))

    received = await published(doctor, services.holds_release_expired)

    assert states(received) == [("freed", iso(start), iso(start + timedelta(minutes=30)))]


@pytest.mark.asyncio
async def test_a_cancellation_is_published_as_freed():
    doctor, service = await _sync(clinic)()
    start = day_after_tomorrow_at(9, 5)
    appointment = await _sync(booked)(service, start)

    received = await published(doctor, lambda: services.appointment_cancel(appointment=appointment, by=appointment.patient, reason="Feeling better"))

    assert states(received) == [("freed", iso(start), iso(start + timedelta(minutes=30)))]


@pytest.mark.asyncio
async def test_a_reschedule_frees_the_old_time_and_books_the_new_one():
    doctor, service = await _sync(clinic)(reschedule_min_notice_minutes=60)
    old, new = day_after_tomorrow_at(9, 5), day_after_tomorrow_at(11, 5)
    appointment = await _sync(booked)(service, old)

    received = await published(doctor, lambda: services.appointment_reschedule(appointment=appointment, by=appointment.patient, start=new))

    assert states(received) == [("freed", iso(old), iso(old + timedelta(minutes=30))), ("booked", iso(new), iso(new + timedelta(minutes=30)))]


@pytest.mark.asyncio
async def test_bookings_by_the_doctor_and_recurring_series_are_published():
    doctor, service = await _sync(clinic)()
    patient = await _sync(UserFactory)()
    await _sync(booked)(service, day_after_tomorrow_at(9, 5), patient)
    by_doctor_at, series_at = day_after_tomorrow_at(11, 5), day_after_tomorrow_at(10, 25)

    by_doctor = await published(
        doctor, lambda: services.appointment_book_by_doctor(doctor_user=doctor.user, patient=patient, service=service, start=by_doctor_at, reason="Review results")
    )
    series = await published(
        doctor, lambda: services.appointment_series_book(patient=UserFactory(), service=service, first_start=series_at, occurrences=2, reason="Physiotherapy review")
    )

    assert states(by_doctor) == [("held", iso(by_doctor_at), iso(by_doctor_at + timedelta(minutes=30)))]  # waits for payment
    assert [(s, start) for s, start, _ in states(series)] == [("held", iso(series_at)), ("held", iso(series_at + timedelta(days=7)))]


@pytest.mark.asyncio
async def test_rule_changes_are_published_as_changed_over_the_days_they_touch():
    doctor, _ = await _sync(clinic)()
    day = day_after_tomorrow_at(0).date()
    midnight = datetime.combine(day, time(0), tzinfo=UTC)

    closed = await published(doctor, lambda: services.override_set(doctor=doctor, day=day, ranges=None, by=doctor.user))
    reopened = await published(doctor, lambda: services.override_clear(doctor=doctor, day=day, by=doctor.user))
    vacation = await published(doctor, lambda: services.doctor_vacation_set(doctor=doctor, first_day=day, last_day=day + timedelta(days=6), by=doctor.user))
    before = timezone.now()
    rules = await published(doctor, lambda: services.schedule_update(doctor=doctor, data={"buffer_after_minutes": 10}, by=doctor.user))

    one_day = [("changed", iso(midnight), iso(midnight + timedelta(days=1)))]
    assert states(closed) == one_day and states(reopened) == one_day
    assert states(vacation) == [("changed", iso(midnight), iso(midnight + timedelta(days=7)))]
    assert all((f["refetch_from"], f["refetch_until"]) == (f["start"], f["end"]) for f in closed + vacation)
    (rule_change,) = rules
    assert rule_change["state"] == "changed"
    assert datetime.fromisoformat(rule_change["start"]) >= before
    assert datetime.fromisoformat(rule_change["end"]) >= before + timedelta(days=32)  # the whole horizon (30 days ahead)


@pytest.mark.asyncio
async def test_an_emergency_closes_the_day_and_frees_what_it_cancels_in_one_event():
    doctor, service = await _sync(clinic)(min_notice_minutes=0)
    start = (timezone.now() + timedelta(minutes=5)).replace(second=0, microsecond=0)
    appointment = await _sync(Appointment.objects.create)(
        doctor=doctor, patient=await _sync(UserFactory)(), service=service, start=start, end=start + timedelta(minutes=30),
        blocked_start=start, blocked_end=start + timedelta(minutes=30), status="confirmed", price_minor=0, currency="INR",
    )
    until = start + timedelta(hours=1)

    received = await published(doctor, lambda: services.doctor_emergency_unavailable(doctor=doctor, by=doctor.user, until=until))

    assert [f["state"] for f in received] == ["changed", "freed"]
    assert received[1]["start"] == iso(appointment.start)


@pytest.mark.asyncio
async def test_a_waitlist_offer_hold_is_published():
    doctor, service = await _sync(clinic)()
    today = timezone.localdate()

    received = await published(
        doctor, lambda: services.waitlist_join(patient=UserFactory(), service=service, first_day=today + timedelta(days=2), last_day=today + timedelta(days=2))
    )

    assert [f["state"] for f in received] == ["held"]
    offer = await _sync(lambda: WaitlistEntry.objects.select_related("offer").get().offer)()
    assert received[0]["start"] == iso(offer.start)


# --- Cost: one channel-layer message per doctor and transaction --------------------------------


@pytest.mark.asyncio
async def test_an_emergency_cancelling_many_bookings_is_one_channel_message_and_one_frame():
    doctor, service = await _sync(clinic)(min_notice_minutes=0)

    def many_bookings():
        first = (timezone.now() + timedelta(minutes=5)).replace(second=0, microsecond=0)
        for n in range(25):
            start = first + timedelta(minutes=30 * n)
            Appointment.objects.create(
                doctor=doctor, patient=UserFactory(), service=service, start=start, end=start + timedelta(minutes=20),
                blocked_start=start, blocked_end=start + timedelta(minutes=20), status="confirmed", price_minor=0, currency="INR",
            )
        return first

    first = await _sync(many_bookings)()
    layer = get_channel_layer()
    listener = await layer.new_channel()
    await layer.group_add(availability_group(doctor.pk), listener)
    ws = await subscribed(doctor.slug)

    await _sync(services.doctor_emergency_unavailable)(doctor=doctor, by=doctor.user, until=first + timedelta(days=1))
    messages = []
    while True:
        try:
            messages.append(await asyncio.wait_for(layer.receive(listener), timeout=0.5))
        except TimeoutError:
            break
    received = await frames(ws)
    await ws.disconnect()
    await layer.group_discard(availability_group(doctor.pk), listener)

    assert len(messages) == 1
    assert [f["state"] for f in received] == ["changed"]  # 26 changes summed up as one range
    assert received[0]["start"] <= iso(first)


# --- A channel layer that is down never fails a booking ------------------------------------------


def test_a_hold_succeeds_and_is_logged_when_the_channel_layer_is_down(caplog):
    doctor, service = clinic()
    patient = UserFactory()
    broken = unreachable_channel_layers()

    with override_settings(CHANNEL_LAYERS=broken), caplog.at_level(logging.WARNING, logger="medimeet.core.events"):
        began = clock.monotonic()
        hold = services.appointment_hold(patient=patient, service=service, start=day_after_tomorrow_at(9, 5))
        took = clock.monotonic() - began

    assert Appointment.objects.get(pk=hold.pk).status == "held"
    assert took < 3
    assert [r.getMessage() for r in caplog.records] == ["websocket event not sent to a availability group: ConnectionError"]
