"""Care plans through the sandbox gateway: subscribing, renewal, dunning with time travel,
cancel/resume, proration, credits at booking (and given back), webhooks applied once, access."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from django.core import mail
from django.db import close_old_connections, connection

from accounts.tests.factories import UserFactory
from appointments import services as appointment_services
from doctors.tests.factories import DoctorProfileFactory, ServiceFactory, SpecializationFactory
from medimeet.core.errors import ApplicationError
from payments import selectors, subscriptions
from payments.gateways import sandbox
from payments.models import CreditBalance, CreditUse, Plan, SandboxTransaction, Subscription, SubscriptionCharge, SubscriptionEvent, WebhookEvent
from payments.subscriptions import proration_amounts

from .conftest import NOW, SLOT

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("frozen_time")]

VISA, DECLINED, RENEWAL_DECLINED = "4242 4242 4242 4242", "4000 0000 0000 0002", "4000 0000 0000 0341"


def make_plan(**fields) -> Plan:
    values = {"name": "Video care", "price_minor": 200000, "currency": "INR", "period": "month", "credits_per_period": 4}
    return Plan.objects.create(**{**values, **fields})


def subscribe(patient, plan, card=VISA) -> Subscription:
    subscription, checkout = subscriptions.plan_subscribe(patient=patient, plan=plan)
    sandbox.sandbox_pay(reference=checkout.reference, card_number=card)  # the sandbox's webhook lands after commit
    return subscriptions.subscription_verify(subscription=subscription, by=patient)  # and the return page after it


def statuses(subscription) -> list[tuple[str, str]]:
    return list(SubscriptionEvent.objects.filter(subscription=subscription).values_list("from_status", "to_status"))


def test_subscribing_on_the_sandbox_activates_the_plan_once_with_this_periods_consultations(patient):
    plan = make_plan()

    subscription = subscribe(patient, plan)

    assert subscription.status == "active"
    assert (subscription.current_period_start, subscription.current_period_end) == (NOW, datetime(2026, 12, 2, 7, 0, tzinfo=UTC))
    assert subscription.payment_method.startswith("sbx_pm_")
    balance = CreditBalance.objects.get(subscription=subscription)
    assert (balance.granted, balance.used, balance.period_end) == (4, 0, subscription.current_period_end)
    first = SubscriptionCharge.objects.get(subscription=subscription)
    assert (first.kind, first.status, first.amount_minor, first.currency) == ("first", "paid", 200000, "INR")
    assert statuses(subscription) == [("", "incomplete"), ("incomplete", "active")]
    assert WebhookEvent.objects.get().status == "processed"  # webhook first, client return changed nothing more


def test_a_duplicate_webhook_delivery_changes_nothing(patient):
    subscription = subscribe(patient, make_plan())
    event = WebhookEvent.objects.get()
    body = __import__("json").dumps(event.payload).encode()

    from payments import services

    stored, created = services.webhook_receive(gateway_name="sandbox", body=body, headers={sandbox.SIGNATURE_HEADER: sandbox.sign(body)})

    assert created is False and stored.pk == event.pk
    assert CreditBalance.objects.filter(subscription=subscription).count() == 1
    assert statuses(subscription) == [("", "incomplete"), ("incomplete", "active")]


def test_a_declined_first_payment_leaves_no_plan(patient):
    subscription = subscribe(patient, make_plan(), card=DECLINED)

    assert subscription.status == "expired"
    assert not CreditBalance.objects.exists()
    assert selectors.subscription_current(patient=patient) is None


def test_a_patient_has_one_plan_at_a_time(patient):
    subscribe(patient, make_plan())

    with pytest.raises(ApplicationError) as error:
        subscriptions.plan_subscribe(patient=patient, plan=make_plan(name="Other"))

    assert error.value.code == "SUB_003"
    assert Subscription.objects.filter(patient=patient).count() == 1


def test_an_archived_plan_cannot_be_subscribed_to(patient):
    with pytest.raises(ApplicationError) as error:
        subscriptions.plan_subscribe(patient=patient, plan=make_plan(is_active=False))

    assert error.value.code == "SUB_001"
    assert not Subscription.objects.exists()


def test_renewal_at_the_period_end_starts_a_new_period_and_unused_consultations_do_not_roll_over(patient, frozen_time):
    subscription = subscribe(patient, make_plan())
    CreditBalance.objects.filter(subscription=subscription).update(used=1)
    end = subscription.current_period_end
    frozen_time.move_to(end + timedelta(minutes=5))

    assert subscriptions.subscriptions_renew_due() == 1
    assert subscriptions.subscriptions_renew_due() == 0  # nothing due twice

    subscription.refresh_from_db()
    assert (subscription.status, subscription.current_period_start, subscription.current_period_end) == ("active", end, datetime(2027, 1, 2, 7, 0, tzinfo=UTC))
    balance = CreditBalance.objects.get(subscription=subscription, period_start=end)
    assert (balance.granted, balance.used) == (4, 0)
    renewal = SubscriptionCharge.objects.get(kind="renewal")
    assert (renewal.status, renewal.amount_minor, renewal.period_start) == ("paid", 200000, end)


def test_a_plan_that_rolls_over_carries_the_unused_consultations(patient, frozen_time):
    subscription = subscribe(patient, make_plan(rollover=True))
    CreditBalance.objects.filter(subscription=subscription).update(used=1)
    frozen_time.move_to(subscription.current_period_end)

    subscriptions.subscriptions_renew_due()

    assert CreditBalance.objects.filter(subscription=subscription).order_by("-period_start").first().granted == 7


def test_failed_renewal_is_retried_after_one_three_and_five_days_with_grace_then_expires(patient, frozen_time):
    subscription = subscribe(patient, make_plan(), card=RENEWAL_DECLINED)
    end = subscription.current_period_end
    mail.outbox.clear()

    frozen_time.move_to(end)
    subscriptions.subscriptions_renew_due()
    subscription.refresh_from_db()
    assert (subscription.status, subscription.failed_attempts) == ("past_due", 1)
    assert (subscription.next_retry_at, subscription.grace_until) == (end + timedelta(days=1), end + timedelta(days=5))
    assert subscription.is_entitled(end + timedelta(days=4))  # grace: the plan still works
    assert len(mail.outbox) == 1 and "did not go through" in mail.outbox[0].subject

    frozen_time.move_to(end + timedelta(hours=23))
    assert subscriptions.subscriptions_renew_due() == 0  # not due yet

    for day, attempt, retry in ((1, 2, 3), (3, 3, 5)):
        frozen_time.move_to(end + timedelta(days=day))
        subscriptions.subscriptions_renew_due()
        subscription.refresh_from_db()
        assert (subscription.status, subscription.failed_attempts, subscription.next_retry_at) == ("past_due", attempt, end + timedelta(days=retry))

    frozen_time.move_to(end + timedelta(days=5))
    subscriptions.subscriptions_renew_due()

    subscription.refresh_from_db()
    assert (subscription.status, subscription.ended_at, subscription.next_retry_at) == ("expired", end + timedelta(days=5), None)
    renewal = SubscriptionCharge.objects.get(kind="renewal")
    assert (renewal.status, renewal.attempts) == ("failed", 4)
    assert SandboxTransaction.objects.filter(idempotency_key__startswith=f"renewal-{renewal.public_id}").count() == 4
    subjects = [m.subject for m in mail.outbox]
    assert sum("did not go through" in s for s in subjects) == 3 and sum("has ended" in s for s in subjects) == 1
    assert statuses(subscription)[-2:] == [("past_due", "past_due"), ("past_due", "expired")] or statuses(subscription)[-1] == ("past_due", "expired")


def test_a_renewal_retry_that_succeeds_restores_the_plan_from_the_original_period_end(patient, frozen_time, settings):
    subscription = subscribe(patient, make_plan(), card=RENEWAL_DECLINED)
    end = subscription.current_period_end
    frozen_time.move_to(end)
    subscriptions.subscriptions_renew_due()
    Subscription.objects.filter(pk=subscription.pk).update(payment_method=sandbox.card_token(sandbox._fingerprint("4242424242424242")))  # a new card

    frozen_time.move_to(end + timedelta(days=1))
    subscriptions.subscriptions_renew_due()

    subscription.refresh_from_db()
    assert (subscription.status, subscription.failed_attempts, subscription.grace_until) == ("active", 0, None)
    assert (subscription.current_period_start, subscription.current_period_end) == (end, datetime(2027, 1, 2, 7, 0, tzinfo=UTC))


def test_cancel_at_period_end_keeps_the_plan_until_then_and_resume_takes_it_back(patient, frozen_time):
    subscription = subscribe(patient, make_plan())

    subscriptions.subscription_set_cancel(subscription=subscription, by=patient, cancel=True)
    subscriptions.subscription_set_cancel(subscription=subscription, by=patient, cancel=False)
    subscription.refresh_from_db()
    assert subscription.cancel_at_period_end is False

    subscriptions.subscription_set_cancel(subscription=subscription, by=patient, cancel=True)
    frozen_time.move_to(subscription.current_period_end)
    subscriptions.subscriptions_renew_due()

    subscription.refresh_from_db()
    assert subscription.status == "cancelled"
    assert not SubscriptionCharge.objects.filter(kind="renewal").exists()


def test_another_patient_cannot_cancel_or_change_a_subscription(patient):
    subscription = subscribe(patient, make_plan())
    other = UserFactory()

    with pytest.raises(ApplicationError) as error:
        subscriptions.subscription_set_cancel(subscription=subscription, by=other, cancel=True)

    assert error.value.code == "SUB_002"
    subscription.refresh_from_db()
    assert subscription.cancel_at_period_end is False


def test_proration_arithmetic_is_by_the_second_rounded_half_up():
    start = datetime(2026, 11, 1, tzinfo=UTC)
    end = datetime(2026, 12, 1, tzinfo=UTC)  # 30 days

    assert proration_amounts(old_price=100000, new_price=250000, period_start=start, period_end=end, now=start + timedelta(days=10)) == (
        66667, 166667, Decimal(20 * 86400) / Decimal(30 * 86400)
    )
    credit, charge, _ = proration_amounts(old_price=999, new_price=1999, period_start=start, period_end=end, now=start + timedelta(days=15))
    assert (credit, charge) == (500, 1000)  # 499.5 → 500, 999.5 → 1000
    assert proration_amounts(old_price=999, new_price=1999, period_start=start, period_end=end, now=end + timedelta(days=1))[:2] == (0, 0)


def test_an_upgrade_charges_the_prorated_difference_and_raises_this_periods_allowance(patient, frozen_time):
    subscription = subscribe(patient, make_plan(price_minor=300000))
    CreditBalance.objects.filter(subscription=subscription).update(used=3)
    bigger = make_plan(name="Family", price_minor=600000, credits_per_period=8)
    frozen_time.move_to(NOW + timedelta(days=15))  # 15 of 30 days left

    quote = subscriptions.proration_quote(subscription=subscription, plan=bigger, by=patient)
    subscriptions.subscription_change_plan(subscription=subscription, plan=bigger, by=patient)

    assert (quote.credit_minor, quote.charge_minor, quote.amount_due_minor) == (150000, 300000, 150000)
    subscription.refresh_from_db()
    assert subscription.plan == bigger
    proration = SubscriptionCharge.objects.get(kind="proration")
    assert (proration.status, proration.amount_minor) == ("paid", 150000)
    assert CreditBalance.objects.get(subscription=subscription).granted == 8


def test_a_downgrade_keeps_the_difference_as_credit_off_the_next_renewal(patient, frozen_time):
    subscription = subscribe(patient, make_plan(price_minor=600000, credits_per_period=8))
    CreditBalance.objects.filter(subscription=subscription).update(used=5)
    smaller = make_plan(name="Light", price_minor=300000, credits_per_period=2)
    frozen_time.move_to(NOW + timedelta(days=15))

    subscriptions.subscription_change_plan(subscription=subscription, plan=smaller, by=patient)
    subscription.refresh_from_db()
    assert subscription.balance_minor == 150000
    assert CreditBalance.objects.get(subscription=subscription).granted == 5  # never below what was used
    frozen_time.move_to(subscription.current_period_end)
    subscriptions.subscriptions_renew_due()

    subscription.refresh_from_db()
    assert subscription.balance_minor == 0
    assert SubscriptionCharge.objects.get(kind="renewal").amount_minor == 150000


def test_an_upgrade_that_cannot_be_paid_changes_nothing(patient, frozen_time):
    subscription = subscribe(patient, make_plan(), card=RENEWAL_DECLINED)
    bigger = make_plan(name="Family", price_minor=600000, credits_per_period=8)

    with pytest.raises(ApplicationError) as error:
        subscriptions.subscription_change_plan(subscription=subscription, plan=bigger, by=patient)

    assert error.value.code == "PAY_001"
    subscription.refresh_from_db()
    assert subscription.plan.name == "Video care"
    assert SubscriptionCharge.objects.get(kind="proration").status == "failed"


def test_switching_to_another_currency_or_period_is_refused(patient):
    subscription = subscribe(patient, make_plan())

    for other in (make_plan(name="USD", currency="USD"), make_plan(name="Yearly", period="year")):
        with pytest.raises(ApplicationError) as error:
            subscriptions.proration_quote(subscription=subscription, plan=other, by=patient)
        assert error.value.code == "SUB_005"


# --- Booking with a plan ---------------------------------------------------------------------------


def book(clinic, patient, start=SLOT):
    return appointment_services.appointment_hold(patient=patient, service=clinic["service"], start=start, reason="Follow-up of my blood pressure")


def test_a_covered_booking_costs_nothing_and_uses_one_consultation(clinic, patient):
    subscription = subscribe(patient, make_plan(credits_per_period=2))

    appointment = book(clinic, patient)

    assert (appointment.status, appointment.price_minor) == ("confirmed", 0)
    assert CreditUse.objects.get().appointment == appointment
    assert CreditBalance.objects.get(subscription=subscription).remaining == 1


def test_when_the_consultations_are_used_up_the_booking_is_paid(clinic, patient):
    subscription = subscribe(patient, make_plan(credits_per_period=1))
    book(clinic, patient)

    second = book(clinic, patient, start=SLOT + timedelta(days=1))

    assert (second.status, second.price_minor) == ("pending_payment", 50000)
    assert CreditBalance.objects.get(subscription=subscription).remaining == 0


def test_cancelling_a_covered_booking_in_the_full_refund_window_gives_the_consultation_back(clinic, patient):
    subscription = subscribe(patient, make_plan(credits_per_period=2))
    appointment = book(clinic, patient)

    appointment_services.appointment_cancel(appointment=appointment, by=patient, reason="Feeling better")
    appointment_services.refund_for_cancellation(appointment_id=appointment.pk, percent=100)  # twice: once only

    assert CreditBalance.objects.get(subscription=subscription).remaining == 2
    assert CreditUse.objects.get().returned_at is not None


def test_a_lapsed_covered_hold_gives_the_consultation_back(clinic, patient, frozen_time):
    subscription = subscribe(patient, make_plan(credits_per_period=2))
    hold = appointment_services.appointment_hold(patient=patient, service=clinic["service"], start=SLOT)
    assert CreditBalance.objects.get(subscription=subscription).remaining == 1

    frozen_time.shift(timedelta(hours=1))
    appointment_services.holds_release_expired(patient=patient)

    hold.refresh_from_db()
    assert hold.status == "expired"
    assert CreditBalance.objects.get(subscription=subscription).remaining == 2


def test_a_plan_for_one_specialization_does_not_cover_other_doctors(clinic, patient):
    cardiology = SpecializationFactory(name="Cardiology")
    subscribe(patient, make_plan(specialization=cardiology))

    appointment = book(clinic, patient)

    assert (appointment.status, appointment.price_minor) == ("pending_payment", 50000)
    assert not CreditUse.objects.exists()


def test_unlimited_plan_with_one_doctor_covers_only_that_doctor(clinic, patient):
    subscribe(patient, make_plan(credits_per_period=None, doctor=clinic["doctor"]))
    other_doctor = DoctorProfileFactory(country="IN")
    from appointments.tests.test_booking import open_all_week

    open_all_week(other_doctor)
    other_service = ServiceFactory(doctor=other_doctor, duration_minutes=30, price_minor=50000, currency="INR")

    covered = [book(clinic, patient, start=SLOT + timedelta(days=d)) for d in range(3)]
    paid = appointment_services.appointment_hold(patient=patient, service=other_service, start=SLOT + timedelta(hours=1), reason="Second opinion please")

    assert [a.price_minor for a in covered] == [0, 0, 0]
    assert paid.price_minor == 50000


def test_entitlements_work_in_grace_and_stop_after_it(clinic, patient, frozen_time):
    subscription = subscribe(patient, make_plan(), card=RENEWAL_DECLINED)
    end = subscription.current_period_end
    frozen_time.move_to(end)
    subscriptions.subscriptions_renew_due()

    assert selectors.plan_coverage(patient=patient, doctor=clinic["doctor"]) is not None
    Subscription.objects.filter(pk=subscription.pk).update(grace_until=end)  # grace over
    assert selectors.plan_coverage(patient=patient, doctor=clinic["doctor"]) is None


def test_many_bookings_at_once_with_two_consultations_left_cover_exactly_two(clinic, patient):
    from appointments.tests.test_booking import open_all_week

    subscription = subscribe(patient, make_plan(credits_per_period=2))
    # Twelve doctors (so the schedule locks do not serialise the bookings), twelve times.
    bookings = []
    for number in range(12):
        doctor = DoctorProfileFactory(country="IN")
        open_all_week(doctor)
        bookings.append(({"service": ServiceFactory(doctor=doctor, duration_minutes=30, price_minor=50000, currency="INR")}, SLOT + timedelta(days=number // 6, minutes=30 * (number % 6))))
    results, barrier = [], threading.Barrier(len(bookings))

    def run(booking):
        close_old_connections()
        try:
            barrier.wait()
            results.append(book(booking[0], patient, start=booking[1]).price_minor)
        except ApplicationError as exc:
            results.append(exc.code)
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=(booking,)) for booking in bookings]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert sorted(results) == [0, 0] + [50000] * 10, results
    balance = CreditBalance.objects.get(subscription=subscription)
    assert (balance.granted, balance.used) == (2, 2)
    assert CreditUse.objects.count() == 2


def test_staff_report_counts_subscriptions_by_plan_and_mrr_per_currency(patient):
    subscribe(patient, make_plan(name="Monthly", price_minor=200000))
    subscribe(UserFactory(), make_plan(name="Yearly", period="year", price_minor=1200001))
    subscribe(UserFactory(), make_plan(name="US", currency="USD", price_minor=1999))

    rows = selectors.subscriptions_report()

    assert [(r["plan"], r["currency"], r["active"], r["mrr_minor"]) for r in rows] == [
        ("Monthly", "INR", 1, 200000),
        ("Yearly", "INR", 1, 100000),
        ("US", "USD", 1, 1999),
    ]
    assert selectors.mrr_by_currency(rows) == {"INR": 300000, "USD": 1999}


def test_a_hindi_patient_is_told_about_a_failed_renewal_in_hindi(frozen_time):
    patient = UserFactory(language="hi")
    subscription = subscribe(patient, make_plan(), card=RENEWAL_DECLINED)
    mail.outbox.clear()
    frozen_time.move_to(subscription.current_period_end)

    subscriptions.subscriptions_renew_due()

    message = mail.outbox[0]
    assert message.subject == "MediMeet: आपके Video care प्लान का नवीनीकरण नहीं हो पाया"
    assert "हम आपके Video care प्लान के लिए ₹2,000.00 का नवीनीकरण भुगतान नहीं ले सके।" in message.body
