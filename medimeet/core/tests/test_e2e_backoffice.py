"""Step 9 in a real browser: the back office through the staff roles. A staff member holding the
verification and finance roles signs in (password and authenticator code), sees only those areas
of the admin, approves a doctor's application and a refund with the admin actions, and opens the
dashboard's charts; every action lands in the audit log.

Writes docs/screenshots/step9-admin-*.png for reviewing the look, and fails on any browser
console error (a CSP violation, a missing file).
"""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta

import pytest
from allauth.mfa.totp.internal.auth import TOTP, generate_totp_secret
from django.contrib.auth.models import Group
from playwright.sync_api import Page, expect

from accounts.tests.factories import StaffFactory, UserFactory
from appointments import services as appointment_services
from appointments.tests.test_booking import open_all_week
from doctors.tests.factories import DoctorProfileFactory, ServiceFactory
from medimeet.core import roles
from medimeet.core.models import AuditEvent
from medimeet.core.tests.browser import screenshot, sign_in_with_code
from medimeet.core.tests.journey import admin_action
from payments import services as payment_services
from payments.gateways import sandbox
from payments.models import Refund

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

PASSWORD = "Quiet-Meadow-Lantern-77"


def shot(page: Page, name: str) -> None:
    screenshot(page, f"step9-admin-{name}")


def a_refund_waiting_for_approval() -> Refund:
    """A paid booking three days ahead whose patient asked for part of the money back."""
    doctor = DoctorProfileFactory(country="IN", user__first_name="Anita", user__last_name="Rao")
    open_all_week(doctor)
    service = ServiceFactory(doctor=doctor, duration_minutes=30, price_minor=50000, currency="INR")
    patient = UserFactory(email="sam@example.com", first_name="Sam", last_name="Patel")
    start = datetime.combine(datetime.now(UTC).date() + timedelta(days=3), time(9, 30), tzinfo=UTC)
    hold = appointment_services.appointment_hold(patient=patient, service=service, start=start)
    booking = appointment_services.appointment_confirm_details(appointment=hold, patient=patient, reason="Follow-up of blood pressure")
    payment = payment_services.payment_create(patient=patient, appointment=booking)
    sandbox.sandbox_pay(reference=payment.gateway_reference, card_number="4242424242424242")
    payment.refresh_from_db()
    return payment_services.refund_request(payment=payment, by=patient, reason="The doctor joined 20 minutes late", amount_minor=20000)


def test_staff_in_two_roles_approve_a_doctor_and_a_refund_and_see_the_dashboard(live_server, page: Page, console_errors):
    applicant = DoctorProfileFactory(verification_status="submitted", user__first_name="Kabir", user__last_name="Sen", slug="dr-kabir-sen")
    refund = a_refund_waiting_for_approval()
    secret = generate_totp_secret()
    staff = StaffFactory(email="meera@medimeet.local", first_name="Meera", last_name="Pillai", password=PASSWORD, timezone="Asia/Kolkata")
    staff.groups.add(*Group.objects.filter(name__in=[roles.VERIFICATION, roles.FINANCE]))
    TOTP.activate(staff, secret)

    # Given a staff member in the verification and finance roles, signed in with password and code
    sign_in_with_code(page, live_server.url, email="meera@medimeet.local", password=PASSWORD, secret=secret)
    page.set_viewport_size({"width": 1440, "height": 1000})

    # Then the admin shows their two areas (and the dashboard), not records, content or reviews
    page.goto(f"{live_server.url}/admin/")
    content = page.locator("#content-main")
    expect(content.get_by_role("link", name="Doctor profiles")).to_be_visible()
    expect(content.get_by_role("link", name="Refunds")).to_be_visible()
    for hidden in ("Record entries", "Posts", "Reviews", "Audit events"):
        expect(content.get_by_role("link", name=hidden, exact=True)).to_have_count(0)
    shot(page, "index")

    # When they start the review of the submitted application and approve it
    admin_action(page, live_server.url, "/admin/doctors/doctorprofile/?verification_status__exact=submitted", applicant.pk, "start_review")
    expect(page.locator(".messagelist")).to_contain_text("under review", ignore_case=True)
    admin_action(page, live_server.url, "/admin/doctors/doctorprofile/?verification_status__exact=under_review", applicant.pk, "approve")
    expect(page.locator(".messagelist")).to_contain_text("approved", ignore_case=True)
    shot(page, "doctor-approved")
    applicant.refresh_from_db()
    assert applicant.verification_status == "approved"

    # And approve the refund waiting in the queue
    page.goto(f"{live_server.url}/admin/payments/refund/?status__exact=requested")
    expect(page.locator("#result_list tbody tr")).to_have_count(1)
    page.locator(f"input[name='_selected_action'][value='{refund.pk}']").check()
    page.locator("select[name='action']").select_option("approve")
    page.get_by_role("button", name="Go").click()
    expect(page.locator(".messagelist")).to_contain_text("approved")
    shot(page, "refund-approved")
    refund.refresh_from_db()
    assert refund.status == "succeeded"

    # And open the dashboard, whose charts are drawn
    page.goto(f"{live_server.url}/admin/")
    page.get_by_role("link", name="Metrics, charts and custom reports").click()
    expect(page.locator("svg.mm-chart-svg").first).to_be_visible()
    assert page.locator("svg.mm-chart-svg").count() >= 4
    expect(page.locator('[data-metric="bookings"]')).to_have_text("1")

    # Every action is in the audit log under their name
    actions = sorted(AuditEvent.objects.filter(actor=staff, action="admin.action").values_list("metadata__action", flat=True))
    assert actions == ["approve", "approve", "start_review"]
    assert console_errors == []
