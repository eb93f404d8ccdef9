"""Payments, refunds, webhook events, invoices, saved cards and the sandbox gateway's ledger.

Money is always an integer in the currency's minor unit (cents, paise; yen for JPY) with its
ISO 4217 code beside it. The database keeps the invariants that must never be false: an amount
is positive, refunds never exceed what was paid, one appointment has at most one live payment,
a gateway event is stored once, invoice numbers are unique per year.
"""

from __future__ import annotations

import secrets
import uuid

from django.conf import settings
from django.db import models
from django.db.models import F, Q
from django.utils.translation import gettext_lazy as _

from appointments.models import Appointment
from doctors.models import CURRENCY_CHOICES, DoctorProfile, format_money
from medimeet.core.models import TimeStampedModel


class Gateway(models.TextChoices):
    SANDBOX = "sandbox", _("Sandbox")
    STRIPE = "stripe", _("Stripe")
    RAZORPAY = "razorpay", _("Razorpay")


def _verification_code() -> str:
    return secrets.token_hex(8).upper()


class PaymentQuerySet(models.QuerySet):
    def live(self) -> PaymentQuerySet:
        return self.filter(status__in=Payment.LIVE_STATUSES)


class Payment(TimeStampedModel):
    """One attempt to pay for one appointment through one gateway.

    The amount and currency are copied from the appointment (the server-side price) when the
    payment is created; what the gateway reports is compared with them before the appointment is
    confirmed. A failed or voided attempt leaves room for a new one.
    """

    class Status(models.TextChoices):
        PENDING = "pending", _("Waiting for the payment")
        SUCCEEDED = "succeeded", _("Paid")
        FAILED = "failed", _("Failed")
        VOIDED = "voided", _("Voided")
        FLAGGED = "flagged", _("Flagged for review")

    LIVE_STATUSES = ("pending", "succeeded")
    FINAL_STATUSES = ("succeeded", "failed", "voided", "flagged")

    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    appointment = models.ForeignKey(Appointment, on_delete=models.PROTECT, related_name="payments")
    patient = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="payments")
    doctor = models.ForeignKey(DoctorProfile, on_delete=models.PROTECT, related_name="payments")
    gateway = models.CharField(max_length=10, choices=Gateway.choices)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.PENDING, db_index=True)
    amount_minor = models.PositiveIntegerField()
    currency = models.CharField(max_length=3, choices=CURRENCY_CHOICES)
    platform_fee_minor = models.PositiveIntegerField(default=0)
    amount_refunded_minor = models.PositiveIntegerField(default=0)
    amount_received_minor = models.PositiveIntegerField(
        null=True, blank=True, help_text=_("What the gateway reported taking (differs from amount only on a flagged payment).")
    )
    billing_country = models.CharField(max_length=2, blank=True)
    # The gateway's own ids: PaymentIntent / order / sandbox transaction, and the charge or payment.
    gateway_reference = models.CharField(max_length=100, blank=True, db_index=True)
    gateway_payment_id = models.CharField(max_length=100, blank=True)
    client_secret = models.CharField(max_length=200, blank=True, help_text=_("Stripe PaymentIntent client secret (not card data)."))
    payout_account = models.CharField(max_length=100, blank=True, help_text=_("The doctor's connected account the payment was split with (Stripe Connect)."))
    idempotency_key = models.CharField(max_length=100, blank=True)
    save_card = models.BooleanField(default=False)
    # What is kept of the card: the gateway's token, brand, last four digits, and a fingerprint.
    card_brand = models.CharField(max_length=20, blank=True)
    card_last4 = models.CharField(max_length=4, blank=True)
    card_fingerprint = models.CharField(max_length=64, blank=True, db_index=True)
    failure_code = models.CharField(max_length=60, blank=True)
    failure_message = models.CharField(max_length=300, blank=True)
    flag_reason = models.CharField(max_length=300, blank=True)
    paid_at = models.DateTimeField(null=True, blank=True, db_index=True)

    objects = PaymentQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at"]
        indexes = [
            models.Index(fields=["patient", "created_at"], name="payment_patient_created_idx"),
            models.Index(fields=["doctor", "status", "paid_at"], name="payment_doctor_paid_idx"),
            models.Index(fields=["status", "created_at"], name="payment_status_created_idx"),
        ]
        constraints = [
            models.CheckConstraint(condition=Q(amount_minor__gt=0), name="payment_amount_positive"),
            models.CheckConstraint(condition=Q(amount_refunded_minor__lte=F("amount_minor")), name="payment_refunds_within_amount"),
            models.CheckConstraint(condition=Q(platform_fee_minor__lte=F("amount_minor")), name="payment_fee_within_amount"),
            models.CheckConstraint(condition=~Q(status="succeeded") | Q(paid_at__isnull=False), name="payment_succeeded_has_paid_at"),
            # Never two live payments (pending or paid) for one appointment.
            models.UniqueConstraint(fields=["appointment"], condition=Q(status__in=["pending", "succeeded"]), name="payment_one_live_per_appointment"),
            models.UniqueConstraint(fields=["patient", "idempotency_key"], condition=~Q(idempotency_key=""), name="payment_unique_idempotency_key"),
            models.UniqueConstraint(fields=["gateway", "gateway_reference"], condition=~Q(gateway_reference=""), name="payment_unique_gateway_reference"),
        ]

    def __str__(self) -> str:
        return f"{self.get_gateway_display()} {format_money(self.amount_minor, self.currency)} · {self.get_status_display()}"

    @property
    def amount_display(self) -> str:
        return format_money(self.amount_minor, self.currency)

    @property
    def refunded_display(self) -> str:
        return format_money(self.amount_refunded_minor, self.currency)

    @property
    def refundable_minor(self) -> int:
        return self.amount_minor - self.amount_refunded_minor if self.status == self.Status.SUCCEEDED else 0


