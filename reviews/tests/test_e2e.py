"""Step 8 in a real browser: after a completed consultation the patient reviews it with a
photo from the appointment's page; a second patient reports the review; staff (with two-factor
sign-in) moderate the queue; the rating on the search page follows. Writes
docs/screenshots/step8-*.png and fails on any browser console error."""

from __future__ import annotations

import io
import re
from datetime import timedelta

import pytest
from allauth.mfa.totp.internal.auth import TOTP, generate_totp_secret
from django.utils import timezone
from PIL import Image
from playwright.sync_api import Browser, Page, expect

from accounts.tests.factories import StaffFactory, UserFactory
from appointments.models import Appointment
from appointments.tests.test_e2e import shot
from doctors import demo
from doctors.models import DoctorService, Specialization
from doctors.services import doctor_fee_refresh, doctor_search_refresh
from doctors.tests.factories import DoctorProfileFactory
from medimeet.core.tests.browser import DESKTOP, totp_code
from reviews import services
from reviews.models import Review, ReviewFlag

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

PASSWORD = "Vivid-Harbor-2026!"


@pytest.fixture
def frozen_time():
    """Real time here: the browser's clock and the authenticator codes run on it."""
    yield None


def completed_visit(doctor, patient, service) -> Appointment:
    start = timezone.now() - timedelta(days=2)
    return Appointment.objects.create(
        doctor=doctor, patient=patient, service=service, start=start, end=start + timedelta(minutes=20), blocked_start=start,
        blocked_end=start + timedelta(minutes=20), status="completed", price_minor=80000, currency="INR", reason="Chest tightness on exertion",
    )


