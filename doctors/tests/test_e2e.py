"""Step 2 in a real browser: a doctor applies with a licence PDF, verifies their email and builds
their profile in the portal; staff sign in with two-factor authentication and approve the
application in the admin; a patient then finds the doctor by specialization and language.

Emails are read from django.core.mail.outbox (locmem backend, Celery tasks run eagerly). The test
also writes docs/screenshots/step2-*.png for reviewing the look, and fails on any browser console
error (a CSP violation, a missing file).
"""

from __future__ import annotations

import re
from datetime import timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from allauth.account.models import EmailAddress
from allauth.mfa.totp.internal.auth import TOTP, generate_totp_secret
from django.conf import settings
from django.core import mail
from django.utils import timezone
from playwright.sync_api import Browser, Page, expect

from accounts.models import User
from accounts.tests.factories import StaffFactory
from doctors import demo, services
from doctors.models import DoctorProfile, DoctorService, Education, Language, Position, Specialization
from medimeet.core.tests.browser import sign_in, sign_out, totp_code
from medimeet.core.tests.journey import Application, doctor_application_fill

from .factories import DoctorProfileFactory

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

PASSWORD = "Vivid-Harbor-2026!"
STAFF_PASSWORD = "Quiet-Meadow-Lantern-77"
SCREENSHOTS = Path(settings.BASE_DIR) / "docs" / "screenshots"
DESKTOP = {"width": 1280, "height": 800}




def link_in_outbox(pattern: str) -> str:
    for message in reversed(mail.outbox):
        match = re.search(pattern, message.body)
        if match:
            return match.group(0)
    raise AssertionError(f"No email contains {pattern!r}: {[m.subject for m in mail.outbox]}")


def listed_doctors() -> None:
    """Reference data and the approved doctors a patient sees next to the new one: the three
    demo doctors (cardiology in Mumbai, general practice in London, dermatology in New York)
    and a Hindi-speaking GP in Delhi."""
    demo.reference_data()
    for email, first, last in [
        ("dr.mehta@medimeet.local", "Anjali", "Mehta"),
        ("dr.okafor@medimeet.local", "Chidi", "Okafor"),
        ("dr.garcia@medimeet.local", "Lucia", "Garcia"),
    ]:
        user = User.objects.create_user(email=email, password=PASSWORD, first_name=first, last_name=last, role=User.Role.DOCTOR)
        EmailAddress.objects.create(user=user, email=email, verified=True, primary=True)
    demo.demo_doctors(PASSWORD)
    kapoor = DoctorProfileFactory(
        user__first_name="Rohan",
        user__last_name="Kapoor",
        slug="dr-rohan-kapoor",
        primary_specialization=Specialization.objects.get(name="General Practice"),
        licence_number="DMC-2014/51234",
        licence_authority="Delhi Medical Council",
        licence_country="IN",
        years_experience=9,
        bio="Family physician in Delhi who looks after adults and children, with a focus on diabetes, blood pressure and asthma.",
        special_skills="diabetes management, hypertension, asthma",
        clinic_name="Kapoor Family Clinic",
        city="Delhi",
        rating_average=Decimal("4.6"),
        rating_count=58,
    )
    kapoor.languages.set(Language.objects.filter(code__in=["en", "hi", "ur"]))
    Education.objects.create(doctor=kapoor, degree="MBBS", institution="Maulana Azad Medical College", year=2012)
    Position.objects.create(doctor=kapoor, title="General Practitioner", organisation="Kapoor Family Clinic", start_year=2016)
    DoctorService.objects.create(doctor=kapoor, name="Video consultation", price_minor=60000, currency="INR", duration_minutes=15, mode="video")
    services.doctor_fee_refresh(doctor=kapoor)
    services.doctor_search_refresh(doctor=kapoor)