class Refund(TimeStampedModel):
    """Money going back to the patient. Policy refunds (the cancellation policy of the
    appointment) are approved on creation and processed by Celery; refunds asked by staff, or
    more than the policy gives, wait for a finance approver (requested → approved → processing →
    succeeded / failed, or rejected)."""

    class Status(models.TextChoices):
        REQUESTED = "requested", _("Waiting for approval")
        APPROVED = "approved", _("Approved")
        PROCESSING = "processing", _("Processing")
        SUCCEEDED = "succeeded", _("Refunded")
        FAILED = "failed", _("Failed")
        REJECTED = "rejected", _("Rejected")

    class Source(models.TextChoices):
        POLICY = "policy", _("Cancellation policy")
        PATIENT = "patient", _("Patient request")
        STAFF = "staff", _("Staff")
        SYSTEM = "system", _("System (paid after the hold lapsed)")
        GATEWAY = "gateway", _("Refunded at the gateway")

    # Refunds in these states count against what is left to refund.
    COMMITTED_STATUSES = ("requested", "approved", "processing", "succeeded")
    TRANSITIONS = {
        Status.REQUESTED: {Status.APPROVED, Status.REJECTED},
        Status.APPROVED: {Status.PROCESSING},
        Status.PROCESSING: {Status.SUCCEEDED, Status.FAILED},
        Status.FAILED: {Status.PROCESSING},
        Status.SUCCEEDED: set(),
        Status.REJECTED: set(),
    }

    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    payment = models.ForeignKey(Payment, on_delete=models.PROTECT, related_name="refunds")
    amount_minor = models.PositiveIntegerField()
    reason = models.CharField(max_length=500)
    source = models.CharField(max_length=10, choices=Source.choices)
    status = models.CharField(max_length=12, choices=Status.choices, default=Status.REQUESTED, db_index=True)
    requested_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    decided_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    decided_at = models.DateTimeField(null=True, blank=True)
    decision_note = models.CharField(max_length=500, blank=True)
    gateway_reference = models.CharField(max_length=100, blank=True, db_index=True)
    idempotency_key = models.CharField(max_length=100, blank=True)
    attempts = models.PositiveSmallIntegerField(default=0)
    failure_message = models.CharField(max_length=300, blank=True)
    processed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        permissions = [("approve_refund", "Can approve or reject refunds")]
        indexes = [models.Index(fields=["status", "processed_at"], name="refund_status_processed_idx")]  # the staff dashboard
        constraints = [
            models.CheckConstraint(condition=Q(amount_minor__gt=0), name="refund_amount_positive"),
            models.CheckConstraint(condition=~Q(status="succeeded") | Q(processed_at__isnull=False), name="refund_succeeded_has_time"),
            models.UniqueConstraint(fields=["payment", "idempotency_key"], condition=~Q(idempotency_key=""), name="refund_unique_idempotency_key"),
            models.UniqueConstraint(fields=["payment", "gateway_reference"], condition=~Q(gateway_reference=""), name="refund_unique_gateway_reference"),
        ]

    def __str__(self) -> str:
        return f"Refund {format_money(self.amount_minor, self.payment.currency)} · {self.get_status_display()}"

    @property
    def amount_display(self) -> str:
        return format_money(self.amount_minor, self.payment.currency)


