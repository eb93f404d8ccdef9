"""Step 6: a Hindi-speaking patient and doctor (user.language="hi") get their main pages in
Hindi: each page's main content holds Devanagari and none of a few English phrases we know the
page translates. English rendering is covered by every other page test."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, time, timedelta

import pytest
import time_machine
from django.test import Client

from accounts.tests.factories import UserFactory
from appointments import services as appointment_services
from appointments.models import DoctorSchedule, WeeklyHours
from consultations.models import Consultation
from doctors.tests.factories import DoctorProfileFactory, ServiceFactory

pytestmark = pytest.mark.django_db

BOOKED_AT = datetime(2026, 11, 2, 7, 0, tzinfo=UTC)
SLOT = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)  # the room is open 08:45–10:00
INSIDE = SLOT - timedelta(minutes=5)
DEVANAGARI = re.compile(r"[\u0900-\u097F]{2,}")


@pytest.fixture
def clock():
    with time_machine.travel(BOOKED_AT, tick=False) as traveller:
        yield traveller


@pytest.fixture
def doctor():
    doctor = DoctorProfileFactory(user__first_name="Priya", user__last_name="Raman", user__language="hi", title="Dr.")
    schedule = DoctorSchedule.objects.create(
        doctor=doctor, timezone="UTC", buffer_before_minutes=0, buffer_after_minutes=0, min_notice_minutes=60, max_days_ahead=30
    )
    WeeklyHours.objects.bulk_create([WeeklyHours(schedule=schedule, weekday=d, start_time=time(9), end_time=time(11)) for d in range(7)])
    return doctor


@pytest.fixture
def patient():
    return UserFactory(first_name="Asha", last_name="Verma", timezone="UTC", language="hi")


@pytest.fixture
def appointment(clock, doctor, patient):
    service = ServiceFactory(doctor=doctor, name="Video consultation", duration_minutes=30, price_minor=50000)
    hold = appointment_services.appointment_hold(patient=patient, service=service, start=SLOT)
    booked = appointment_services.appointment_confirm_details(appointment=hold, patient=patient, reason="Persistent cough")
    return appointment_services.appointment_mark_paid(appointment=booked)


def signed_in(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def main_content(html: str) -> str:
    """The page's <main>, without scripts: the base layout (already translated) is left out."""
    match = re.search(r"<main\b.*?</main>", html, re.S)
    body = match.group(0) if match else html
    return re.sub(r"<script\b.*?</script>", "", body, flags=re.S)


def assert_hindi(response, *english: str) -> None:
    assert response.status_code == 200
    html = main_content(response.content.decode())
    assert DEVANAGARI.search(html), "no Devanagari in the main content"
    for phrase in english:
        assert phrase not in html, f"left in English: {phrase!r}"


def test_a_hindi_patient_gets_their_pages_in_hindi(appointment, patient, doctor):
    client = signed_in(patient)
    public_id = appointment.public_id

    assert_hindi(client.get("/account/"))
    assert_hindi(client.get("/doctors/"), "Verified doctors, ready to see you by video", "Apply filters", "Fee per consultation")
    assert_hindi(client.get(f"/doctors/{doctor.slug}/"), "Services and fees", "Licence verified")
    assert_hindi(client.get(f"/doctors/{doctor.slug}/book/"), "Book a consultation", "How booking works", "Day and time")
    assert_hindi(client.get("/appointments/"), "My appointments", "Your consultations, booked and past.", "Filter appointments")
    assert_hindi(client.get(f"/appointments/{public_id}/"), "Visit details", "Reason for visit", "Cancellation policy")
    assert_hindi(client.get("/payments/"), "Payments and receipts", "Every payment you made, its receipt, and any refund.")
    assert_hindi(client.get("/records/"), "My medical record", "Who can see my record", "Access log")
    assert_hindi(client.get("/notifications/preferences/"))


def test_a_hindi_patient_gets_the_consultation_room_in_hindi(appointment, patient, clock):
    clock.move_to(INSIDE)
    room = Consultation.objects.get(appointment=appointment).room

    assert_hindi(signed_in(patient).get(f"/consultations/{room}/"), "Join consultation", "End for everyone", "Invite a guest")


