"""The care plans API and pages: subscribe through the sandbox, the patient's plan with
consultations left and invoices, cancel/resume, the prorated quote, access for the whole cast,
the staff report."""

from __future__ import annotations

from datetime import timedelta

import pytest

from accounts.tests.factories import DoctorFactory, UserFactory, staff_member
from medimeet.core import roles
from payments.gateways import sandbox
from payments.models import Plan, Subscription

from .conftest import NOW
from .test_api import api

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("frozen_time")]


def make_plan(**fields) -> Plan:
    values = {"name": "Video care", "price_minor": 200000, "currency": "INR", "period": "month", "credits_per_period": 4}
    return Plan.objects.create(**{**values, **fields})


def subscribed(patient, plan) -> dict:
    body = api(patient).post("/api/v1/subscriptions/", {"plan": str(plan.public_id)}, format="json").json()
    sandbox.sandbox_pay(reference=body["checkout"]["reference"], card_number="4242424242424242")
    return api(patient).post(f"/api/v1/subscriptions/{body['subscription']['id']}/verify/").json()


def test_subscribing_returns_the_sandbox_checkout_and_paying_activates_the_plan(patient):
    plan = make_plan()

    response = api(patient).post("/api/v1/subscriptions/", {"plan": str(plan.public_id)}, format="json")
    body = response.json()
    assert response.status_code == 201
    assert body["subscription"]["status"] == "incomplete"
    assert body["checkout"]["kind"] == "sandbox_page" and body["checkout"]["url"].endswith(f"/plans/sandbox/{body['checkout']['reference']}/")
    sandbox.sandbox_pay(reference=body["checkout"]["reference"], card_number="4242424242424242")

    detail = api(patient).get(f"/api/v1/subscriptions/{body['subscription']['id']}/").json()

    assert detail["status"] == "active"
    assert detail["plan"]["price"] == {"amount_minor": 200000, "currency": "INR", "exponent": 2, "display": "₹2,000.00"}
    assert detail["credits"]["granted"] == 4 and detail["credits"]["remaining"] == 4
    assert detail["current_period_end"] == "2026-12-02T07:00:00Z"
    assert [(c["kind"], c["status"]) for c in detail["charges"]] == [("first", "paid")]


def test_an_unknown_or_archived_plan_is_sub_001(patient):
    archived = make_plan(is_active=False)

    response = api(patient).post("/api/v1/subscriptions/", {"plan": str(archived.public_id)}, format="json")

    assert response.status_code == 404 and response.json()["error"]["code"] == "SUB_001"
    assert not Subscription.objects.exists()


def test_plans_list_shows_only_offered_plans(patient):
    make_plan(name="Offered")
    make_plan(name="Archived", is_active=False)

    body = api(patient).get("/api/v1/subscriptions/plans/").json()

    assert [plan["name"] for plan in body] == ["Offered"]


def test_another_patients_subscription_is_not_found_to_everyone_else(patient):
    subscription = subscribed(patient, make_plan())

    for other in (UserFactory(), DoctorFactory(), staff_member(roles.FINANCE)):
        for method, path in (("get", ""), ("post", "cancel/"), ("post", "resume/"), ("post", "verify/")):
            response = getattr(api(other), method)(f"/api/v1/subscriptions/{subscription['id']}/{path}")
            assert response.status_code == 404 and response.json()["error"]["code"] == "SUB_002", (other, path)
    assert api().get(f"/api/v1/subscriptions/{subscription['id']}/").status_code == 401
    assert Subscription.objects.get().cancel_at_period_end is False


def test_cancel_at_period_end_and_resume(patient):
    subscription = subscribed(patient, make_plan())

    cancelled = api(patient).post(f"/api/v1/subscriptions/{subscription['id']}/cancel/").json()
    resumed = api(patient).post(f"/api/v1/subscriptions/{subscription['id']}/resume/").json()

    assert (cancelled["cancel_at_period_end"], resumed["cancel_at_period_end"]) == (True, False)


