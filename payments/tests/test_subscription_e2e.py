"""Care plans in a real browser: a patient subscribes through the sandbox card page, sees the
plan with its consultations, books a covered consultation, and looks at an upgrade's prorated
amount. Screenshots docs/screenshots/step11-*."""

from __future__ import annotations

import pytest
from playwright.sync_api import Page, expect

from accounts.tests.factories import UserFactory
from appointments.tests.test_e2e import PASSWORD, cardiologist, shot, sign_in
from doctors.models import Specialization
from payments.models import Plan, Subscription

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


def plans(doctor) -> dict[str, Plan]:
    cardiology = Specialization.objects.get(name="Cardiology")
    return {
        "video": Plan.objects.create(
            name="Video care", description="Four video consultations a month with any of our doctors.", price_minor=200000, currency="INR", credits_per_period=4, sort_order=1
        ),
        "heart": Plan.objects.create(
            name="Heart health", description="Eight consultations a month with cardiologists; unused ones carry over.", price_minor=350000, currency="INR",
            credits_per_period=8, specialization=cardiology, rollover=True, sort_order=2,
        ),
        "doctor": Plan.objects.create(
            name="My cardiologist", description="As many follow-ups as you need with Dr. Priya Raman.", price_minor=500000, currency="INR",
            credits_per_period=None, doctor=doctor, sort_order=3,
        ),
    }  # fmt: skip


def test_patient_subscribes_on_the_sandbox_and_books_a_covered_consultation(live_server, page: Page, console_errors):  # noqa: F811
    doctor = cardiologist()
    offered = plans(doctor)
    UserFactory(email="asha.verma@example.com", first_name="Asha", last_name="Verma", password=PASSWORD, timezone="Europe/London")

    sign_in(page, live_server.url, "asha.verma@example.com")
    page.goto(f"{live_server.url}/plans/")
    expect(page.get_by_role("heading", level=1)).to_have_text("Care plans")
    shot(page, "plans-browse", step=11)
    page.locator(f"[data-plan='{offered['video'].public_id}']").get_by_role("button", name="Subscribe").click()

    expect(page.get_by_test_id("amount")).to_have_text("₹2,000.00")
    page.get_by_label("Card number").fill("4242 4242 4242 4242")
    page.get_by_role("button", name="Pay ₹2,000.00").click()

    current = page.get_by_test_id("current-plan")
    expect(current).to_have_attribute("data-status", "active")
    expect(page.get_by_test_id("credits")).to_have_text("Consultations left this period: 4 of 4.")
    shot(page, "plans-subscribed", step=11)
    assert Subscription.objects.get().status == "active"

    page.goto(f"{live_server.url}/doctors/{doctor.slug}/book/")
    expect(page.get_by_test_id("plan-coverage")).to_have_text("Covered by your plan: 4 of 4 left this month.")
    shot(page, "booking-covered", step=11)

    page.goto(f"{live_server.url}/plans/{offered['heart'].public_id}/change/")
    expect(page.get_by_test_id("amount-due")).to_contain_text("₹")
    shot(page, "plan-change-quote", step=11)
    assert console_errors == []