def test_a_hindi_doctor_gets_the_portal_in_hindi(appointment, doctor):
    client = signed_in(doctor.user)

    assert_hindi(client.get("/portal/"), "Licence verification", "Public listing", "Your services")
    assert_hindi(client.get("/portal/profile/"), "Your professional profile", "Save profile")
    assert_hindi(client.get("/portal/services/"), "All services")
    assert_hindi(client.get("/portal/documents/"), "Your documents", "Upload a document")
    assert_hindi(client.get("/portal/availability/"), "Weekly hours", "Save availability", "Days off and special hours")
    assert_hindi(client.get("/appointments/"), "Consultations patients booked with you.", "Week view")
    assert_hindi(client.get(f"/appointments/{appointment.public_id}/"), "Consultation notes", "Save notes")


def assert_phrases(response, hindi: list[str], english: list[str]) -> None:
    assert response.status_code == 200
    html = main_content(response.content.decode())
    for phrase in hindi:
        assert phrase in html, f"missing Hindi: {phrase!r}"
    for phrase in english:
        assert phrase not in html, f"left in English: {phrase!r}"


def test_sentences_with_names_dates_and_counts_are_translated_whole(appointment, patient, doctor, clock):
    """Sentences built around a template variable (a name, a date, a count) are one msgid each,
    so Hindi word order applies: the name moves inside the sentence, plurals follow the count."""
    client = signed_in(patient)

    assert_phrases(
        client.get(f"/doctors/{doctor.slug}/"),
        hindi=[f"{doctor.display_name} से परामर्श लें"],
        english=[f"Consult {doctor.display_name}"],
    )
    assert_phrases(
        client.get(f"/appointments/{appointment.public_id}/"),
        hindi=["आप अपॉइंटमेंट का समय अधिकतम"],
        english=["You can move the appointment up to"],
    )
    clock.move_to(INSIDE)  # a fresh sign-in: the first session has idled out by now
    room = Consultation.objects.get(appointment=appointment).room
    assert_phrases(
        signed_in(patient).get(f"/consultations/{room}/"),
        hindi=[f"{doctor.display_name} के साथ परामर्श", f"{doctor.display_name} को संदेश"],
        english=[f"Consultation with {doctor.display_name}", f"Message to {doctor.display_name}"],
    )

    doctor_client = signed_in(doctor.user)
    assert_phrases(
        doctor_client.get(f"/appointments/{appointment.public_id}/"),
        hindi=[f"{patient.display_name} की एलर्जी, दवाएँ, जाँच के नतीजे और दस्तावेज़"],
        english=[f"Allergies, medications, results and documents of {patient.display_name}"],
    )


# --- What the code says, not only the templates: flash messages, form errors, API errors, scripts.


def test_a_hindi_patient_gets_the_cancellation_flash_message_in_hindi(appointment, patient):
    client = signed_in(patient)

    response = client.post(f"/appointments/{appointment.public_id}/cancel/", {"reason": "I feel better"}, follow=True)

    appointment.refresh_from_db()
    assert appointment.status == "cancelled"
    html = response.content.decode()
    assert "अपॉइंटमेंट रद्द कर दिया गया है। 50 % का रिफ़ंड भेजा जा रहा है।" in html  # within 24 hours of the start
    assert "The appointment is cancelled" not in html


def test_a_hindi_patient_sees_a_form_error_in_hindi_and_nothing_is_saved(patient):
    client = signed_in(patient)

    response = client.post(
        "/account/profile/", {"first_name": "Asha", "last_name": "Verma", "timezone": "UTC", "language": "hi", "date_of_birth": "2999-01-01"}
    )

    assert response.status_code == 200
    assert response.context["form"].errors["date_of_birth"] == ["1900 और आज के बीच की जन्मतिथि दर्ज करें।"]
    assert "1900 और आज के बीच की जन्मतिथि दर्ज करें।" in response.content.decode()
    patient.patient_profile.refresh_from_db()
    assert patient.patient_profile.date_of_birth is None