class WebhookEvent(models.Model):
    """Every event a gateway delivered, stored before anything else is done with it. The unique
    (gateway, event_id) makes duplicate deliveries harmless; processing claims the row with a
    conditional update so an event is applied exactly once."""

    class Status(models.TextChoices):
        RECEIVED = "received", _("Received")
        PROCESSING = "processing", _("Processing")
        PROCESSED = "processed", _("Processed")
        DEFERRED = "deferred", _("Waiting for an earlier event")
        IGNORED = "ignored", _("Ignored")
        FAILED = "failed", _("Failed")

    gateway = models.CharField(max_length=10, choices=Gateway.choices)
    event_id = models.CharField(max_length=100)
    event_type = models.CharField(max_length=100)
    payload = models.JSONField()
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.RECEIVED, db_index=True)
    # The gateway object the event is about (PaymentIntent / order / refund id), for deferral.
    object_reference = models.CharField(max_length=100, blank=True, db_index=True)
    attempts = models.PositiveSmallIntegerField(default=0)
    error = models.CharField(max_length=500, blank=True)
    received_at = models.DateTimeField(auto_now_add=True, db_index=True)
    processed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-received_at"]
        constraints = [models.UniqueConstraint(fields=["gateway", "event_id"], name="webhook_event_once")]

    def __str__(self) -> str:
        return f"{self.gateway} {self.event_type} {self.event_id}"


class InvoiceCounter(models.Model):
    """The last invoice number issued in a year. Locked while an invoice is issued, inside the
    transaction that records the payment, so numbers have no gaps (a rollback returns it)."""

    year = models.PositiveSmallIntegerField(primary_key=True)
    last_number = models.PositiveIntegerField(default=0)


class Invoice(models.Model):
    """The receipt/invoice for a successful payment: numbered MM-<year>-<nnnnnn> without gaps,
    amounts frozen at issue, verifiable by anyone holding its code."""

    payment = models.OneToOneField(Payment, on_delete=models.PROTECT, related_name="invoice")
    year = models.PositiveSmallIntegerField()
    sequence = models.PositiveIntegerField()
    number = models.CharField(max_length=20, unique=True)
    issued_at = models.DateTimeField()
    currency = models.CharField(max_length=3)
    # Line items: [{"description", "quantity", "unit_minor", "total_minor"}].
    lines = models.JSONField()
    subtotal_minor = models.PositiveIntegerField(help_text=_("Total before tax."))
    tax_name = models.CharField(max_length=20, blank=True)
    tax_rate = models.DecimalField(max_digits=5, decimal_places=2, default=0)
    tax_minor = models.PositiveIntegerField(default=0)
    total_minor = models.PositiveIntegerField()
    seller = models.JSONField(help_text=_("Doctor name, registration number, clinic, country, at issue."))
    buyer_name = models.CharField(max_length=200)
    payment_method = models.CharField(max_length=60)
    verification_code = models.CharField(max_length=16, unique=True, default=_verification_code)

    class Meta:
        ordering = ["-issued_at"]
        constraints = [
            models.UniqueConstraint(fields=["year", "sequence"], name="invoice_unique_number_per_year"),
            models.CheckConstraint(condition=Q(total_minor=F("subtotal_minor") + F("tax_minor")), name="invoice_total_adds_up"),
        ]

    def __str__(self) -> str:
        return self.number


