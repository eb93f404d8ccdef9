"""The doctor's consultation notes and follow-up recommendation: encrypted, audited, readable by
the appointment's doctor and patient only; the patient books the follow-up with one click."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta

import pytest
import time_machine
from django.core import mail
from django.db import connection

from accounts.tests.factories import StaffFactory, UserFactory, staff_member
from appointments import services
from appointments.models import Appointment, ClinicalNote, DoctorSchedule, WeeklyHours
from appointments.tests.test_api import as_user
from doctors.tests.factories import DoctorProfileFactory, ServiceFactory
from medimeet.core import roles
from medimeet.core.errors import ApplicationError
from medimeet.core.models import AuditEvent

pytestmark = pytest.mark.django_db

NOW = datetime(2026, 11, 2, 10, 0, tzinfo=UTC)  # Monday, during the consultation
CONSULTATION = datetime(2026, 11, 2, 9, 30, tzinfo=UTC)
NOTES = "BP 150/95. Start amlodipine 5 mg. Recheck in two weeks."


@pytest.fixture(autouse=True)
def frozen_time():
    with time_machine.travel(NOW, tick=False) as traveller:
        yield traveller


@pytest.fixture
def visit():
    doctor = DoctorProfileFactory(user__first_name="Priya", user__last_name="Raman", title="Dr.")
    schedule = DoctorSchedule.objects.create(doctor=doctor, timezone="UTC", buffer_after_minutes=0, min_notice_minutes=60, max_days_ahead=60)
    WeeklyHours.objects.bulk_create([WeeklyHours(schedule=schedule, weekday=d, start_time=time(9), end_time=time(12)) for d in range(5)])
    service = ServiceFactory(doctor=doctor, name="Video consultation", duration_minutes=30, price_minor=50000, free_follow_up_days=30)
    patient = UserFactory(first_name="Asha", last_name="Verma", timezone="Europe/London")
    appointment = Appointment.objects.create(
        doctor=doctor, patient=patient, service=service, start=CONSULTATION, end=CONSULTATION + timedelta(minutes=30),
        blocked_start=CONSULTATION, blocked_end=CONSULTATION + timedelta(minutes=30), status="completed", price_minor=50000, currency="INR", reason="High readings at home",
    )
    return {"doctor": doctor, "service": service, "patient": patient, "appointment": appointment}


def recommend(visit, on=date(2026, 11, 16), **kwargs) -> ClinicalNote:
    return services.follow_up_recommend(appointment=visit["appointment"], by=visit["doctor"].user, on=on, **kwargs)


# --- Services -------------------------------------------------------------------------------------


def test_notes_are_encrypted_at_rest_and_every_write_and_read_is_audited(visit):
    appointment = visit["appointment"]

    services.clinical_note_write(appointment=appointment, by=visit["doctor"].user, text=NOTES)
    read = services.clinical_note_read(appointment=appointment, by=visit["patient"])

    with connection.cursor() as cursor:
        cursor.execute("SELECT text FROM appointments_clinicalnote")
        stored = cursor.fetchone()[0]
    assert read.text == NOTES
    assert "amlodipine" not in stored and stored.startswith("gAAAA")
    written, seen = AuditEvent.objects.get(action="clinical_note.written"), AuditEvent.objects.get(action="clinical_note.read")
    assert (written.actor, written.subject_user, seen.actor) == (visit["doctor"].user, visit["patient"], visit["patient"])
    assert "amlodipine" not in str(written.metadata) and written.metadata["length"] == len(NOTES)


def test_notes_wait_for_the_consultation_to_start(visit):
    Appointment.objects.filter(pk=visit["appointment"].pk).update(status="confirmed")
    visit["appointment"].refresh_from_db()

    with pytest.raises(ApplicationError) as excinfo:
        services.clinical_note_write(appointment=visit["appointment"], by=visit["doctor"].user, text=NOTES)

    assert excinfo.value.code == "APPT_004"
    assert not ClinicalNote.objects.exists()


@pytest.mark.parametrize("who", ["patient", "other_doctor", "staff"])
def test_only_the_appointments_doctor_writes_notes(visit, who):
    user = {"patient": visit["patient"], "other_doctor": DoctorProfileFactory().user, "staff": StaffFactory()}[who]

    with pytest.raises(ApplicationError) as excinfo:
        services.clinical_note_write(appointment=visit["appointment"], by=user, text="Mine")

    assert excinfo.value.code == "APPT_011"
    assert not ClinicalNote.objects.exists() and not AuditEvent.objects.filter(action__startswith="clinical_note").exists()


def test_staff_never_read_clinical_content(visit):
    services.clinical_note_write(appointment=visit["appointment"], by=visit["doctor"].user, text=NOTES)

    with pytest.raises(ApplicationError) as excinfo:
        services.clinical_note_read(appointment=visit["appointment"], by=StaffFactory())

    assert excinfo.value.code == "APPT_011"
    assert not AuditEvent.objects.filter(action="clinical_note.read").exists()


def test_recommending_a_follow_up_emails_the_patient_a_link_without_clinical_content(visit, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        note = recommend(visit, note="Bring your home readings.")

    assert (note.follow_up_on, note.follow_up_service, note.follow_up_note) == (date(2026, 11, 16), visit["service"], "Bring your home readings.")
    assert [m.to for m in mail.outbox] == [[visit["patient"].email]]
    assert mail.outbox[0].subject == "MediMeet: Dr. Priya Raman recommends a follow-up"
    assert "Monday 16 November 2026" in mail.outbox[0].body and f"/appointments/{visit['appointment'].public_id}/" in mail.outbox[0].body
    assert "home readings" not in mail.outbox[0].body


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"on": date(2026, 11, 1)}, "on"),
        ({"on": date(2027, 11, 3)}, "on"),
        ({"note": "x" * 2001}, "note"),
        ({"service": "another doctor's"}, "service"),
    ],
)
def test_follow_up_recommendation_rules(visit, kwargs, field):
    if kwargs.get("service"):
        kwargs["service"] = ServiceFactory()

    with pytest.raises(ApplicationError) as excinfo:
        recommend(visit, **kwargs)

    assert (excinfo.value.code, list(excinfo.value.fields)) == ("REQ_001", [field])
    assert not ClinicalNote.objects.exists() and mail.outbox == []


def test_book_your_follow_up_holds_the_first_free_time_from_the_date_free_inside_the_window(visit):
    recommend(visit)
    Appointment.objects.create(  # someone else has the first morning slot
        doctor=visit["doctor"], patient=UserFactory(), service=visit["service"], start=datetime(2026, 11, 16, 9, 0, tzinfo=UTC), end=datetime(2026, 11, 16, 9, 30, tzinfo=UTC),
        blocked_start=datetime(2026, 11, 16, 9, 0, tzinfo=UTC), blocked_end=datetime(2026, 11, 16, 9, 30, tzinfo=UTC), status="confirmed", price_minor=50000, currency="INR",
    )

    hold = services.follow_up_book(appointment=visit["appointment"], patient=visit["patient"])
    again = services.follow_up_book(appointment=visit["appointment"], patient=visit["patient"])  # a double click

    assert (hold.status, hold.start, hold.service, hold.price_minor) == ("held", datetime(2026, 11, 16, 9, 30, tzinfo=UTC), visit["service"], 0)
    assert again.pk == hold.pk
    assert ClinicalNote.objects.get().follow_up_appointment == hold
    booked = services.appointment_confirm_details(appointment=hold, patient=visit["patient"], reason="Follow-up on blood pressure")
    assert booked.status == "confirmed"  # the free follow-up needs no payment


def test_booking_a_follow_up_needs_a_recommendation_and_the_patient(visit):
    with pytest.raises(ApplicationError) as none_yet:
        services.follow_up_book(appointment=visit["appointment"], patient=visit["patient"])
    recommend(visit)
    with pytest.raises(ApplicationError) as not_theirs:
        services.follow_up_book(appointment=visit["appointment"], patient=UserFactory())

    assert (none_yet.value.code, not_theirs.value.code) == ("APPT_010", "APPT_006")
    assert Appointment.objects.count() == 1


# --- API over the usual cast ----------------------------------------------------------------------


def test_doctor_writes_notes_and_a_follow_up_and_the_patient_reads_and_books_it_through_the_api(visit):
    base = f"/api/v1/appointments/{visit['appointment'].public_id}"
    doctor, patient = as_user(visit["doctor"].user), as_user(visit["patient"])

    written = doctor.put(f"{base}/notes/", {"text": NOTES}, format="json")
    recommended = doctor.post(f"{base}/follow-up/", {"on": "2026-11-16", "note": "Bring readings"}, format="json")
    read = patient.get(f"{base}/notes/")
    booked = patient.post(f"{base}/follow-up/book/")

    assert written.status_code == 200 and written.json()["text"] == NOTES
    assert recommended.status_code == 200
    assert read.status_code == 200
    assert read.json()["follow_up"] == {
        "on": "2026-11-16", "note": "Bring readings", "appointment": None,
        "service": {"id": str(visit["service"].public_id), "name": "Video consultation", "duration_minutes": 30, "mode": "video"},
    }
    assert booked.status_code == 201 and (booked.json()["status"], booked.json()["start"]) == ("held", "2026-11-16T09:00:00Z")
    assert patient.get(f"{base}/notes/").json()["follow_up"]["appointment"] == booked.json()["id"]


@pytest.mark.parametrize("who", ["other_patient", "other_doctor", "staff", "anonymous"])
def test_nobody_else_reads_or_writes_notes_or_follow_ups(visit, who, django_capture_on_commit_callbacks):
    services.clinical_note_write(appointment=visit["appointment"], by=visit["doctor"].user, text=NOTES)
    recommend(visit)
    user = {"other_patient": UserFactory(), "other_doctor": DoctorProfileFactory().user, "staff": staff_member(roles.SUPPORT), "anonymous": None}[who]
    api, base = as_user(user), f"/api/v1/appointments/{visit['appointment'].public_id}"
    audits = AuditEvent.objects.count()

    with django_capture_on_commit_callbacks(execute=True):
        responses = [
            api.get(f"{base}/notes/"),
            api.put(f"{base}/notes/", {"text": "Overwritten"}, format="json"),
            api.post(f"{base}/follow-up/", {"on": "2026-11-20"}, format="json"),
            api.post(f"{base}/follow-up/book/"),
        ]

    expected = {"other_patient": [404] * 4, "other_doctor": [404] * 4, "staff": [403, 403, 403, 404], "anonymous": [401] * 4}[who]
    assert [r.status_code for r in responses] == expected
    if who == "staff":
        assert [r.json()["error"]["code"] for r in responses] == ["APPT_011", "APPT_011", "APPT_011", "APPT_006"]
        assert "amlodipine" not in responses[0].content.decode()
    note = ClinicalNote.objects.get()
    assert (note.text, note.follow_up_on, note.follow_up_appointment) == (NOTES, date(2026, 11, 16), None)
    assert Appointment.objects.count() == 1 and mail.outbox == []
    assert AuditEvent.objects.count() == audits


def test_the_patient_cannot_write_and_the_doctor_cannot_book_for_them(visit):
    base = f"/api/v1/appointments/{visit['appointment'].public_id}"

    patient_writes = as_user(visit["patient"]).put(f"{base}/notes/", {"text": "All fine"}, format="json")
    patient_recommends = as_user(visit["patient"]).post(f"{base}/follow-up/", {"on": "2026-11-20"}, format="json")
    doctor_books = as_user(visit["doctor"].user).post(f"{base}/follow-up/book/")

    assert [r.status_code for r in (patient_writes, patient_recommends, doctor_books)] == [403, 403, 404]
    assert not ClinicalNote.objects.exists() and Appointment.objects.count() == 1


@pytest.mark.parametrize(
    ("path", "body", "field"),
    [
        ("notes/", {"text": ["list"]}, "text"),
        ("notes/", {}, "text"),
        ("follow-up/", {"on": "in two weeks"}, "on"),
        ("follow-up/", {"on": "2026-11-16", "service": "not-a-uuid"}, "service"),
        ("follow-up/", {"on": "2026-10-01"}, "on"),
    ],
)
def test_bad_note_and_follow_up_input_is_refused_with_the_envelope(visit, path, body, field):
    api = as_user(visit["doctor"].user)
    url = f"/api/v1/appointments/{visit['appointment'].public_id}/{path}"

    response = api.put(url, body, format="json") if path == "notes/" else api.post(url, body, format="json")

    assert response.status_code == 400
    assert response.json()["error"]["code"] == "REQ_001" and field in response.json()["error"]["fields"]
    assert not ClinicalNote.objects.exists()


# --- Pages ----------------------------------------------------------------------------------------


def test_doctor_writes_notes_and_recommends_a_follow_up_on_the_appointment_page(client, visit):
    client.force_login(visit["doctor"].user)
    url = f"/appointments/{visit['appointment'].public_id}/"

    page = client.get(url)
    saved = client.post(f"{url}notes/", {"text": NOTES})
    bad = client.post(f"{url}follow-up/", {"on": "2026-10-01", "service": str(visit["service"].public_id)})
    recommended = client.post(f"{url}follow-up/", {"on": "2026-11-16", "service": str(visit["service"].public_id), "note": "Bring readings"})

    assert 'action="/appointments/{}/notes/"'.format(visit["appointment"].public_id) in page.content.decode()
    assert saved.status_code == 302 and saved["Location"].endswith("#notes-title")
    assert bad.status_code == 400 and "on" in bad.context["follow_up_form"].errors
    assert recommended.status_code == 302
    assert ClinicalNote.objects.get().follow_up_on == date(2026, 11, 16)
    assert "Recommended from <strong>Monday 16 November 2026</strong>" in client.get(url).content.decode()


def test_patient_reads_the_notes_and_books_the_follow_up_with_one_click(client, visit):
    services.clinical_note_write(appointment=visit["appointment"], by=visit["doctor"].user, text=NOTES)
    recommend(visit, note="Bring readings")
    client.force_login(visit["patient"])
    url = f"/appointments/{visit['appointment'].public_id}/"

    page = client.get(url).content.decode()
    response = client.post(f"{url}follow-up/book/")

    assert "Notes from Dr. Priya Raman" in page and "amlodipine" in page and "Book your follow-up" in page
    hold = Appointment.objects.get(status="held")
    assert response.status_code == 302 and response["Location"] == f"/appointments/{hold.public_id}/"
    assert "Complete your booking" in client.get(response["Location"]).content.decode()
    assert "Finish booking" in client.get(url).content.decode()


def test_staff_see_the_appointment_but_not_its_clinical_content(client, visit):
    services.clinical_note_write(appointment=visit["appointment"], by=visit["doctor"].user, text=NOTES)
    recommend(visit)
    client.force_login(staff_member(roles.SUPPORT))

    page = client.get(f"/appointments/{visit['appointment'].public_id}/")
    write = client.post(f"/appointments/{visit['appointment'].public_id}/notes/", {"text": "x"})

    assert page.status_code == 200
    assert "amlodipine" not in page.content.decode() and "private to the doctor and the patient" in page.content.decode()
    assert write.status_code == 404 and ClinicalNote.objects.get().text == NOTES