def test_the_prorated_quote_is_shown_before_the_change(patient, frozen_time):
    subscription = subscribed(patient, make_plan(price_minor=300000))
    bigger = make_plan(name="Family", price_minor=600000, credits_per_period=8)
    frozen_time.move_to(NOW + timedelta(days=15))

    quote = api(patient).get(f"/api/v1/subscriptions/{subscription['id']}/change/", {"plan": str(bigger.public_id)}).json()
    changed = api(patient).post(f"/api/v1/subscriptions/{subscription['id']}/change/", {"plan": str(bigger.public_id)}, format="json").json()

    assert (quote["credit"]["amount_minor"], quote["charge"]["amount_minor"], quote["amount_due"]["amount_minor"], quote["computed_by"]) == (150000, 300000, 150000, "medimeet")
    assert changed["plan"]["name"] == "Family" and changed["credits"]["granted"] == 8
    assert sorted(c["kind"] for c in changed["charges"]) == ["first", "proration"]


def test_subscription_list_has_a_constant_query_count(patient, django_assert_max_num_queries):
    subscribed(patient, make_plan())

    with django_assert_max_num_queries(8):
        response = api(patient).get("/api/v1/subscriptions/")

    assert response.status_code == 200 and len(response.json()) == 1


def test_staff_report_needs_the_finance_role(patient):
    subscribed(patient, make_plan(name="Yearly", period="year", price_minor=1200000))

    assert api(staff_member(roles.SUPPORT)).get("/api/v1/admin/subscriptions/report/").status_code == 403
    assert api(patient).get("/api/v1/admin/subscriptions/report/").status_code == 403
    body = api(staff_member(roles.FINANCE)).get("/api/v1/admin/subscriptions/report/").json()

    assert body["plans"][0]["active"] == 1 and body["plans"][0]["mrr"]["amount_minor"] == 100000
    assert body["mrr"] == [{"amount_minor": 100000, "currency": "INR", "exponent": 2, "display": "₹1,000.00"}]


# --- Pages ---------------------------------------------------------------------------------


def test_plans_page_subscribes_through_the_sandbox_card_page(client, patient, settings):
    plan = make_plan()
    client.force_login(patient)

    response = client.post(f"/plans/{plan.public_id}/subscribe/")
    assert response.status_code == 302 and "/plans/sandbox/" in response["Location"]
    card_page = response["Location"]
    paid = client.post(card_page, {"card_number": "4242 4242 4242 4242", "expiry": "12/30", "cvc": "123"})
    page = client.get(paid["Location"], follow=True)

    html = page.content.decode()
    assert page.status_code == 200
    assert "Consultations left this period: 4 of 4." in html
    assert Subscription.objects.get().status == "active"


def test_a_patient_finds_care_plans_in_the_account_menu_and_a_doctor_does_not(client, patient):
    from doctors.tests.factories import DoctorProfileFactory

    client.force_login(patient)
    assert 'href="/plans/"' in client.get("/account/").content.decode()
    client.force_login(DoctorProfileFactory().user)
    assert 'href="/plans/"' not in client.get("/account/").content.decode()


def test_another_patients_card_page_and_cancel_are_not_found(client, patient):
    subscription = subscribed(patient, make_plan())
    client.force_login(UserFactory())

    assert client.post(f"/plans/subscriptions/{subscription['id']}/cancel/").status_code == 404
    assert client.get(f"/plans/subscriptions/{subscription['id']}/return/").status_code == 404
    assert Subscription.objects.get().cancel_at_period_end is False


# --- Admin (finance) ---------------------------------------------------------------------------


def test_finance_defines_a_plan_in_the_admin_and_reads_the_mrr_report(client, patient):
    client.force_login(staff_member(roles.FINANCE))

    response = client.post(
        "/admin/payments/plan/add/",
        {"name": "Heart health", "description": "", "price_minor": "350000", "currency": "INR", "period": "month", "credits_per_period": "8", "is_active": "on", "sort_order": "0", "stripe_price_id": "", "razorpay_plan_id": ""},
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    subscribed(patient, Plan.objects.get(name="Heart health"))
    report = client.get("/admin/payments/subscription/report/")

    assert report.status_code == 200
    html = report.content.decode()
    assert "Heart health" in html and "₹3,500.00" in html


def test_other_staff_roles_cannot_manage_plans_or_read_the_report(client):
    client.force_login(staff_member(roles.SUPPORT))

    assert client.get("/admin/payments/plan/add/").status_code == 403
    assert client.get("/admin/payments/subscription/report/").status_code == 403