def test_patient_reviews_with_a_photo_another_reports_it_staff_moderate_and_search_follows(live_server, browser: Browser, tmp_path):
    demo.reference_data()
    doctor = DoctorProfileFactory(
        user__first_name="Priya", user__last_name="Raman", user__password=PASSWORD, title="Dr.", slug="dr-priya-raman",
        primary_specialization=Specialization.objects.get(name="Cardiology"), licence_authority="Karnataka Medical Council", city="Bengaluru",
        bio="Consultant cardiologist in Bengaluru.",
    )
    service = DoctorService.objects.create(doctor=doctor, name="Video consultation", price_minor=80000, currency="INR", duration_minutes=20, mode="video")
    doctor_fee_refresh(doctor=doctor)
    doctor_search_refresh(doctor=doctor)
    asha = UserFactory(email="asha@example.com", first_name="Asha", last_name="Verma", password=PASSWORD)
    rohan = UserFactory(email="rohan@example.com", first_name="Rohan", last_name="Mehta", password=PASSWORD)
    visit = completed_visit(doctor, asha, service)
    # A third patient's review is held by the filter (rude words) and waits in the queue.
    meera = UserFactory(first_name="Meera", last_name="Nair")
    held = services.review_create(appointment=completed_visit(doctor, meera, service), author=meera, scores={"overall": 3}, text="Good doctor, but the receptionist was an idiot and I waited twenty minutes.")
    assert held.status == "held"
    secret = generate_totp_secret()
    staff = StaffFactory(email="moderator@medimeet.local", first_name="Maya", last_name="Iyer", is_superuser=True, password=PASSWORD)
    TOTP.activate(staff, secret)
    photo = tmp_path / "prescription.jpg"
    buffer = io.BytesIO()
    Image.new("RGB", (640, 480), (227, 241, 241)).save(buffer, format="JPEG")
    photo.write_bytes(buffer.getvalue())

    errors: list[str] = []

    def new_page() -> Page:
        context = browser.new_context(viewport=DESKTOP, locale="en-GB", timezone_id="Europe/London")
        context.set_default_timeout(10_000)
        target = context.new_page()
        target.on("console", lambda message: errors.append(f"{target.url}: {message.text}") if message.type == "error" else None)
        target.emulate_media(reduced_motion="reduce")
        return target

    def sign_in(target: Page, email: str) -> None:
        target.goto(f"{live_server.url}/accounts/login/")
        target.get_by_label("Email", exact=True).fill(email)
        target.get_by_label("Password", exact=True).fill(PASSWORD)
        target.get_by_role("button", name="Sign In").click()

    # Given Asha's completed consultation, when she opens it, then she is asked for a review
    patient = new_page()
    sign_in(patient, "asha@example.com")
    patient.goto(f"{live_server.url}/appointments/{visit.public_id}/")
    patient.get_by_role("link", name="Write a review").click()
    expect(patient.get_by_role("heading", level=1)).to_have_text("Review your consultation")
    patient.locator("fieldset", has_text="Overall").get_by_text("5 ★").click()
    patient.locator("fieldset", has_text="Punctuality").get_by_text("4 ★").click()
    patient.locator("fieldset", has_text="Bedside manner").get_by_text("5 ★").click()
    patient.locator("fieldset", has_text="Clarity of explanation").get_by_text("5 ★").click()
    patient.get_by_label("Your review").fill("Dr. Raman listened carefully, explained my ECG and changed my medicine. I felt better within a week.")
    patient.get_by_label("Photos").set_input_files(str(photo))
    shot(patient, "write-review", step=8)
    patient.get_by_role("button", name="Publish review").click()
    expect(patient.locator(".alert-success, .messages, [role=alert]").first).to_contain_text("Your review is published")
    expect(patient.get_by_test_id("own-review")).to_contain_text("Verified consultation")
    expect(patient.locator(".mm-review-photos img")).to_have_count(1)
    shot(patient, "own-review", step=8)

    # Then the search shows the rating at once, shrunk towards the platform prior (4.0 before
    # any review was published): (5·4.0 + 5) / 6 = 4.17. The held review does not count.
    patient.goto(f"{live_server.url}/doctors/?specialization=cardiology")
    card = patient.locator("article").filter(has_text="Priya Raman")
    expect(card).to_contain_text("4.2")
    expect(card).to_contain_text("(1 review)")

    # When Rohan reports the review from the doctor's page
    reporter = new_page()
    sign_in(reporter, "rohan@example.com")
    reporter.goto(f"{live_server.url}/doctors/dr-priya-raman/")
    reviews = reporter.get_by_test_id("doctor-reviews")
    expect(reviews.get_by_test_id("review")).to_have_count(1)
    expect(reviews).to_contain_text("Asha V.")
    reviews.get_by_role("button", name=re.compile("Helpful")).click()
    expect(reporter.get_by_test_id("doctor-reviews").get_by_role("button", name=re.compile("Helpful · 1"))).to_be_visible()
    reporter.get_by_test_id("doctor-reviews").get_by_role("link", name="Report").click()
    reporter.get_by_label("False or misleading").check()
    shot(reporter, "report", step=8)
    reporter.get_by_role("button", name="Send report").click()
    expect(reporter.locator("body")).to_contain_text("Neither the doctor nor the author will know who reported it")
    assert ReviewFlag.objects.get().reporter == rohan

    # And staff approve both reviews in the moderation queue, with a reason
    moderator = new_page()
    sign_in(moderator, "moderator@medimeet.local")
    moderator.locator("input[name='code']").fill(totp_code(secret))
    moderator.get_by_role("button", name="Sign In").click()
    expect(moderator).to_have_url(f"{live_server.url}/account/")
    moderator.goto(f"{live_server.url}/admin/reviews/moderationqueue/")
    expect(moderator.locator("#result_list tbody tr")).to_have_count(2)
    moderator.locator("#toggle-nav-sidebar").click()
    shot(moderator, "admin-queue", step=8)
    moderator.locator("#action-toggle").check()
    moderator.locator("select[name='action']").select_option(label="Approve (publish, close reports)")
    moderator.get_by_role("button", name="Go").click()
    moderator.get_by_label("Reason").fill("Both describe the patient's own consultation; the report is not borne out.")
    shot(moderator, "admin-reason", step=8)
    moderator.get_by_role("button", name="Approve reviews").click()
    expect(moderator.locator(".messagelist")).to_contain_text("approve done")
    expect(moderator.locator("#result_list tbody tr")).to_have_count(0)

    # Then the search page follows: (5·4.0 + 5 + 3) / 7 = 4.0 from two reviews
    assert sorted(Review.objects.values_list("status", flat=True)) == ["published", "published"]
    patient.goto(f"{live_server.url}/doctors/?specialization=cardiology")
    card = patient.locator("article").filter(has_text="Priya Raman")
    expect(card).to_contain_text("4.0")
    expect(card).to_contain_text("(2 reviews)")
    shot(patient, "search", step=8)
    patient.goto(f"{live_server.url}/doctors/dr-priya-raman/")
    expect(patient.get_by_test_id("rating-score")).to_have_text("4.0/5")
    shot(patient, "doctor-page", step=8)
    assert "Rohan" not in patient.content() and "rohan@example.com" not in patient.content()
    assert errors == []