class GatewayCustomer(models.Model):
    """The patient's customer record at a gateway (Stripe Customer), created once."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="gateway_customers")
    gateway = models.CharField(max_length=10, choices=Gateway.choices)
    customer_id = models.CharField(max_length=100)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["user", "gateway"], name="gateway_customer_once")]


class SavedCard(TimeStampedModel):
    """A card the patient chose to keep: only the gateway's token, brand, last four and expiry."""

    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="saved_cards")
    gateway = models.CharField(max_length=10, choices=Gateway.choices)
    token = models.CharField(max_length=100, help_text=_("The gateway's payment-method id."))
    brand = models.CharField(max_length=20)
    last4 = models.CharField(max_length=4)
    exp_month = models.PositiveSmallIntegerField(null=True, blank=True)
    exp_year = models.PositiveSmallIntegerField(null=True, blank=True)
    fingerprint = models.CharField(max_length=64, blank=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [models.UniqueConstraint(fields=["user", "gateway", "token"], name="saved_card_once")]

    def __str__(self) -> str:
        return f"{self.brand} •••• {self.last4}"


class PayoutAccount(models.Model):
    """A doctor's connected account at a gateway (Stripe Connect): when set, each payment
    transfers the doctor's share to it and keeps the platform fee."""

    doctor = models.ForeignKey(DoctorProfile, on_delete=models.CASCADE, related_name="payout_accounts")
    gateway = models.CharField(max_length=10, choices=Gateway.choices)
    account_id = models.CharField(max_length=100)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["doctor", "gateway"], name="payout_account_once")]

    def __str__(self) -> str:
        return f"{self.gateway} {self.account_id}"


class SandboxTransaction(TimeStampedModel):
    """The offline sandbox gateway's own ledger: what "the gateway" believes happened. It plays
    the part of Stripe's or Razorpay's records, so the sandbox has something to reconcile
    against and webhooks have a source."""

    class Status(models.TextChoices):
        REQUIRES_PAYMENT = "requires_payment", _("Requires payment")
        SUCCEEDED = "succeeded", _("Succeeded")
        FAILED = "failed", _("Failed")
        CANCELED = "canceled", _("Canceled")

    reference = models.CharField(max_length=40, unique=True)
    amount_minor = models.PositiveIntegerField()
    currency = models.CharField(max_length=3)
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.REQUIRES_PAYMENT)
    amount_refunded_minor = models.PositiveIntegerField(default=0)
    card_brand = models.CharField(max_length=20, blank=True)
    card_last4 = models.CharField(max_length=4, blank=True)
    card_fingerprint = models.CharField(max_length=64, blank=True)
    failure_code = models.CharField(max_length=60, blank=True)
    idempotency_key = models.CharField(max_length=100, unique=True, null=True, blank=True)
    refunds = models.JSONField(default=list, help_text=_("[{id, amount_minor, idempotency_key}]"))

    def __str__(self) -> str:
        return self.reference


# --- Subscriptions (care plans) -----------------------------------------------------------------


class PlanQuerySet(models.QuerySet):
    def offered(self) -> PlanQuerySet:
        return self.filter(is_active=True).select_related("specialization", "doctor__user").order_by("sort_order", "price_minor")


class Plan(TimeStampedModel):
    """A care plan staff offer: a price per month or year and what it entitles to — a number of
    consultations per period (any doctor, or one specialization) or unlimited consultations with
    one doctor. Archived plans keep their subscribers but are not offered."""

    class Period(models.TextChoices):
        MONTH = "month", _("Monthly")
        YEAR = "year", _("Yearly")

    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    name = models.CharField(_("name"), max_length=120)
    description = models.TextField(_("description"), blank=True)
    price_minor = models.PositiveIntegerField(_("price"), help_text=_("In the currency's minor unit (cents, paise; yen for JPY)."))
    currency = models.CharField(_("currency"), max_length=3, choices=CURRENCY_CHOICES)
    period = models.CharField(_("billing period"), max_length=5, choices=Period.choices, default=Period.MONTH)
    credits_per_period = models.PositiveSmallIntegerField(
        _("consultations per period"), null=True, blank=True, help_text=_("Empty: unlimited (only with a chosen doctor).")
    )
    specialization = models.ForeignKey(
        "doctors.Specialization", null=True, blank=True, on_delete=models.PROTECT, related_name="+", verbose_name=_("specialization"),
        help_text=_("Only doctors of this specialization (or under it). Empty: any doctor."),
    )
    doctor = models.ForeignKey(DoctorProfile, null=True, blank=True, on_delete=models.PROTECT, related_name="+", verbose_name=_("doctor"))
    rollover = models.BooleanField(_("unused consultations roll over"), default=False)
    is_active = models.BooleanField(_("offered"), default=True, help_text=_("Untick to archive: subscribers keep it, nobody new can choose it."))
    sort_order = models.PositiveSmallIntegerField(default=0)
    stripe_price_id = models.CharField(max_length=100, blank=True, help_text=_("Stripe Price id (price_…) for Stripe Billing."))
    razorpay_plan_id = models.CharField(max_length=100, blank=True, help_text=_("Razorpay plan id (plan_…) for Razorpay Subscriptions."))

    objects = PlanQuerySet.as_manager()

    class Meta:
        ordering = ["sort_order", "price_minor"]
        constraints = [
            models.CheckConstraint(condition=Q(price_minor__gt=0), name="plan_price_positive"),
            # Unlimited consultations only with one chosen doctor.
            models.CheckConstraint(condition=Q(credits_per_period__isnull=False) | Q(doctor__isnull=False), name="plan_unlimited_needs_doctor"),
            models.CheckConstraint(condition=Q(credits_per_period__isnull=True) | Q(credits_per_period__gt=0), name="plan_credits_positive"),
        ]

    def __str__(self) -> str:
        return f"{self.name} ({format_money(self.price_minor, self.currency)}/{self.period})"

    @property
    def price_display(self) -> str:
        return format_money(self.price_minor, self.currency)

    @property
    def months(self) -> int:
        return 12 if self.period == self.Period.YEAR else 1

    def covers(self, *, doctor: DoctorProfile) -> bool:
        """Whether a booking with ``doctor`` is covered (the caller checks credits)."""
        if self.doctor_id is not None and self.doctor_id != doctor.pk:
            return False
        if self.specialization_id is not None:
            paths = [doctor.primary_specialization.path, *(s.path for s in doctor.secondary_specializations.all())]
            if not any(path.startswith(self.specialization.path) for path in paths):
                return False
        return True


