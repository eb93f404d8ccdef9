"""Presence decides no-shows: who joined the room is the evidence."""

from __future__ import annotations

from datetime import timedelta

import pytest
import time_machine
from django.utils import timezone

from appointments import services as appointment_services
from consultations.models import Participation
from consultations.services import consultations_settle_no_shows, participant_connect, participant_disconnect
from consultations.tests.test_consumer import booked
from medimeet.core.models import AuditEvent
from payments import services as payment_services
from payments.gateways import sandbox
from payments.models import Refund

pytestmark = pytest.mark.django_db(transaction=True)


def paid_booking(start_in):
    """A booking paid through the sandbox, as a patient makes it."""
    from accounts.tests.factories import UserFactory
    from appointments.tests.test_booking import open_all_week
    from doctors.tests.factories import DoctorProfileFactory, ServiceFactory

    doctor = DoctorProfileFactory()
    open_all_week(doctor, min_notice_minutes=0)
    service = ServiceFactory(doctor=doctor, duration_minutes=30, price_minor=50000)
    patient = UserFactory()
    start = (timezone.now() + start_in).replace(minute=0, second=0, microsecond=0)
    hold = appointment_services.appointment_hold(patient=patient, service=service, start=start)
    pending = appointment_services.appointment_confirm_details(appointment=hold, patient=patient, reason="Sore throat")
    payment = payment_services.payment_create(patient=patient, appointment=pending)
    sandbox.sandbox_pay(reference=payment.gateway_reference, card_number="4242424242424242")
    pending.refresh_from_db()
    return pending


def came(appointment, role):
    user = appointment.patient if role == "patient" else appointment.doctor.user
    participation = participant_connect(consultation=appointment.consultation, user=user, role=role)
    participant_disconnect(participation=participation)


def test_a_doctor_who_never_joins_is_a_no_show_and_the_patient_is_refunded_in_full():
    with time_machine.travel(timezone.now().replace(hour=8, minute=0), tick=False) as traveller:
        appointment = paid_booking(timedelta(hours=2))
        traveller.shift(timedelta(hours=2, minutes=1))
        came(appointment, "patient")
        early = consultations_settle_no_shows()
        traveller.shift(timedelta(minutes=15))

        settled = consultations_settle_no_shows()
        again = consultations_settle_no_shows()

    appointment.refresh_from_db()
    assert (early, settled, again) == (0, 1, 0)
    assert (appointment.status, appointment.no_show_party, appointment.refund_percent) == ("no_show", "doctor", 100)
    refund = Refund.objects.get()
    assert (refund.status, refund.amount_minor, refund.source) == ("succeeded", 50000, "policy")
    assert AuditEvent.objects.filter(action="consultation.doctor_no_show").exists()


def test_a_patient_who_never_joins_is_a_no_show_under_the_cancellation_policy():
    with time_machine.travel(timezone.now().replace(hour=8, minute=0), tick=False) as traveller:
        appointment = paid_booking(timedelta(hours=2))
        traveller.shift(timedelta(hours=2))
        came(appointment, "doctor")
        traveller.shift(timedelta(minutes=16))

        consultations_settle_no_shows()

    appointment.refresh_from_db()
    assert (appointment.status, appointment.no_show_party, appointment.refund_percent) == ("no_show", "patient", 0)
    assert not Refund.objects.exists()


def test_when_nobody_or_both_came_nothing_is_decided():
    nobody = booked(start_in=-timedelta(minutes=20))
    both = booked(start_in=-timedelta(minutes=20))
    came(both, "doctor")
    came(both, "patient")

    settled = consultations_settle_no_shows()

    nobody.refresh_from_db()
    both.refresh_from_db()
    assert settled == 0 and nobody.status == both.status == "confirmed"
    assert Participation.objects.count() == 2
