"""Vacation rebooking: when a doctor goes away over booked appointments, each patient is offered
times held for them — the same doctor after the vacation and the closest time of a colleague of
the same specialization — and takes one with one click, or cancels with a full refund."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta

import pytest
import time_machine
from allauth.mfa.models import Authenticator
from django.core import mail
from rest_framework.test import APIClient

from accounts.tests.factories import StaffFactory, UserFactory
from appointments import selectors, services
from appointments.models import Appointment, DoctorSchedule, RebookingOffer, WeeklyHours
from appointments.tests.test_api import as_user
from doctors.models import DoctorProfile
from doctors.tests.factories import DoctorProfileFactory, ServiceFactory, SpecializationFactory
from medimeet.core.errors import ApplicationError
from medimeet.core.models import AuditEvent

pytestmark = pytest.mark.django_db

NOW = datetime(2026, 11, 2, 7, 0, tzinfo=UTC)  # Monday
ORIGINAL = datetime(2026, 11, 5, 9, 0, tzinfo=UTC)  # Thursday, inside the vacation
AFTER_VACATION = datetime(2026, 11, 9, 9, 0, tzinfo=UTC)  # the doctor's first free slot after it
COLLEAGUE_CLOSEST = datetime(2026, 11, 5, 9, 30, tzinfo=UTC)  # 09:00 would clash with the original


@pytest.fixture(autouse=True)
def frozen_time():
    with time_machine.travel(NOW, tick=False) as traveller:
        yield traveller


def open_mornings(doctor) -> DoctorSchedule:
    schedule = DoctorSchedule.objects.create(doctor=doctor, timezone="UTC", buffer_before_minutes=0, buffer_after_minutes=0, min_notice_minutes=60, max_days_ahead=30)
    WeeklyHours.objects.bulk_create([WeeklyHours(schedule=schedule, weekday=d, start_time=time(9), end_time=time(12)) for d in range(7)])
    return schedule


def paid_booking(service, patient, start) -> Appointment:
    hold = services.appointment_hold(patient=patient, service=service, start=start)
    return services.appointment_mark_paid(appointment=services.appointment_confirm_details(appointment=hold, patient=patient, reason="Palpitations after exercise"))


@pytest.fixture
def practice():
    cardiology = SpecializationFactory(name="Cardiology")
    doctor = DoctorProfileFactory(primary_specialization=cardiology, user__first_name="Priya", user__last_name="Raman", title="Dr.")
    colleague = DoctorProfileFactory(primary_specialization=cardiology, user__first_name="Arjun", user__last_name="Mehta", title="Dr.")
    elsewhere = DoctorProfileFactory(user__first_name="Other", user__last_name="Field")  # another specialization
    for each in (doctor, colleague, elsewhere):
        open_mornings(each)
    service = ServiceFactory(doctor=doctor, duration_minutes=30, price_minor=50000)
    colleague_service = ServiceFactory(doctor=colleague, duration_minutes=30, price_minor=60000)
    ServiceFactory(doctor=colleague, name="Long review", duration_minutes=60)  # another duration: never proposed
    ServiceFactory(doctor=elsewhere, duration_minutes=30)
    patient = UserFactory(first_name="Asha", last_name="Verma", timezone="Europe/London")
    original = paid_booking(service, patient, ORIGINAL)
    return {"doctor": doctor, "colleague": colleague, "service": service, "colleague_service": colleague_service, "patient": patient, "original": original}


@pytest.fixture
def offered(practice, django_capture_on_commit_callbacks):
    mail.outbox.clear()
    with django_capture_on_commit_callbacks(execute=True):
        services.doctor_vacation_set(doctor=practice["doctor"], first_day=date(2026, 11, 4), last_day=date(2026, 11, 8), by=practice["doctor"].user)
    return RebookingOffer.objects.get(appointment=practice["original"])


def state(*appointments) -> list[tuple]:
    return [(a.status, a.start) for a in Appointment.objects.filter(pk__in=[a.pk for a in appointments]).order_by("pk")]


# --- Making the offer ---------------------------------------------------------------------------


def test_vacation_holds_a_later_time_with_the_same_doctor_and_the_closest_time_with_a_colleague(practice, offered):
    same, other = offered.same_doctor_hold, offered.other_doctor_hold

    assert (same.doctor, same.service, same.start, same.status) == (practice["doctor"], practice["service"], AFTER_VACATION, "held")
    assert (other.doctor, other.service, other.start, other.status) == (practice["colleague"], practice["colleague_service"], COLLEAGUE_CLOSEST, "held")
    assert same.hold_expires_at == other.hold_expires_at == offered.expires_at == NOW + timedelta(hours=48)
    assert (offered.status, offered.original_start) == ("open", ORIGINAL)
    assert [m.to for m in mail.outbox] == [[practice["patient"].email]]
    body = mail.outbox[0].body
    assert "Monday 9 November 2026, 09:00 (Europe/London)" in body and "Dr. Arjun Mehta, Thursday 5 November 2026, 09:30 (Europe/London) (₹600.00)" in body
    assert f"/appointments/{practice['original'].public_id}/" in body
    assert AuditEvent.objects.filter(action="rebooking_offer.made").count() == 1


def test_the_offer_never_outlasts_the_original_appointment(practice, settings, django_capture_on_commit_callbacks):
    settings.VACATION_OFFER_HOURS = 24 * 7
    with django_capture_on_commit_callbacks(execute=True):
        services.doctor_vacation_set(doctor=practice["doctor"], first_day=date(2026, 11, 4), last_day=date(2026, 11, 8), by=practice["doctor"].user)

    assert RebookingOffer.objects.get().expires_at == ORIGINAL


def test_making_the_offer_again_changes_nothing(practice, offered):
    again = services.rebooking_offer_make(appointment_id=practice["original"].pk)

    assert again is None
    assert RebookingOffer.objects.count() == 1
    assert Appointment.objects.filter(status="held").count() == 2


def test_without_a_matching_colleague_only_the_same_doctor_is_proposed(practice, django_capture_on_commit_callbacks):
    practice["colleague_service"].is_active = False
    practice["colleague_service"].save()

    with django_capture_on_commit_callbacks(execute=True):
        services.doctor_vacation_set(doctor=practice["doctor"], first_day=date(2026, 11, 4), last_day=date(2026, 11, 8), by=practice["doctor"].user)

    offer = RebookingOffer.objects.get()
    assert offer.same_doctor_hold.start == AFTER_VACATION and offer.other_doctor_hold is None


def test_with_nothing_to_propose_the_patient_is_told_they_may_move_or_cancel_for_free(practice, django_capture_on_commit_callbacks):
    DoctorProfile.objects.filter(pk=practice["colleague"].pk).update(verification_status="suspended")
    DoctorSchedule.objects.filter(doctor=practice["doctor"]).update(max_days_ahead=5)  # nothing bookable after the vacation
    mail.outbox.clear()

    with django_capture_on_commit_callbacks(execute=True):
        services.doctor_vacation_set(doctor=practice["doctor"], first_day=date(2026, 11, 4), last_day=date(2026, 11, 8), by=practice["doctor"].user)

    assert not RebookingOffer.objects.exists()
    assert Appointment.objects.filter(status="held").count() == 0
    assert [m.subject for m in mail.outbox] == [f"MediMeet: {practice['doctor'].display_name} is away on the day of your appointment"]


def test_proposed_times_are_not_listed_as_bookings_of_their_own(practice, offered, django_assert_max_num_queries):
    api = APIClient()
    api.force_authenticate(practice["patient"])

    with django_assert_max_num_queries(3):
        listed = api.get("/api/v1/appointments/").json()

    assert list(selectors.appointments_for(user=practice["patient"], role="patient")) == [practice["original"]]
    assert [a["id"] for a in listed["results"]] == [str(practice["original"].public_id)]


def test_a_proposed_time_cannot_be_confirmed_on_its_own(practice, offered):
    with pytest.raises(ApplicationError) as excinfo:
        services.appointment_confirm_details(appointment=offered.other_doctor_hold, patient=practice["patient"], reason="Both please")

    assert excinfo.value.code == "APPT_004"
    assert state(offered.other_doctor_hold) == [("held", COLLEAGUE_CLOSEST)]


# --- Answering it -------------------------------------------------------------------------------


def test_moving_to_the_same_doctor_keeps_the_paid_booking_and_releases_the_colleagues_time(practice, offered, django_capture_on_commit_callbacks):
    original = practice["original"]
    mail.outbox.clear()

    with django_capture_on_commit_callbacks(execute=True):
        moved = services.rebooking_offer_accept(offer=offered, patient=practice["patient"], choice="same_doctor")
    again = services.rebooking_offer_accept(offer=offered, patient=practice["patient"], choice="same_doctor")  # a double click

    original.refresh_from_db()
    offered.refresh_from_db()
    assert moved.pk == again.pk == original.pk
    assert (original.status, original.start, original.end, original.price_minor, original.reschedule_count) == ("confirmed", AFTER_VACATION, AFTER_VACATION + timedelta(minutes=30), 50000, 0)
    assert state(offered.same_doctor_hold, offered.other_doctor_hold) == [("cancelled", AFTER_VACATION), ("cancelled", COLLEAGUE_CLOSEST)]
    assert (offered.status, offered.choice, offered.result_id) == ("accepted", "same_doctor", original.pk)
    colleague_slots = selectors.free_slots(doctor=practice["colleague"], service=practice["colleague_service"], window_start=ORIGINAL, window_end=ORIGINAL + timedelta(hours=3))
    assert COLLEAGUE_CLOSEST in [slot.start for slot in colleague_slots]
    assert sorted(m.to[0] for m in mail.outbox) == sorted([practice["patient"].email, practice["doctor"].user.email])
    assert {m.subject for m in mail.outbox} == {"MediMeet: Your appointment has moved to a new time", "MediMeet: An appointment with you has moved"}


def test_booking_the_colleague_cancels_with_a_full_refund_and_books_the_held_time(practice, offered, monkeypatch, django_capture_on_commit_callbacks):
    refunds = []
    monkeypatch.setattr(services, "refund_for_cancellation", lambda **kwargs: refunds.append(kwargs))
    original = practice["original"]

    with django_capture_on_commit_callbacks(execute=True):
        booking = services.rebooking_offer_accept(offer=offered, patient=practice["patient"], choice="other_doctor")

    original.refresh_from_db()
    assert (original.status, original.cancelled_by, original.refund_percent) == ("cancelled", "doctor", 100)
    assert refunds == [{"appointment_id": original.pk, "percent": 100}]
    assert booking.pk == offered.other_doctor_hold_id
    assert (booking.status, booking.doctor, booking.start, booking.price_minor, booking.reason) == ("pending_payment", practice["colleague"], COLLEAGUE_CLOSEST, 60000, "Palpitations after exercise")
    assert state(offered.same_doctor_hold) == [("cancelled", AFTER_VACATION)]
    paid = services.appointment_mark_paid(appointment=booking)  # then the normal payment flow
    assert paid.status == "confirmed"


def test_cancelling_from_the_offer_refunds_in_full_and_releases_both_times(practice, offered, frozen_time):
    DoctorSchedule.objects.filter(doctor=practice["doctor"]).update(cancellation_policy=[{"min_hours": 72, "refund_percent": 100}, {"min_hours": 0, "refund_percent": 0}])
    frozen_time.move_to(NOW + timedelta(hours=20))  # 37 h before: the policy alone would refund nothing

    cancelled = services.rebooking_offer_accept(offer=offered, patient=practice["patient"], choice="cancel")

    offered.refresh_from_db()
    assert (cancelled.pk, cancelled.status, cancelled.refund_percent) == (practice["original"].pk, "cancelled", 100)
    assert state(offered.same_doctor_hold, offered.other_doctor_hold) == [("cancelled", AFTER_VACATION), ("cancelled", COLLEAGUE_CLOSEST)]
    assert (offered.status, offered.choice) == ("declined", "cancel")


def test_the_offer_lapses_and_its_times_are_released(practice, offered, frozen_time):
    frozen_time.shift(timedelta(hours=48, minutes=1))
    services.holds_release_expired()

    with pytest.raises(ApplicationError) as excinfo:
        services.rebooking_offer_accept(offer=offered, patient=practice["patient"], choice="same_doctor")

    assert excinfo.value.code == "APPT_009"
    assert selectors.rebooking_offer_open(appointment=practice["original"]) is None
    assert state(practice["original"], offered.same_doctor_hold, offered.other_doctor_hold) == [("confirmed", ORIGINAL), ("expired", AFTER_VACATION), ("expired", COLLEAGUE_CLOSEST)]


def test_cancelling_the_appointment_another_way_closes_the_offer_and_releases_its_times(practice, offered):
    services.appointment_cancel(appointment=practice["original"], by=practice["patient"], reason="Feeling better")

    offered.refresh_from_db()
    assert offered.status == "closed"
    assert state(offered.same_doctor_hold, offered.other_doctor_hold) == [("cancelled", AFTER_VACATION), ("cancelled", COLLEAGUE_CLOSEST)]


def test_an_unknown_choice_is_refused_and_changes_nothing(practice, offered):
    with pytest.raises(ApplicationError) as excinfo:
        services.rebooking_offer_accept(offer=offered, patient=practice["patient"], choice="both")

    assert (excinfo.value.code, list(excinfo.value.fields)) == ("REQ_001", ["choice"])
    assert state(practice["original"], offered.same_doctor_hold, offered.other_doctor_hold) == [("confirmed", ORIGINAL), ("held", AFTER_VACATION), ("held", COLLEAGUE_CLOSEST)]


# --- Who may answer: the API and the page, over the usual cast ----------------------------------


def test_patient_reads_the_offer_and_accepts_it_through_the_api(practice, offered):
    api = as_user(practice["patient"])
    url = f"/api/v1/appointments/{practice['original'].public_id}/rebooking/"

    offer = api.get(url)
    accepted = api.post(url, {"choice": "same_doctor"}, format="json")
    after = api.get(url)

    assert offer.status_code == 200
    body = offer.json()
    assert body["expires_at"] == "2026-11-04T07:00:00Z" and body["cancel_refund_percent"] == 100
    assert [(p["choice"], p["start"], p["doctor"]["name"], p["price"]["amount_minor"]) for p in body["proposals"]] == [
        ("same_doctor", "2026-11-09T09:00:00Z", "Dr. Priya Raman", 0),
        ("other_doctor", "2026-11-05T09:30:00Z", "Dr. Arjun Mehta", 60000),
    ]
    assert accepted.status_code == 200 and accepted.json()["start"] == "2026-11-09T09:00:00Z"
    assert after.status_code == 404 and after.json()["error"]["code"] == "APPT_009"


@pytest.mark.parametrize("body", [{}, {"choice": "maybe"}, {"choice": ["same_doctor"]}])
def test_bad_rebooking_input_is_refused_with_the_envelope(practice, offered, body):
    response = as_user(practice["patient"]).post(f"/api/v1/appointments/{practice['original'].public_id}/rebooking/", body, format="json")

    assert response.status_code == 400 and response.json()["error"]["code"] == "REQ_001" and "choice" in response.json()["error"]["fields"]
    assert state(practice["original"]) == [("confirmed", ORIGINAL)]


@pytest.mark.parametrize("who", ["other_patient", "doctor", "colleague", "staff", "anonymous"])
def test_only_the_patient_may_see_or_answer_the_offer(practice, offered, client, who):
    user = {"other_patient": UserFactory(), "doctor": practice["doctor"].user, "colleague": practice["colleague"].user, "staff": StaffFactory(), "anonymous": None}[who]
    api, original = as_user(user), practice["original"]
    mail.outbox.clear()
    if user is not None:
        if user.is_staff:
            Authenticator.objects.create(user=user, type=Authenticator.Type.TOTP, data={"secret": "unused"})
        client.force_login(user)

    responses = [api.get(f"/api/v1/appointments/{original.public_id}/rebooking/")] + [
        api.post(f"/api/v1/appointments/{original.public_id}/rebooking/", {"choice": choice}, format="json") for choice in ("same_doctor", "other_doctor", "cancel")
    ]
    page = client.post(f"/appointments/{original.public_id}/rebooking/", {"choice": "other_doctor"})

    assert {r.status_code for r in responses} == ({401} if user is None else {404})
    if user is not None:
        assert {r.json()["error"]["code"] for r in responses} == {"APPT_006"}
    assert page.status_code == (302 if user is None else 404)
    assert state(original, offered.same_doctor_hold, offered.other_doctor_hold) == [("confirmed", ORIGINAL), ("held", AFTER_VACATION), ("held", COLLEAGUE_CLOSEST)]
    assert RebookingOffer.objects.get().status == "open"
    assert mail.outbox == []


def test_patient_sees_the_offer_on_the_appointment_page_and_books_the_colleague_in_one_click(practice, offered, client):
    client.force_login(practice["patient"])
    page_url = f"/appointments/{practice['original'].public_id}/"

    page = client.get(page_url)
    proposal_page = client.get(f"/appointments/{offered.other_doctor_hold.public_id}/")
    response = client.post(f"/appointments/{practice['original'].public_id}/rebooking/", {"choice": "other_doctor"}, follow=True)

    html = page.content.decode()
    assert "Dr. Priya Raman is away on the day of this appointment" in html
    assert 'name="choice" value="same_doctor"' in html and 'name="choice" value="other_doctor"' in html and 'name="choice" value="cancel"' in html
    assert "Monday 9 November, 09:00–09:30" in html and "Thursday 5 November, 09:30–10:00" in html
    assert "The new booking costs <strong>₹600.00</strong>, a different fee from this one," in html
    assert proposal_page.status_code == 302 and proposal_page["Location"] == page_url
    assert response.redirect_chain[-1][0] == f"/appointments/{offered.other_doctor_hold.public_id}/"
    assert "Your appointment with Dr. Priya Raman is cancelled with a full refund" in response.content.decode()
    assert "Awaiting payment" in response.content.decode()