def test_doctor_applies_staff_approves_and_patient_finds_them(live_server, page: Page, browser: Browser, tmp_path):
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    console_errors: list[str] = []

    def watch(target: Page) -> Page:
        def record(message) -> None:
            if message.type == "error":
                console_errors.append(f"{target.url}: {message.text}")

        target.on("console", record)
        # No smooth scrolling or transitions: screenshots then show the page at rest.
        target.emulate_media(reduced_motion="reduce")
        return target

    def new_page(viewport: dict = DESKTOP) -> Page:
        context = browser.new_context(viewport=viewport, locale="en-GB", timezone_id="Europe/London")
        context.set_default_timeout(10_000)
        return watch(context.new_page())

    def shot(target: Page, name: str) -> None:
        # From the top and without a focused field, so the sticky header sits where it belongs.
        target.evaluate("() => { document.activeElement?.blur(); window.scrollTo(0, 0); }")
        target.screenshot(path=str(SCREENSHOTS / f"step2-{name}.png"), full_page=True)

    watch(page)
    listed_doctors()
    secret = generate_totp_secret()
    staff = StaffFactory(email="verify@medimeet.local", first_name="Vera", last_name="Joshi", is_superuser=True, password=STAFF_PASSWORD)
    TOTP.activate(staff, secret)
    licence_pdf = tmp_path / "kmc-registration.pdf"
    licence_pdf.write_bytes(demo.DEMO_PDF)
    expiry = timezone.localdate() + timedelta(days=3 * 365)

    # --- The doctor applies --------------------------------------------------------------------
    # Given a doctor on the home page, which points doctors to the application
    page.goto(live_server.url)
    page.get_by_role("link", name="Apply to join", exact=True).click()
    expect(page).to_have_url(f"{live_server.url}/doctors/apply/")

    # When they fill in the application with a licence PDF and submit it
    doctor_application_fill(
        page,
        Application(
            first_name="Priya", last_name="Raman", email="priya.raman@example.com", password=PASSWORD, timezone="Asia/Kolkata", years=12,
            specialization="Cardiology", licence_number="KMC-2012/48213", licence_authority="Karnataka Medical Council", licence_country="IN",
            licence_expiry=expiry, licence_pdf=licence_pdf,
        ),
    )  # fmt: skip
    shot(page, "apply")
    page.get_by_role("button", name="Submit application").click()

    # Then they are asked to verify their email, and the application waits for review
    expect(page.get_by_role("heading", level=1)).to_have_text("Verify Your Email Address")
    expect(page.locator(".mm-messages")).to_contain_text("Application received")
    doctor = DoctorProfile.objects.get(user__email="priya.raman@example.com")
    assert doctor.verification_status == DoctorProfile.Status.SUBMITTED
    assert (doctor.licence_number, doctor.licence_country, doctor.primary_specialization.name) == ("KMC-2012/48213", "IN", "Cardiology")
    assert [(d.kind, d.original_name, d.content_type) for d in doctor.documents.all()] == [("licence", "kmc-registration.pdf", "application/pdf")]
    assert sorted(m.to[0] for m in mail.outbox) == ["priya.raman@example.com", "priya.raman@example.com"]

    # When they confirm their address from the email and open their portal
    page.goto(link_in_outbox(r"http\S*/accounts/confirm-email/\S+"))
    page.get_by_role("button", name="Confirm").click()
    expect(page).to_have_url(f"{live_server.url}/accounts/login/")
    sign_in(page, live_server.url, "priya.raman@example.com", PASSWORD, path="/portal/")

    # Then they land on the portal, which shows the application as submitted
    expect(page).to_have_url(f"{live_server.url}/portal/")
    expect(page.get_by_role("heading", level=1)).to_have_text("Welcome, Dr. Priya Raman")
    expect(page.locator(".mm-portal-identity")).to_contain_text("Submitted")
    expect(page.get_by_role("heading", name="We have your application")).to_be_visible()

    # When they complete their profile, adding rows to the education list
    portal_nav = page.get_by_role("navigation", name="Doctor portal")
    portal_nav.get_by_role("link", name="Profile").click()
    page.get_by_label("Biography").fill(
        "Consultant cardiologist in Bengaluru caring for people with high blood pressure, chest pain, palpitations and heart failure. "
        "I explain test results in plain language and agree a treatment plan with you, in English, Hindi or Tamil."
    )
    page.get_by_label("Special skills").fill("hypertension, heart failure, echocardiography, preventive cardiology")
    page.get_by_label("English", exact=True).check()
    page.get_by_label("Hindi", exact=True).check()
    page.get_by_label("Tamil", exact=True).check()
    page.get_by_label("Clinic or hospital").fill("Raman Heart Clinic")
    page.get_by_label("Address").fill("14 Residency Road, Ashok Nagar")
    page.get_by_label("City").fill("Bengaluru")
    page.get_by_label("In-person consultations").check()
    degrees = [
        ("MBBS", "Bangalore Medical College", "2006"),
        ("MD", "Kasturba Medical College, Manipal", "2010"),
        ("DM Cardiology", "Sri Jayadeva Institute of Cardiovascular Sciences", "2013"),
    ]
    for index, (degree, institution, year) in enumerate(degrees):
        if index:
            page.get_by_role("button", name="Add another degree").click()
        page.locator(f"[name='education-{index}-degree']").fill(degree)
        page.locator(f"[name='education-{index}-institution']").fill(institution)
        page.locator(f"[name='education-{index}-year']").fill(year)
    page.locator("[name='certifications-0-name']").fill("Fellow of the European Society of Cardiology")
    page.locator("[name='certifications-0-issuer']").fill("European Society of Cardiology")
    page.locator("[name='certifications-0-year']").fill("2019")
    page.locator("[name='positions-0-title']").fill("Consultant Cardiologist")
    page.locator("[name='positions-0-organisation']").fill("Raman Heart Clinic")
    page.locator("[name='positions-0-start_year']").fill("2017")
    page.get_by_role("button", name="Save profile").click()

    # Then the profile is saved, with every education row
    expect(page.locator(".mm-messages")).to_contain_text("Your profile has been saved.")
    assert list(doctor.education.order_by("year").values_list("degree", flat=True)) == ["MBBS", "MD", "DM Cardiology"]
    assert sorted(doctor.languages.values_list("code", flat=True)) == ["en", "hi", "ta"]
    expect(page.locator("[name='education-0-degree']")).to_have_value("DM Cardiology")  # newest first
    expect(page.locator("[name='education-3-degree']")).to_have_value("")  # and an empty row for the next
    shot(page, "portal-profile")

    # When they add the services they offer
    portal_nav.get_by_role("link", name="Services").click()
    for name, description, price, minutes, mode, preparation in [
        (
            "Video consultation",
            "A first consultation by video to discuss your symptoms and reports.",
            "800",
            "20",
            "Video",
            "Have your recent ECG, blood test reports and medicines to hand.",
        ),
        ("Follow-up consultation", "A short review of your treatment within 30 days of a consultation.", "500", "15", "Video", ""),
        (
            "Clinic visit with ECG",
            "An in-person check-up at the clinic, including a resting ECG.",
            "1500",
            "30",
            "In person",
            "Wear a loose top and bring your previous reports.",
        ),
    ]:
        page.get_by_label("Name", exact=True).fill(name)
        page.get_by_label("Description").fill(description)
        page.get_by_label("Price").fill(price)
        page.get_by_label("Duration (minutes)").fill(minutes)
        page.get_by_label("Mode").select_option(label=mode)
        page.get_by_label("Preparation instructions").fill(preparation)
        page.get_by_role("button", name="Add service").click()
        expect(page.locator(".mm-messages")).to_contain_text("Service added.")

    # Then they are listed with their prices, and the cheapest is the fee shown in search
    expect(page.locator(".mm-service")).to_have_count(3)
    doctor.refresh_from_db()
    assert doctor.fee_from_display == "₹500.00"
    shot(page, "portal-services")
    portal_nav.get_by_role("link", name="Documents").click()
    expect(page.locator(".mm-document")).to_contain_text("kmc-registration.pdf")
    portal_nav.get_by_role("link", name="Overview").click()
    expect(page.locator(".mm-service-rows li")).to_have_count(3)
    shot(page, "portal")
    sign_out(page)

    # --- Staff verify the licence and approve ---------------------------------------------------
    # Given a staff member signed in with their password and an authenticator code
    staff_page = new_page({"width": 1440, "height": 900})
    sign_in(staff_page, live_server.url, "verify@medimeet.local", STAFF_PASSWORD)
    expect(staff_page.get_by_role("heading", level=1)).to_have_text("Two-Factor Authentication")
    staff_page.locator("input[name='code']").fill(totp_code(secret))
    staff_page.get_by_role("button", name="Sign In").click()
    expect(staff_page).to_have_url(f"{live_server.url}/account/")

    # When they open the queue of submitted applications and start the review
    staff_page.goto(f"{live_server.url}/admin/doctors/doctorprofile/?verification_status__exact=submitted")
    row = staff_page.get_by_role("row", name=re.compile("Priya Raman"))
    expect(row).to_be_visible()
    staff_page.locator("#toggle-nav-sidebar").click()  # the queue's columns need the width
    shot(staff_page, "admin-queue")
    row.get_by_role("checkbox").check()
    staff_page.locator("select[name='action']").select_option(label="Start review of selected applications")
    staff_page.get_by_role("button", name="Go").click()
    expect(staff_page.locator(".messagelist")).to_contain_text("1 application(s) now under review.")

    # And then approve it
    staff_page.goto(f"{live_server.url}/admin/doctors/doctorprofile/?verification_status__exact=under_review")
    staff_page.get_by_role("row", name=re.compile("Priya Raman")).get_by_role("checkbox").check()
    staff_page.locator("select[name='action']").select_option(label="Approve selected applications")
    staff_page.get_by_role("button", name="Go").click()

    # Then the application is approved and the doctor is listed
    expect(staff_page.locator(".messagelist")).to_contain_text("1 application(s) now approved.")
    doctor.refresh_from_db()
    assert doctor.verification_status == DoctorProfile.Status.APPROVED
    assert doctor.is_listed is True
    assert list(doctor.verification_events.order_by("created_at").values_list("to_status", flat=True)) == ["submitted", "under_review", "approved"]
    assert any("approved" in message.subject for message in mail.outbox)
    staff_page.context.close()

    # --- A patient finds the doctor -------------------------------------------------------------
    # Given an anonymous visitor on the doctor search
    patient_page = new_page()
    patient_page.goto(live_server.url)
    patient_page.get_by_role("navigation", name="Main").get_by_role("link", name="Find a doctor").click()
    expect(patient_page.locator(".mm-doctor-card")).to_have_count(5)

    # When they look for doctors in Medicine (which includes Cardiology) who speak Hindi
    patient_page.get_by_label("Specialization", exact=True).select_option(label="Medicine")
    patient_page.get_by_label("Language", exact=True).select_option(label="Hindi")
    patient_page.get_by_role("button", name="Apply filters").click()

    # Then the new doctor is among the results, and doctors who do not match are not
    expect(patient_page).to_have_url(re.compile(r"specialization=medicine.*language=hi"))
    cards = patient_page.locator(".mm-doctor-card")
    expect(cards).to_have_count(3)
    expect(patient_page.locator(".mm-results-count")).to_contain_text("3 doctors found")
    card = cards.filter(has_text="Dr. Priya Raman")
    expect(card).to_contain_text("Cardiology")
    expect(card).to_contain_text("12 years experience")
    expect(card).to_contain_text("English, Hindi, Tamil")
    expect(card).to_contain_text("New")
    expect(card).to_contain_text("₹500.00")
    expect(cards.filter(has_text="Lucia Garcia")).to_have_count(0)
    expect(cards.filter(has_text="Chidi Okafor")).to_have_count(0)
    shot(patient_page, "search")

    # And on a phone the filters fold behind a button that shows how many are set
    patient_page.set_viewport_size({"width": 390, "height": 844})
    toggle = patient_page.get_by_role("button", name="Filters (2)")
    expect(toggle).to_have_attribute("aria-expanded", "false")
    expect(patient_page.get_by_label("Language", exact=True)).to_be_hidden()
    shot(patient_page, "search-mobile")
    toggle.click()
    expect(patient_page.get_by_label("Language", exact=True)).to_have_value("hi")
    patient_page.set_viewport_size(DESKTOP)

    # When they open the doctor's profile
    card.get_by_role("link", name="View profile").click()

    # Then they see the doctor's name, the verified licence, services and education
    expect(patient_page).to_have_url(f"{live_server.url}/doctors/{doctor.slug}/")
    expect(patient_page.get_by_role("heading", level=1)).to_have_text("Dr. Priya Raman")
    expect(patient_page.locator(".mm-doctor-hero")).to_contain_text("Licence verified")
    expect(patient_page.locator(".mm-service")).to_have_count(3)
    expect(patient_page.get_by_text("Sri Jayadeva Institute of Cardiovascular Sciences")).to_be_visible()
    expect(patient_page.get_by_text("No reviews yet", exact=True)).to_be_visible()
    shot(patient_page, "detail")
    patient_page.context.close()

    assert console_errors == []


