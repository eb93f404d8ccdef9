"""Guests: the doctor or the patient invites one person with a one-time, time-limited link;
the guest has no account and reaches the room only through the browser that opened the link."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from django.core import mail
from django.test import Client
from django.utils import timezone
from rest_framework.test import APIClient

from accounts.tests.factories import StaffFactory, UserFactory
from consultations.models import GuestInvite
from consultations.services import GUEST_SESSION_KEY
from consultations.tests.test_consumer import booked
from doctors.tests.factories import DoctorProfileFactory
from medimeet.core.models import AuditEvent

pytestmark = pytest.mark.django_db


def api(user) -> APIClient:
    client = APIClient()
    client.force_authenticate(user)
    return client


def invite(appointment, by=None, **data):
    by = by or appointment.patient
    payload = {"name": "Asha Rao", "relationship": "interpreter", **data}
    return api(by).post(f"/api/v1/consultations/{appointment.consultation.room}/guests/", payload, format="json")


def token_of(link: str) -> str:
    return re.search(r"/consultations/invitation/([^/]+)/$", link).group(1)


@pytest.mark.parametrize("who", ["patient", "doctor"])
def test_the_patient_or_the_doctor_invites_a_guest_and_gets_the_link_once(who, django_capture_on_commit_callbacks):
    appointment = booked()
    by = appointment.patient if who == "patient" else appointment.doctor.user

    with django_capture_on_commit_callbacks(execute=True):
        response = invite(appointment, by=by, email="asha@example.org")

    assert response.status_code == 201
    body = response.json()
    assert (body["name"], body["relationship"], body["state"], body["invited_by"]) == ("Asha Rao", "interpreter", "open", by.display_name)
    stored = GuestInvite.objects.get()
    assert stored.expires_at == appointment.consultation.join_window()[1]
    assert token_of(body["link"]) not in stored.token_hash  # only a hash is kept
    assert AuditEvent.objects.filter(action="consultation.guest_invited", actor=by).count() == 1
    [message] = mail.outbox
    assert message.to == ["asha@example.org"]
    assert body["link"] in message.body
    assert "no access to medical records" in message.body
    listed = api(by).get(f"/api/v1/consultations/{appointment.consultation.room}/guests/").json()
    assert [(i["name"], i["link"]) for i in listed] == [("Asha Rao", None)]


def test_one_guest_per_consultation_until_the_invitation_is_withdrawn():
    appointment = booked()
    first = invite(appointment).json()

    second = invite(appointment, by=appointment.doctor.user, name="Ravi")
    assert second.status_code == 409
    assert second.json()["error"]["code"] == "CONS_004"
    assert GuestInvite.objects.count() == 1

    assert api(appointment.doctor.user).delete(f"/api/v1/consultations/{appointment.consultation.room}/guests/{first['id']}/").status_code == 204
    assert invite(appointment, name="Ravi").status_code == 201
    assert [(i.name, i.state) for i in GuestInvite.objects.order_by("created_at")] == [("Asha Rao", "revoked"), ("Ravi", "open")]


@pytest.mark.parametrize(
    "payload, field",
    [({"name": ""}, "name"), ({"name": "x" * 81}, "name"), ({"relationship": "boss"}, "relationship"), ({"email": "not-an-email"}, "email")],
)
def test_bad_invitations_are_refused_with_the_field_and_nothing_is_written(payload, field):
    appointment = booked()

    response = invite(appointment, **payload)

    assert response.status_code == 400
    assert response.json()["error"]["code"] == "REQ_001"
    assert field in response.json()["error"]["fields"]
    assert not GuestInvite.objects.exists()


@pytest.mark.parametrize("who", ["other patient", "other doctor", "staff"])
def test_people_outside_the_appointment_cannot_invite_list_or_withdraw(who):
    appointment = booked()
    existing = invite(appointment).json()
    outsider = {"other patient": UserFactory, "other doctor": lambda: DoctorProfileFactory().user, "staff": StaffFactory}[who]()
    base = f"/api/v1/consultations/{appointment.consultation.room}/guests/"

    assert invite(appointment, by=outsider).status_code == 404
    assert api(outsider).get(base).status_code == 404
    assert api(outsider).delete(f"{base}{existing['id']}/").status_code == 404
    assert list(GuestInvite.objects.values_list("name", "revoked_at")) == [("Asha Rao", None)]


def test_no_invitation_once_the_room_has_closed_or_for_a_cancelled_appointment():
    past = booked(start_in=timedelta(hours=-3))
    cancelled = booked(status="cancelled")

    assert invite(past).json()["error"]["code"] == "CONS_003"
    assert invite(cancelled).status_code in (404, 409)
    assert not GuestInvite.objects.exists()


def test_opening_the_link_shows_the_invitation_without_using_it_up():
    appointment = booked()
    link = invite(appointment).json()["link"]
    guest = Client()

    page = guest.get(link)
    again = Client().get(link)  # a mail scanner or link preview, say

    assert page.status_code == again.status_code == 200
    assert appointment.doctor.display_name in page.content.decode()
    assert f"({appointment.patient.timezone} time)" in page.content.decode()
    assert GuestInvite.objects.get().used_at is None


def test_joining_claims_the_link_for_one_browser_only():
    appointment = booked()
    link = invite(appointment).json()["link"]
    room = appointment.consultation.room
    guest, stranger = Client(), Client()

    joined = guest.post(link)
    reopened = guest.post(link)  # the same browser, e.g. after closing the tab
    refused = stranger.post(link)

    assert joined.status_code == reopened.status_code == 302
    assert joined["Location"] == f"/consultations/{room}/guest/"
    assert refused.status_code == 410
    assert "already been used" in refused.content.decode()
    invitation = GuestInvite.objects.get()
    assert guest.session[GUEST_SESSION_KEY] == {room: str(invitation.public_id)}
    assert GUEST_SESSION_KEY not in stranger.session
    page = guest.get(f"/consultations/{room}/guest/")
    assert page.status_code == 200
    assert 'data-role="guest"' in page.content.decode()
    assert stranger.get(f"/consultations/{room}/guest/").status_code == 404


def test_withdrawn_expired_and_unknown_links_are_refused_with_a_clear_page():
    appointment = booked()
    created = invite(appointment).json()
    api(appointment.patient).delete(f"/api/v1/consultations/{appointment.consultation.room}/guests/{created['id']}/")
    later = booked()
    expiring = invite(later).json()["link"]
    GuestInvite.objects.filter(consultation=later.consultation).update(expires_at=timezone.now() - timedelta(minutes=1))

    withdrawn = Client().post(created["link"])
    expired = Client().post(expiring)
    unknown = Client().get("/consultations/invitation/not-a-real-token/")

    assert withdrawn.status_code == expired.status_code == 410
    assert "withdrawn" in withdrawn.content.decode()
    assert "expired" in expired.content.decode()
    assert unknown.status_code == 404
    assert not GuestInvite.objects.filter(used_at__isnull=False).exists()


def test_the_guest_has_no_access_to_the_appointment_or_records():
    appointment = booked()
    guest = Client()
    guest.post(invite(appointment).json()["link"])

    assert guest.get(f"/appointments/{appointment.public_id}/").status_code == 302  # to sign in
    assert guest.get(f"/api/v1/appointments/{appointment.public_id}/").status_code == 401
    assert guest.get(f"/api/v1/consultations/{appointment.consultation.room}/chat/").status_code == 401
    assert guest.get(f"/consultations/{appointment.consultation.room}/").status_code == 302


def test_staff_see_who_was_invited_in_the_admin_but_never_the_link(client):
    from allauth.mfa.models import Authenticator
    from django.contrib.auth.models import Permission

    appointment = booked()
    link = invite(appointment, email="asha@example.org").json()["link"]
    staff = StaffFactory()
    staff.user_permissions.add(*Permission.objects.filter(content_type__app_label="consultations", codename__startswith="view_"))
    Authenticator.objects.create(user=staff, type=Authenticator.Type.TOTP, data={"secret": "unused"})
    client.force_login(staff)

    page = client.get(f"/admin/consultations/consultation/{appointment.consultation.pk}/change/").content.decode()

    assert "Asha Rao" in page and "asha@example.org" in page and "Interpreter" in page
    assert token_of(link) not in page and GuestInvite.objects.get().token_hash not in page