@pytest.mark.parametrize(
    ("language", "message"),
    [("hi", "ईमेल या पासवर्ड गलत है।"), ("en", "Invalid email or password."), ("", "Invalid email or password.")],
)
def test_an_api_error_message_follows_accept_language_and_its_code_does_not(patient, language, message):
    from rest_framework.test import APIClient

    response = APIClient().post(
        "/api/v1/auth/login/", {"email": patient.email, "password": "wrong-password-1"}, format="json", HTTP_ACCEPT_LANGUAGE=language
    )

    assert response.status_code == 401
    assert response.json()["error"]["code"] == "AUTH_002"
    assert response.json()["error"]["message"] == message


def test_a_framework_error_is_enveloped_in_hindi_too():
    from rest_framework.test import APIClient

    response = APIClient().get("/api/v1/appointments/", HTTP_ACCEPT_LANGUAGE="hi")

    assert response.status_code == 401
    assert response.json()["error"] == {"code": "AUTH_001", "message": "प्रमाणीकरण की जानकारी नहीं दी गई।", "fields": {}}


def test_the_javascript_catalogue_gives_the_room_its_hindi_words(patient):
    hindi = signed_in(patient).get("/jsi18n/?lang=hi")
    english = Client().get("/jsi18n/?lang=en", HTTP_ACCEPT_LANGUAGE="en")

    assert hindi.status_code == 200
    assert hindi["Content-Type"].startswith("text/javascript")
    def entry(english: str, hindi: str) -> str:  # as JavaScriptCatalog writes it: JSON, \u escapes
        return f"{json.dumps(english)}: {json.dumps(hindi)}"

    assert entry("In the waiting room", "प्रतीक्षा कक्ष में") in hindi.content.decode()
    assert entry("Connected to %(name)s", "%(name)s से कनेक्ट है") in hindi.content.decode()
    assert entry("There is no such consultation room.", "ऐसा कोई परामर्श कक्ष नहीं है।") in hindi.content.decode()  # a refused socket
    assert json.dumps("प्रतीक्षा कक्ष में") not in english.content.decode()


def test_every_page_loads_the_javascript_catalogue_before_its_scripts(patient):
    html = signed_in(patient).get("/account/").content.decode()

    catalogue = html.index('src="/jsi18n/?lang=hi"')
    assert catalogue < html.index("js/medimeet.js")


def test_a_hindi_reader_gets_the_blog_chrome_in_hindi():
    from cms.tests.factories import PostFactory

    post = PostFactory(title="Winter coughs", body="<p>Drink water and rest.</p>")
    client = Client(HTTP_ACCEPT_LANGUAGE="hi")

    listing = client.get("/blog/")
    article = client.get(post.get_absolute_url())

    assert_phrases(listing, hindi=["स्वास्थ्य लेख", "सभी", "मिनट में पढ़ें"], english=["Health articles", "min read", "Written for patients"])
    assert_phrases(article, hindi=["प्रकाशित", "यह लेख सामान्य जानकारी है"], english=["Published", "This article is general information", "min read"])
    assert "Winter coughs" in article.content.decode()  # the content itself is as written


def test_a_hindi_visitor_gets_allauths_sign_in_and_password_reset_pages_in_hindi():
    """allauth ships no Hindi: its msgids are translated in our catalogue (LOCALE_PATHS wins)."""
    client = Client(HTTP_ACCEPT_LANGUAGE="hi")

    assert_phrases(client.get("/accounts/login/"), hindi=["साइन इन करें", "पासवर्ड"], english=["Sign In", "Password"])
    assert_phrases(client.get("/accounts/password/reset/"), hindi=["पासवर्ड भूल गए?"], english=["Forgotten your password?"])


def test_coded_record_values_read_in_hindi_on_the_timeline(patient):
    from records import services as record_services

    record_services.entry_create(by=patient, patient=patient, category="allergy", payload={"substance": "Penicillin", "severity": "severe"})
    record_services.entry_create(by=patient, patient=patient, category="vital", payload={"kind": "blood_pressure", "value": "120/80", "unit": "mmHg", "measured_at": "2026-11-01T08:00:00Z"})

    assert_phrases(signed_in(patient).get("/records/"), hindi=["गंभीरता: गंभीर", "ब्लड प्रेशर: 120/80 mmHg"], english=["Severity: severe", "Blood pressure"])
