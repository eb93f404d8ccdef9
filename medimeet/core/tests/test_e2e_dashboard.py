"""Step 9 in a real browser: a staff member with the dashboard permission signs in (password and
authenticator code), opens the dashboard from the admin index, sees the charts, runs a custom
report and downloads it as CSV.

Writes docs/screenshots/step9-dashboard.png and step9-dashboard-report.png for reviewing the
look, and fails on any browser console error (a CSP violation, a missing file).
"""

from __future__ import annotations

import csv
from datetime import timedelta
from pathlib import Path

import pytest
from allauth.mfa.totp.internal.auth import TOTP, generate_totp_secret
from django.contrib.auth.models import Permission
from django.utils import timezone
from playwright.sync_api import Page, expect

from accounts.models import User
from accounts.tests.factories import StaffFactory, UserFactory
from appointments.models import Appointment
from consultations.models import Consultation
from doctors.models import SearchTally
from doctors.tests.factories import DoctorProfileFactory, ServiceFactory, SpecializationFactory
from medimeet.core.dashboard import selectors
from medimeet.core.dashboard.periods import period_resolve
from medimeet.core.tests.browser import SCREENSHOTS, screenshot, sign_in_with_code
from payments.models import Payment, Refund
from reviews.models import Review

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

PASSWORD = "Quiet-Meadow-Lantern-77"
DAYS = 30


def shot(page: Page, name: str) -> None:
    screenshot(page, f"step9-{name}")


