"""Feature flags and switches (medimeet/core/flags.py): they exist after migrate with safe
defaults, the ``sms-reminders`` switch stops texts (email still goes), and the apps read what
is on for them from ``GET /api/v1/flags/``."""

from __future__ import annotations

from datetime import timedelta

import pytest
from constance.test import override_config
from django.core.management import call_command
from rest_framework.test import APIClient
from waffle.models import Flag, Switch
from waffle.testutils import override_flag, override_switch

from accounts.tests.factories import UserFactory
from appointments.tests.test_reminders import START, book, scan_at
from consultations.services import consultations_announce_opening
from consultations.tests.test_consumer import booked
from medimeet.core.flags import NEW_BOOKING_FLOW, SMS_REMINDERS, VIDEO_RECORDING, flags_ensure
from medimeet.core.models import Notification, NotificationPreference

pytestmark = pytest.mark.django_db


def test_the_flags_and_switches_exist_after_migrate_with_safe_defaults():
    Flag.objects.all().delete()
    Switch.objects.all().delete()

    call_command("migrate", verbosity=0)  # post_migrate puts back what a flush removed
    flags_ensure(Flag, Switch)  # and running it again changes nothing

    assert {(f.name, f.everyone, f.percent) for f in Flag.objects.all()} == {(VIDEO_RECORDING, True, None), (NEW_BOOKING_FLOW, None, None)}
    assert list(Switch.objects.values_list("name", "active")) == [(SMS_REMINDERS, True)]


def test_flags_changed_by_staff_are_not_reset_by_migrate():
    Flag.objects.filter(name=VIDEO_RECORDING).update(everyone=False)

    call_command("migrate", verbosity=0)

    assert Flag.objects.get(name=VIDEO_RECORDING).everyone is False


def verified_texter(user) -> None:
    NotificationPreference.objects.create(user=user, channels={"reminders": ["email", "sms"]}, sms_number="+447911123456", sms_verified_at=START)


@pytest.mark.parametrize("on", [True, False])
def test_reminders_go_by_sms_only_while_the_switch_is_on_and_email_always(on, django_capture_on_commit_callbacks, settings, tmp_path):
    settings.SMS_OUTBOX_DIR = tmp_path / "sms"
    appointment = book()
    verified_texter(appointment.patient)

    with override_switch(SMS_REMINDERS, active=on):
        scan_at(START - timedelta(hours=24), django_capture_on_commit_callbacks)

    channels = sorted(Notification.objects.filter(user=appointment.patient, event="appointment.reminder").values_list("channel", flat=True))
    assert channels == (["email", "sms"] if on else ["email"])
    assert len(list((tmp_path / "sms").glob("*.txt"))) == (1 if on else 0)


@pytest.mark.parametrize("on", [True, False])
def test_room_open_messages_go_by_sms_only_while_the_switch_is_on(on, django_capture_on_commit_callbacks, settings, tmp_path):
    settings.SMS_OUTBOX_DIR = tmp_path / "sms"
    appointment = booked(start_in=timedelta(minutes=14))
    verified_texter(appointment.patient)

    with override_switch(SMS_REMINDERS, active=on), django_capture_on_commit_callbacks(execute=True):
        consultations_announce_opening()

    channels = sorted(Notification.objects.filter(user=appointment.patient, event="consultation.starting").values_list("channel", flat=True))
    assert channels == (["email", "sms"] if on else ["email"])


def test_the_api_tells_anyone_which_features_are_on_with_the_notice_and_support_contact():
    anonymous = APIClient().get("/api/v1/flags/")

    with override_flag(VIDEO_RECORDING, active=False), override_switch(SMS_REMINDERS, active=False):
        signed_in = APIClient()
        signed_in.force_authenticate(UserFactory())
        off = signed_in.get("/api/v1/flags/").json()
    with override_config(MAINTENANCE_BANNER_ENABLED=True, MAINTENANCE_BANNER_TEXT="Payments pause at 02:00 UTC.", SUPPORT_PHONE="+91 80 1234 5678"):
        notice = APIClient().get("/api/v1/flags/").json()

    assert anonymous.status_code == 200
    assert anonymous.json() == {
        "flags": {VIDEO_RECORDING: True, NEW_BOOKING_FLOW: False},
        "switches": {SMS_REMINDERS: True},
        "maintenance": {"active": False, "message": ""},
        "support": {"email": "support@medimeet.local", "phone": ""},
    }
    assert (off["flags"][VIDEO_RECORDING], off["switches"][SMS_REMINDERS]) == (False, False)
    assert notice["maintenance"] == {"active": True, "message": "Payments pause at 02:00 UTC."}
    assert notice["support"] == {"email": "support@medimeet.local", "phone": "+91 80 1234 5678"}


def test_the_api_sets_the_rollout_cookie_and_honours_it():
    Flag.objects.filter(name=NEW_BOOKING_FLOW).update(everyone=None, percent=50)
    client = APIClient()

    first = client.get("/api/v1/flags/")
    drawn = first.cookies[f"dwf_{NEW_BOOKING_FLOW}"].value
    client.cookies[f"dwf_{NEW_BOOKING_FLOW}"] = "False" if drawn == "True" else "True"
    second = client.get("/api/v1/flags/").json()

    assert str(first.json()["flags"][NEW_BOOKING_FLOW]) == drawn
    assert second["flags"][NEW_BOOKING_FLOW] is (drawn != "True")  # the cookie decides, not a new draw
