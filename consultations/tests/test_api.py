"""The consultations API: rooms for the appointment's doctor and patient only, what a client
needs to join, and the chat export."""

from __future__ import annotations

from datetime import timedelta

import pytest
from rest_framework.test import APIClient

from accounts.tests.factories import UserFactory, staff_member
from consultations.models import Consultation
from consultations.services import chat_post, participant_connect
from consultations.tests.test_consumer import booked
from medimeet.core import roles

pytestmark = pytest.mark.django_db


def api(user) -> APIClient:
    client = APIClient()
    client.force_authenticate(user)
    return client


def test_the_patient_gets_the_room_with_the_socket_url_and_window(settings):
    settings.STUN_URLS, settings.TURN_URLS, settings.TURN_SECRET = ["stun:stun.example.org:3478"], ["turn:turn.example.org:3478"], "s3cret"
    appointment = booked()

    body = api(appointment.patient).get(f"/api/v1/consultations/{appointment.consultation.room}/").json()

    assert body["role"] == "patient" and body["can_join"] is True and body["refusal"] is None
    assert body["websocket_url"].endswith(f"/ws/consultations/{appointment.consultation.room}/")
    stun, turn = body["ice_servers"]
    assert stun == {"urls": ["stun:stun.example.org:3478"]}
    expiry, user_id = turn["username"].split(":")
    assert user_id == str(appointment.patient.public_id) and int(expiry) > 0 and turn["credential"]


def test_posting_an_appointment_creates_its_room_once():
    appointment = booked()
    Consultation.objects.all().delete()

    first = api(appointment.doctor.user).post("/api/v1/consultations/", {"appointment": str(appointment.public_id)}, format="json")
    second = api(appointment.patient).post("/api/v1/consultations/", {"appointment": str(appointment.public_id)}, format="json")

    assert first.status_code == second.status_code == 201
    assert first.json()["room"] == second.json()["room"]
    assert Consultation.objects.count() == 1


@pytest.mark.parametrize("who", ["other_patient", "other_doctor_user"])
def test_other_people_cannot_see_or_create_a_room(who):
    appointment = booked()
    outsider = UserFactory() if who == "other_patient" else booked().doctor.user

    seen = api(outsider).get(f"/api/v1/consultations/{appointment.consultation.room}/")
    created = api(outsider).post("/api/v1/consultations/", {"appointment": str(appointment.public_id)}, format="json")
    chat = api(outsider).get(f"/api/v1/consultations/{appointment.consultation.room}/chat/")

    assert (seen.status_code, seen.json()["error"]["code"]) == (404, "CONS_001")
    assert (created.status_code, created.json()["error"]["code"]) == (404, "APPT_006")
    assert chat.status_code == 404


def test_a_cancelled_appointment_has_no_room_and_an_early_one_says_when_it_opens():
    cancelled = booked(status="cancelled")
    early = booked(start_in=timedelta(hours=2))

    refused = api(cancelled.patient).post("/api/v1/consultations/", {"appointment": str(cancelled.public_id)}, format="json")
    not_yet = api(early.patient).get(f"/api/v1/consultations/{early.consultation.room}/").json()

    assert (refused.status_code, refused.json()["error"]["code"]) == (409, "CONS_002")
    assert not_yet["can_join"] is False and not_yet["refusal"] == "WS_OUTSIDE_WINDOW" and not_yet["ice_servers"] == []


def test_chat_export_is_for_the_doctor_and_patient_not_staff():
    appointment = booked()
    participation = participant_connect(consultation=appointment.consultation, user=appointment.patient, role="patient")
    chat_post(participation=participation, body="My throat still hurts")

    mine = api(appointment.doctor.user).get(f"/api/v1/consultations/{appointment.consultation.room}/chat/").json()
    staff = api(staff_member(roles.SUPPORT)).get(f"/api/v1/consultations/{appointment.consultation.room}/chat/")

    assert [(m["body"], m["sender"]) for m in mine] == [("My throat still hurts", str(participation.public_id))]
    assert staff.status_code == 403


def test_staff_refused_the_chat_get_the_documented_403():
    # API fuzzing found this 403 missing from the schema.
    from medimeet.core.tests.openapi import assert_documented

    appointment = booked()
    url = f"/api/v1/consultations/{appointment.consultation.room}/chat/"

    response = api(staff_member(roles.SUPPORT)).get(url)

    assert (response.status_code, response.json()["error"]["code"]) == (403, "AUTH_010")
    assert_documented(response, "GET", url)