def a_month_of_activity() -> None:
    """Thirty days of a small clinic network: three doctors, sign-ups, bookings (most
    completed, some cancelled or missed), payments in INR and USD, refunds, reviews, searches."""
    now = timezone.now()
    cardio, derm, gp = SpecializationFactory(name="Cardiology"), SpecializationFactory(name="Dermatology"), SpecializationFactory(name="General practice")
    doctors = [
        (DoctorProfileFactory(slug="dr-anita-rao", user__first_name="Anita", user__last_name="Rao", city="Mumbai", primary_specialization=cardio, next_available_at=now + timedelta(hours=5)), "INR", "razorpay"),
        (DoctorProfileFactory(slug="dr-kabir-sen", user__first_name="Kabir", user__last_name="Sen", city="Bengaluru", primary_specialization=gp, next_available_at=now + timedelta(hours=20)), "INR", "razorpay"),
        (DoctorProfileFactory(slug="dr-emma-clarke", user__first_name="Emma", user__last_name="Clarke", city="New York", country="US", primary_specialization=derm, next_available_at=now + timedelta(hours=31)), "USD", "stripe"),
    ]
    services = {doctor.pk: ServiceFactory(doctor=doctor, currency=currency, price_minor=60000 if currency == "INR" else 4500) for doctor, currency, _ in doctors}
    patients = [UserFactory(email=f"patient{i}@example.com") for i in range(24)]
    for i, patient in enumerate(patients):
        User.objects.filter(pk=patient.pk).update(date_joined=now - timedelta(days=(i * 5) % DAYS, hours=i % 7))
    slot = now + timedelta(days=2)
    for day in range(DAYS):
        created = now - timedelta(days=DAYS - 1 - day, hours=3)
        SearchTally.objects.create(bucket=created.replace(minute=0, second=0, microsecond=0), count=28 + (day * 11) % 17 + day // 2)
        for k in range(4 + (day * 7) % 5 + day // 6):
            doctor, currency, gateway = doctors[(day + k) % 3]
            patient = patients[(day * 3 + k) % len(patients)]
            status = "cancelled" if k % 9 == 4 else "no_show" if (day + k) % 13 == 0 else "completed" if day < DAYS - 2 else "confirmed"
            start = created + timedelta(hours=20) if status != "confirmed" else slot
            slot += timedelta(hours=1)
            service = services[doctor.pk]
            appt = Appointment.objects.create(
                doctor=doctor, patient=patient, service=service, start=start, end=start + timedelta(minutes=20), blocked_start=start, blocked_end=start + timedelta(minutes=20),
                status=status, price_minor=service.price_minor, currency=currency, cancelled_by="patient" if status == "cancelled" else "",
                cancelled_at=created + timedelta(hours=2) if status == "cancelled" else None,
            )  # fmt: skip
            Appointment.objects.filter(pk=appt.pk).update(created_at=created)
            refunded = service.price_minor if status == "cancelled" else 0
            paid = Payment.objects.create(
                appointment=appt, patient=patient, doctor=doctor, gateway=gateway, status="succeeded", amount_minor=service.price_minor, currency=currency,
                amount_refunded_minor=refunded, paid_at=created + timedelta(minutes=5), gateway_reference=f"e2e-{appt.pk}",
            )  # fmt: skip
            if refunded:
                Refund.objects.create(payment=paid, amount_minor=refunded, reason="Cancelled in time", source="policy", status="succeeded", processed_at=created + timedelta(hours=2))
            if status == "completed" and start < now:
                Consultation.objects.create(appointment=appt, status="ended", started_at=start, ended_at=start + timedelta(minutes=18))
                if k % 2 == 0:
                    review = Review.objects.create(appointment=appt, doctor=doctor, author=patient, overall=5 - (day + k) % 3 // 2, text="Clear advice and on time." * 2, status="published", published_at=start + timedelta(hours=2))
                    Review.objects.filter(pk=review.pk).update(created_at=start + timedelta(hours=2))


def test_staff_member_sees_the_dashboard_charts_and_downloads_a_report(live_server, page: Page, console_errors):
    a_month_of_activity()
    secret = generate_totp_secret()
    analyst = StaffFactory(email="analyst@medimeet.local", first_name="Meera", last_name="Pillai", password=PASSWORD, timezone="Asia/Kolkata")
    analyst.user_permissions.add(Permission.objects.get(content_type__app_label="core", codename="view_dashboard"))
    TOTP.activate(analyst, secret)

    # Given a staff member with the dashboard permission, signed in with password and code
    sign_in_with_code(page, live_server.url, email="analyst@medimeet.local", password=PASSWORD, secret=secret)

    # When they open the dashboard from the admin index
    page.set_viewport_size({"width": 1440, "height": 1000})
    page.goto(f"{live_server.url}/admin/")
    page.get_by_role("link", name="Metrics, charts and custom reports").click()
    expect(page).to_have_url(f"{live_server.url}/admin/dashboard/")

    # Then they see the headline numbers and the charts, drawn as SVG with titles
    expect(page.get_by_role("heading", name="Dashboard", exact=True)).to_be_visible()
    expect(page.locator("svg.mm-chart-svg")).to_have_count(6)  # sign-ups, bookings, consultations, cancellations, revenue INR and USD
    expect(page.locator("#chart-bookings rect.mm-bar")).to_have_count(30)
    expect(page.locator("#chart-revenue-inr path.mm-line-path")).to_be_visible()
    expect(page.locator("#chart-bookings title").first).to_have_text("Bookings")
    bookings = selectors.bookings(period_resolve(name="30d", zone="Asia/Kolkata"))["total"]
    assert bookings > 200
    expect(page.locator('[data-metric="bookings"]')).to_have_text(str(bookings))
    shot(page, "dashboard")

    # When they run a report of revenue by payment gateway
    page.get_by_label("Metric").select_option(label="Revenue")
    page.get_by_label("Group by").select_option(label="Payment gateway")
    page.get_by_role("button", name="Run report").click()
    table = page.locator("table.mm-report-table")
    expect(table.locator("tbody tr")).to_have_count(2)
    expect(table).to_contain_text("razorpay")
    expect(table).to_contain_text("stripe")
    page.locator("#report").scroll_into_view_if_needed()
    page.locator("#report").screenshot(path=str(SCREENSHOTS / "step9-dashboard-report.png"))

    # And download it as CSV
    with page.expect_download() as download_info:
        page.get_by_role("link", name="Download CSV").click()
    download = download_info.value
    rows = list(csv.reader(Path(download.path()).read_text().splitlines()))
    assert download.suggested_filename.startswith("medimeet-revenue-by-gateway-")
    assert rows[0] == ["gateway", "currency", "count", "amount_minor", "amount"]
    assert sorted(row[0] for row in rows[1:]) == ["razorpay", "stripe"]
    assert console_errors == []