class SubscriptionQuerySet(models.QuerySet):
    def live(self) -> SubscriptionQuerySet:
        return self.filter(status__in=Subscription.LIVE_STATUSES)


class Subscription(TimeStampedModel):
    """A patient's care plan. incomplete (first payment not made) → active → past_due (a renewal
    failed: entitlements keep working until ``grace_until`` while payment is retried) → active
    again, or expired after the last retry; cancelled when it ends at the patient's request (at
    the period's end) or the gateway's. Every transition is checked and recorded."""

    class Status(models.TextChoices):
        INCOMPLETE = "incomplete", _("Waiting for the first payment")
        ACTIVE = "active", _("Active")
        PAST_DUE = "past_due", _("Payment overdue")
        CANCELLED = "cancelled", _("Cancelled")
        EXPIRED = "expired", _("Expired")

    LIVE_STATUSES = ("incomplete", "active", "past_due")
    ENTITLED_STATUSES = ("active", "past_due")
    TRANSITIONS = {
        Status.INCOMPLETE: {Status.ACTIVE, Status.EXPIRED, Status.CANCELLED},
        Status.ACTIVE: {Status.PAST_DUE, Status.CANCELLED, Status.EXPIRED},
        Status.PAST_DUE: {Status.ACTIVE, Status.CANCELLED, Status.EXPIRED},
        Status.CANCELLED: set(),
        Status.EXPIRED: set(),
    }

    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    patient = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="subscriptions")
    plan = models.ForeignKey(Plan, on_delete=models.PROTECT, related_name="subscriptions")
    gateway = models.CharField(max_length=10, choices=Gateway.choices)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.INCOMPLETE, db_index=True)
    gateway_reference = models.CharField(max_length=100, blank=True, help_text=_("Stripe subscription / Razorpay subscription id."))
    payment_method = models.CharField(max_length=100, blank=True, help_text=_("The gateway's token of the card renewals are charged to (sandbox)."))
    current_period_start = models.DateTimeField(null=True, blank=True)
    current_period_end = models.DateTimeField(null=True, blank=True, db_index=True)
    cancel_at_period_end = models.BooleanField(default=False)
    failed_attempts = models.PositiveSmallIntegerField(default=0)
    next_retry_at = models.DateTimeField(null=True, blank=True)
    grace_until = models.DateTimeField(null=True, blank=True)
    balance_minor = models.PositiveIntegerField(default=0, help_text=_("Credit from a downgrade, taken off the next renewal."))
    ended_at = models.DateTimeField(null=True, blank=True)

    objects = SubscriptionQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["status", "current_period_end"], name="subscription_status_end_idx")]
        constraints = [
            # One plan at a time per patient.
            models.UniqueConstraint(fields=["patient"], condition=Q(status__in=["incomplete", "active", "past_due"]), name="subscription_one_live_per_patient"),
            models.UniqueConstraint(fields=["gateway", "gateway_reference"], condition=~Q(gateway_reference=""), name="subscription_unique_gateway_reference"),
            models.CheckConstraint(condition=~Q(status__in=["active", "past_due"]) | Q(current_period_end__isnull=False), name="subscription_entitled_has_period"),
        ]

    def __str__(self) -> str:
        return f"{self.plan.name} · {self.get_status_display()}"

    def can_transition_to(self, status: str) -> bool:
        return status in self.TRANSITIONS[self.Status(self.status)]

    def is_entitled(self, now) -> bool:
        """Entitlements work while active and during the grace period of a failed renewal."""
        if self.status == self.Status.ACTIVE:
            return True
        return self.status == self.Status.PAST_DUE and self.grace_until is not None and now < self.grace_until


