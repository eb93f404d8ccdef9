"""A cast and a context for every event of the catalogue, so tests can render each message
in each language (test_notification_templates.py) and screenshots can show real ones."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

from accounts.tests.factories import UserFactory
from appointments.models import Appointment, DoctorSchedule
from appointments.services import HEADLINES
from consultations.models import GuestInvite
from doctors.tests.factories import DoctorProfileFactory, ServiceFactory
from medimeet.core.models import Announcement
from payments.models import Invoice, Payment, Plan, Refund, Subscription
from records.models import AccessGrant, EmergencyAccess

START = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)  # 14:30 in Kolkata, 09:00 in London


def cast() -> dict:
    """A patient in India and a doctor practising from London, with a confirmed appointment."""
    patient = UserFactory(first_name="Asha", last_name="Verma", email="asha@example.com", timezone="Asia/Kolkata")
    doctor = DoctorProfileFactory(user__first_name="Priya", user__last_name="Raman", user__email="priya@example.com", user__timezone="Europe/London")
    DoctorSchedule.objects.create(doctor=doctor, timezone="Europe/London")
    service = ServiceFactory(doctor=doctor, name="Video consultation", duration_minutes=30, price_minor=50000, preparation_instructions="Have your blood pressure readings ready.")
    appointment = Appointment.objects.create(
        doctor=doctor, patient=patient, service=service, start=START, end=START + timedelta(minutes=30), blocked_start=START, blocked_end=START + timedelta(minutes=30),
        status="confirmed", price_minor=50000, currency="INR",
    )
    return {"patient": patient, "doctor": doctor, "service": service, "appointment": appointment}


URL = "http://127.0.0.1:8000/appointments/0000/"


def plan_context(patient, status: str = "past_due") -> dict:
    plan = Plan(name="Video care", price_minor=200000, currency="INR", credits_per_period=4)
    subscription = Subscription(
        patient=patient, plan=plan, status=status, current_period_end=START, next_retry_at=START + timedelta(days=1) if status == "past_due" else None,
        grace_until=START + timedelta(days=5) if status == "past_due" else None,
    )
    return {"subscription": subscription, "plan": plan, "plans_url": "http://127.0.0.1:8000/plans/"}


def context_for(event: str, people: dict) -> tuple:
    """(recipient, context) for ``event``."""
    patient, doctor, appointment = people["patient"], people["doctor"], people["appointment"]
    on_appointment = {"patient": patient, "doctor": doctor, "appointment": appointment, "appointment_url": URL}
    payment = Payment(patient=patient, doctor=doctor, appointment=appointment, amount_minor=50000, currency="INR", card_brand="visa", card_last4="4242", status="succeeded")
    invoice = Invoice(
        payment=payment, number="MM-2026-000042", issued_at=START - timedelta(days=1), currency="INR", lines=[{"description": "Video consultation", "quantity": 1, "unit_minor": 50000, "total_minor": 50000}],
        subtotal_minor=42373, tax_name="GST", tax_rate=Decimal("18"), tax_minor=7627, total_minor=50000, payment_method="Visa •••• 4242",
    )
    contexts = {
        "account.new_device_sign_in": (patient, {"device": "Firefox on Windows", "ip_address": "203.0.113.7", "signed_in_at": START, "devices_url": "http://127.0.0.1:8000/account/devices/"}),
        "doctor.application_received": (doctor.user, {"doctor": doctor, "portal_url": "http://127.0.0.1:8000/doctors/portal/"}),
        "doctor.application_approved": (doctor.user, {"doctor": doctor, "portal_url": "http://127.0.0.1:8000/doctors/portal/"}),
        "doctor.application_rejected": (doctor.user, {"doctor": doctor, "reason": "The licence could not be verified.", "portal_url": "http://127.0.0.1:8000/doctors/portal/"}),
        "doctor.application_changes_requested": (doctor.user, {"doctor": doctor, "reason": "Upload your MD certificate.", "portal_url": "http://127.0.0.1:8000/doctors/portal/"}),
        "doctor.invitation": (doctor.user, {"doctor": doctor, "invitation_url": "http://127.0.0.1:8000/doctors/invitation/abc/", "valid_days": 7}),
        "doctor.licence_expired": (doctor.user, {"doctor": doctor, "portal_url": "http://127.0.0.1:8000/doctors/portal/"}),
        "appointment.update": (patient, {"appointment": appointment, "headline": HEADLINES["confirmed"], "to_doctor": False, "other_zone": "Europe/London", "refund_minor": None, "ics_attached": True, "appointment_url": URL}),
        "appointment.cancelled_by_doctor": (patient, {**on_appointment, "search_url": "http://127.0.0.1:8000/doctors/", "rebook_url": "http://127.0.0.1:8000/doctors/dr-priya/"}),
        "appointment.doctor_on_vacation": (patient, {**on_appointment, "search_url": "http://127.0.0.1:8000/doctors/", "rebook_url": "http://127.0.0.1:8000/doctors/dr-priya/"}),
        "appointment.rebooking_offer": (patient, {**on_appointment, "paid": True, "expires_at": START - timedelta(hours=2), "proposals": [{"label": "Same doctor, after the time away", "doctor": doctor.display_name, "start": START + timedelta(days=7), "price_minor": 50000, "currency": "INR"}]}),
        "appointment.waitlist_offer": (patient, {**on_appointment, "minutes": 30}),
        "appointment.follow_up_recommended": (patient, {**on_appointment, "follow_up_on": date(2026, 11, 16)}),
        "appointment.reminder": (patient, {"appointment": appointment, "to_doctor": False, "other_zone": "Europe/London", "preparation": appointment.service.preparation_instructions, "appointment_url": URL}),
        "consultation.guest_invitation": (  # rendered in the inviter's language and zone: the guest has no account
            patient,
            {
                "invite": GuestInvite(name="Ravi Menon", relationship="interpreter"),
                "appointment": appointment,
                "doctor": doctor.display_name,
                "inviter": patient.display_name,
                "link": "http://127.0.0.1:8000/consultations/invitation/abc/",
                "zone": patient.timezone,
            },
        ),
        "consultation.starting": (patient, {"appointment": appointment, "to_doctor": False, "other_zone": "Europe/London", "room_url": "http://127.0.0.1:8000/consultations/abc/"}),
        "announcement.notice": (patient, {"announcement": Announcement(kind="maintenance", title="Planned maintenance on Sunday", body="Video rooms are closed from 02:00 to 03:00 UTC.")}),
        "announcement.feature": (patient, {"announcement": Announcement(kind="feature", title="Invite an interpreter", body="You can now invite a guest to your consultation.")}),
        "review.request": (patient, {"appointment": appointment, "doctor": doctor, "url": "http://127.0.0.1:8000/appointments/0000/review/", "days": 60}),
        "review.review_rejected": (patient, {"doctor": doctor, "reason": "It names another patient.", "url": "http://127.0.0.1:8000/appointments/0000/review/"}),
        "review.appeal_decided": (patient, {"doctor": doctor, "upheld": True, "reason": "The name was removed.", "url": "http://127.0.0.1:8000/appointments/0000/review/"}),
        "account.phone_code": (patient, {"code": "482913", "minutes": 10}),
        "record.access_granted": (doctor.user, {"grant": AccessGrant(patient=patient, doctor=doctor.user, expires_at=START + timedelta(days=1)), "scope": "part", "record_url": "http://127.0.0.1:8000/records/patients/0000/"}),
        "record.emergency_access_patient": (patient, {"access": EmergencyAccess(started_at=START, expires_at=START + timedelta(hours=4)), "doctor_name": doctor.display_name, "record_url": "http://127.0.0.1:8000/records/"}),
        "record.emergency_access_review": (doctor.user, {"access": EmergencyAccess(started_at=START, expires_at=START + timedelta(hours=4)), "doctor_name": doctor.display_name, "record_url": "http://127.0.0.1:8000/records/", "admin_url": "http://127.0.0.1:8000/admin/records/emergencyaccess/1/change/"}),
        "record.erasure_decided": (patient, {"erasure": None, "approved": True, "retention_days": 3650, "record_url": "http://127.0.0.1:8000/records/"}),
        "payment.receipt": (patient, {"invoice": invoice, "payment": payment, "verify_url": "http://127.0.0.1:8000/receipts/verify/abc/", "appointment_url": URL}),
        "payment.refund": (patient, {"refund": Refund(payment=payment, amount_minor=25000, reason="Cancelled 3 hours before", status="succeeded"), "payment": payment, "payments_url": "http://127.0.0.1:8000/payments/"}),
        "subscription.payment_failed": (patient, {**plan_context(patient), "attempt": 1}),
        "subscription.ended": (patient, {**plan_context(patient, status="expired"), "attempt": 4}),
    }
    return contexts[event]