def test_invited_doctor_resubmits_after_changes_and_manages_documents_and_services(live_server, page: Page):
    """The portal's other states and pages: an invitation (used, then reused), a change request
    answered with a new document and a resubmission, editing a service, and the search page's
    filter errors and empty result."""
    console_errors: list[str] = []

    def record(message) -> None:
        # The used invitation is answered with status 400 on purpose, which Chromium reports.
        expected = "/doctors/invitation/" in message.location.get("url", "") and "status of 400" in message.text
        if message.type == "error" and not expected:
            console_errors.append(f"{page.url}: {message.text}")

    page.on("console", record)
    page.emulate_media(reduced_motion="reduce")
    demo.reference_data()
    staff = StaffFactory()
    doctor = services.doctor_invite(
        by=staff,
        email="arjun.das@example.com",
        first_name="Arjun",
        last_name="Das",
        licence_number="45123",
        licence_authority="Karnataka Medical Council",
        licence_country="IN",
        licence_expiry=timezone.localdate() + timedelta(days=500),
        primary_specialization=Specialization.objects.get(name="General Practice"),
    )
    invitation_path = re.search(r"/doctors/invitation/\S+/", mail.outbox[-1].body).group(0)
    assert "<a href=" in next(content for content, mimetype in mail.outbox[-1].alternatives if mimetype == "text/html")

    # Given the invited doctor on their invitation page, when the two passwords differ
    page.goto(f"{live_server.url}{invitation_path}")
    expect(page.get_by_role("heading", level=1)).to_have_text("Welcome, Arjun")
    page.get_by_label("Choose a password").fill(PASSWORD)
    page.get_by_label("Repeat the password").fill(PASSWORD + "x")
    page.get_by_role("button", name="Set password").click()

    # Then the error is shown next to the field; and with matching passwords the password is set
    expect(page.locator("#id_password2_error")).to_have_text("The two passwords differ.")
    page.get_by_label("Choose a password").fill(PASSWORD)
    page.get_by_label("Repeat the password").fill(PASSWORD)
    page.get_by_role("button", name="Set password").click()
    expect(page).to_have_url(f"{live_server.url}/accounts/login/")
    expect(page.locator(".mm-messages")).to_contain_text("Your password is set.")

    # And the link cannot be used twice
    page.goto(f"{live_server.url}{invitation_path}")
    expect(page.get_by_role("heading", level=1)).to_have_text("This invitation cannot be used")
    expect(page.get_by_role("alert")).to_contain_text("already been used")

    # Given staff asked for changes, when the doctor signs in to the portal
    services.doctor_transition(doctor=doctor, to_status="changes_requested", by=staff, reason="Please upload your MBBS degree certificate.")
    sign_in(page, live_server.url, "arjun.das@example.com", PASSWORD, path="/portal/")

    # Then they see what to change and can answer with a document and a resubmission
    expect(page.locator(".mm-portal-identity")).to_contain_text("Changes requested")
    expect(page.locator(".mm-reason")).to_have_text("Please upload your MBBS degree certificate.")
    page.get_by_role("navigation", name="Doctor portal").get_by_role("link", name="Documents").click()
    expect(page.get_by_text("No documents yet")).to_be_visible()
    page.get_by_label("Type of document").select_option(label="Qualification")
    page.get_by_label("File", exact=True).set_input_files({"name": "mbbs-degree.pdf", "mimeType": "application/pdf", "buffer": demo.DEMO_PDF})
    page.get_by_role("button", name="Upload").click()
    expect(page.locator(".mm-messages")).to_contain_text("Document uploaded.")
    expect(page.locator(".mm-document")).to_contain_text("mbbs-degree.pdf")
    expect(page.locator(".mm-document")).to_contain_text("Qualification")
    page.get_by_role("navigation", name="Doctor portal").get_by_role("link", name="Overview").click()
    page.get_by_role("button", name="Resubmit for review").click()
    expect(page.locator(".mm-messages")).to_contain_text("Your application is back with our verification team.")
    expect(page.locator(".mm-portal-identity")).to_contain_text("Submitted")
    doctor.refresh_from_db()
    assert doctor.verification_status == DoctorProfile.Status.SUBMITTED

    # When they add a service, then edit it and stop offering it
    page.get_by_role("navigation", name="Doctor portal").get_by_role("link", name="Services").click()
    page.get_by_label("Name", exact=True).fill("Video consultation")
    page.get_by_label("Price").fill("450")
    page.get_by_role("button", name="Add service").click()
    page.get_by_role("link", name="Edit Video consultation").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Edit “Video consultation”")
    expect(page.get_by_label("Price")).to_have_value("450.0")
    page.get_by_label("Price").fill("500")
    page.get_by_label("Offered (visible to patients)").uncheck()
    page.get_by_role("button", name="Save changes").click()

    # Then the list shows the new price and that patients no longer see it
    expect(page.locator(".mm-messages")).to_contain_text("Service updated.")
    expect(page.locator(".mm-service")).to_contain_text("₹500.00")
    expect(page.locator(".mm-service")).to_contain_text("Hidden from patients")
    assert list(doctor.services.values_list("price_minor", "is_active")) == [(50000, False)]
    sign_out(page)

    # Given an anonymous visitor, when a fee range has no currency, the error is next to Currency
    page.goto(f"{live_server.url}/doctors/?fee_min=100")
    expect(page.locator("#id_currency_error")).to_have_text("Choose the currency of the fee range.")
    expect(page.get_by_text("Some filters need a fix")).to_be_visible()

    # And a search nobody matches says so and offers to clear the filters
    page.goto(f"{live_server.url}/doctors/?q=zzzz")
    expect(page.get_by_text("No doctors match your search")).to_be_visible()
    expect(page.get_by_role("link", name="Clear all filters")).to_be_visible()

    assert console_errors == []