class SubscriptionEvent(models.Model):
    """Every status change of a subscription (and plan changes), with why."""

    subscription = models.ForeignKey(Subscription, on_delete=models.CASCADE, related_name="events")
    from_status = models.CharField(max_length=10, blank=True)
    to_status = models.CharField(max_length=10)
    note = models.CharField(max_length=300, blank=True)
    at = models.DateTimeField(db_index=True)

    class Meta:
        ordering = ["at", "pk"]


class SubscriptionCharge(TimeStampedModel):
    """One invoice of a subscription: the first payment, a renewal (tried again while dunning)
    or a plan change's prorated difference."""

    class Kind(models.TextChoices):
        FIRST = "first", _("First payment")
        RENEWAL = "renewal", _("Renewal")
        PRORATION = "proration", _("Plan change (prorated)")

    class Status(models.TextChoices):
        PENDING = "pending", _("Waiting for the payment")
        PAID = "paid", _("Paid")
        FAILED = "failed", _("Failed")
        VOIDED = "voided", _("Voided")

    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    subscription = models.ForeignKey(Subscription, on_delete=models.PROTECT, related_name="charges")
    kind = models.CharField(max_length=10, choices=Kind.choices)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.PENDING)
    amount_minor = models.PositiveIntegerField()
    currency = models.CharField(max_length=3)
    period_start = models.DateTimeField(null=True, blank=True)
    period_end = models.DateTimeField(null=True, blank=True)
    gateway_reference = models.CharField(max_length=100, blank=True, help_text=_("Sandbox transaction / Stripe invoice / Razorpay payment id."))
    attempts = models.PositiveSmallIntegerField(default=0)
    failure_message = models.CharField(max_length=300, blank=True)
    paid_at = models.DateTimeField(null=True, blank=True, db_index=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(fields=["subscription", "gateway_reference"], condition=~Q(gateway_reference=""), name="subscription_charge_unique_reference"),
            # One renewal invoice per period, however many times it is retried.
            models.UniqueConstraint(fields=["subscription", "kind", "period_start"], condition=Q(kind="renewal"), name="subscription_charge_one_renewal_per_period"),
            models.CheckConstraint(condition=~Q(status="paid") | Q(paid_at__isnull=False), name="subscription_charge_paid_has_time"),
        ]

    @property
    def amount_display(self) -> str:
        return format_money(self.amount_minor, self.currency)


class CreditBalance(models.Model):
    """The consultations a subscription grants for one period and how many are used. Taken with
    a conditional update inside the booking's transaction; the check constraint is the last
    word that ``used`` never exceeds ``granted`` (unlimited: ``granted`` empty)."""

    subscription = models.ForeignKey(Subscription, on_delete=models.CASCADE, related_name="credit_balances")
    period_start = models.DateTimeField()
    period_end = models.DateTimeField()
    granted = models.PositiveSmallIntegerField(null=True, blank=True)
    used = models.PositiveSmallIntegerField(default=0)

    class Meta:
        ordering = ["-period_start"]
        constraints = [
            models.UniqueConstraint(fields=["subscription", "period_start"], name="credit_balance_one_per_period"),
            models.CheckConstraint(condition=Q(granted__isnull=True) | Q(used__lte=F("granted")), name="credit_balance_never_negative"),
        ]

    @property
    def remaining(self) -> int | None:
        return None if self.granted is None else self.granted - self.used


class CreditUse(models.Model):
    """One appointment covered by a plan. Returned (once) when the booking is cancelled with a
    full refund, lapses or is cancelled by the doctor."""

    balance = models.ForeignKey(CreditBalance, on_delete=models.PROTECT, related_name="uses")
    appointment = models.OneToOneField(Appointment, on_delete=models.CASCADE, related_name="credit_use")
    used_at = models.DateTimeField()
    returned_at = models.DateTimeField(null=True, blank=True)
