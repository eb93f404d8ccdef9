"""The booking-flow experiment (flag ``new-booking-flow``): off, pressing a time holds it and the
details come next; on, the reason comes first and one press holds and confirms. A percentage
rollout keeps each browser in its variant with waffle's cookie. And the platform setting for
hold minutes decides how long either holds."""

# ruff: noqa: F811  (fixtures imported from the module that defines them, then requested by name)
from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from constance.test import override_config
from waffle.models import Flag
from waffle.testutils import override_flag

from appointments.models import Appointment
from appointments.tests.test_pages import NOW, book_url, clinic, frozen_time, patient  # noqa: F401 (fixtures)
from medimeet.core.flags import NEW_BOOKING_FLOW

pytestmark = pytest.mark.django_db

START = "2026-11-02T09:30:00+00:00"
COOKIE = f"dwf_{NEW_BOOKING_FLOW}"


def press(client, clinic, **extra):
    return client.post(book_url(clinic), {"service": str(clinic["service"].public_id), "start": START, "key": "k" * 32, **extra})


def test_the_experiment_is_off_by_default_and_a_time_is_held_for_the_details_step(client, clinic, patient):
    client.force_login(patient)

    page = client.get(book_url(clinic)).content.decode()
    response = press(client, clinic, reason="ignored while the flag is off")

    appointment = Appointment.objects.get()
    assert 'data-booking-flow="one-step"' not in page and "Reason for the visits" in page
    assert response["Location"] == f"/appointments/{appointment.public_id}/"
    assert (appointment.status, appointment.reason) == ("held", "")


@override_flag(NEW_BOOKING_FLOW, active=True)
def test_with_the_flag_on_the_reason_comes_first_and_one_press_goes_to_payment(client, clinic, patient):
    client.force_login(patient)

    page = client.get(book_url(clinic)).content.decode()
    response = press(client, clinic, reason="Persistent cough")

    appointment = Appointment.objects.get()
    assert 'data-booking-flow="one-step"' in page and 'name="reason"' in page and "Cancel 24 h or more before: 100 % refund" in page
    assert "Reason for the visits" not in page  # one reason field serves the repeat options too
    assert response["Location"] == f"/appointments/{appointment.public_id}/pay/"
    assert (appointment.status, appointment.reason, appointment.start) == ("pending_payment", "Persistent cough", datetime(2026, 11, 2, 9, 30, tzinfo=UTC))


@override_flag(NEW_BOOKING_FLOW, active=True)
def test_with_the_flag_on_a_time_without_a_reason_books_nothing(client, clinic, patient):
    client.force_login(patient)

    response = press(client, clinic, reason="  ")

    assert response.status_code == 200
    assert "Tell the doctor why you are booking, then choose a time." in response.content.decode()
    assert not Appointment.objects.exists()


def test_a_percentage_rollout_decides_once_per_browser_and_keeps_it(client, clinic, patient):
    Flag.objects.filter(name=NEW_BOOKING_FLOW).update(everyone=None, percent=50)
    client.force_login(patient)

    first = client.get(book_url(clinic))
    decided = first.cookies[COOKIE].value
    again = [("one-step" in client.get(book_url(clinic)).content.decode()) for _ in range(5)]

    assert decided in ("True", "False")
    assert again == [decided == "True"] * 5  # the cookie, not a new draw, decides every later page
    client.cookies[COOKIE] = "True"
    assert 'data-booking-flow="one-step"' in client.get(book_url(clinic)).content.decode()
    client.cookies[COOKIE] = "False"
    assert 'data-booking-flow="one-step"' not in client.get(book_url(clinic)).content.decode()


def test_the_api_tells_the_app_which_variant_this_person_is_in(client, clinic, patient):
    client.force_login(patient)

    with override_flag(NEW_BOOKING_FLOW, active=True):
        on = client.get("/api/v1/flags/").json()["flags"][NEW_BOOKING_FLOW]
    off = client.get("/api/v1/flags/").json()["flags"][NEW_BOOKING_FLOW]

    assert (on, off) == (True, False)


def test_the_hold_lasts_the_platform_settings_minutes(client, clinic, patient):
    client.force_login(patient)

    with override_config(BOOKING_HOLD_MINUTES=25):
        page = client.get(book_url(clinic)).content.decode()
        press(client, clinic)

    assert Appointment.objects.get().hold_expires_at == NOW + timedelta(minutes=25)
    assert "Your time is held for 25 minutes while you add your details." in page
