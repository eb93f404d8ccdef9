"""Back office for money: payments (with a finance report and CSV export), the refund approval
queue, webhook events as received, invoices, saved cards and doctors' payout accounts.

Money rows are never edited by hand: every field is read-only, and refunds move only through
the approve/reject actions (which call the same services as the API, audited)."""

from __future__ import annotations

from datetime import timedelta

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.db.models import Count, Q
from django.shortcuts import render
from django.urls import path, reverse
from django.utils import timezone
from django.utils.html import format_html
from django.utils.translation import gettext_lazy as _

from doctors.models import DoctorProfile, format_money
from medimeet.core.admin import ReadOnlyAdmin, ReadOnlyInline, action_reason_page, action_with_reason, has_model_permission
from medimeet.core.errors import ApplicationError

from . import selectors, services
from .api import report_csv
from .models import (
    CreditBalance,
    CreditUse,
    GatewayCustomer,
    Invoice,
    InvoiceCounter,
    Payment,
    PayoutAccount,
    Plan,
    Refund,
    SandboxTransaction,
    SavedCard,
    Subscription,
    SubscriptionCharge,
    SubscriptionEvent,
    WebhookEvent,
)


class RefundInline(admin.TabularInline):
    model = Refund
    extra = 0
    fields = ("amount_minor", "status", "source", "reason", "requested_by", "decided_by", "processed_at")
    readonly_fields = fields
    can_delete = False

    def has_add_permission(self, request, obj=None):
        return False


class DecisionForm(forms.Form):
    note = forms.CharField(label=_("Reason"), widget=forms.Textarea(attrs={"rows": 3}), max_length=500)


class ReportForm(forms.Form):
    start_date = forms.DateField(widget=forms.DateInput(attrs={"type": "date"}))
    end_date = forms.DateField(widget=forms.DateInput(attrs={"type": "date"}))
    group_by = forms.ChoiceField(choices=[(g, g.title()) for g in selectors.GROUPS])


class ApprovesRefunds:
    """Refund decisions (and flagged payments, which end in one) need ``payments.approve_refund``."""

    def has_approve_refund_permission(self, request):
        return request.user.has_perm("payments.approve_refund")


@admin.register(Payment)
class PaymentAdmin(ApprovesRefunds, ReadOnlyAdmin):
    list_display = ("created_at", "patient", "doctor", "amount", "gateway", "status", "refunded", "invoice_number")
    list_filter = ("status", "gateway", "currency", ("paid_at", admin.DateFieldListFilter))
    search_fields = ("public_id", "gateway_reference", "gateway_payment_id", "patient__email", "doctor__slug", "invoice__number")
    date_hierarchy = "created_at"
    list_select_related = ("patient", "doctor__user", "invoice")
    inlines = [RefundInline]
    actions = ["accept_flagged", "refund_flagged"]
    readonly_fields = [f.name for f in Payment._meta.fields if f.name != "client_secret"]
    exclude = ("client_secret",)

    @admin.display(description=_("Amount"), ordering="amount_minor")
    def amount(self, obj):
        return obj.amount_display

    @admin.display(description=_("Refunded"))
    def refunded(self, obj):
        return format_money(obj.amount_refunded_minor, obj.currency) if obj.amount_refunded_minor else "—"

    @admin.display(description=_("Receipt"))
    def invoice_number(self, obj):
        invoice = getattr(obj, "invoice", None)
        return format_html('<a href="{}">{}</a>', reverse("payments:receipt", args=[obj.public_id]), invoice.number) if invoice else "—"

    def _resolve_flagged(self, request, queryset, accept: bool):
        return action_with_reason(
            self, request, queryset, DecisionForm(request.POST if "apply" in request.POST else None),
            title=_("Accept flagged payments") if accept else _("Refund flagged payments"),
            lines=lambda: [f"{p.amount_display} — {p.patient.email} — {p.flag_reason or p.get_status_display()}" for p in queryset.select_related("patient")],
            apply=lambda payment, data: services.payment_flag_resolve(payment=payment, by=request.user, accept=accept, note=data["note"], request=request),
            label=lambda payment: payment.amount_display,
            done="accepted" if accept else "refund started",
        )  # fmt: skip

    @admin.action(description=_("Accept selected flagged payments (confirms the bookings)"), permissions=["approve_refund"])
    def accept_flagged(self, request, queryset):
        return self._resolve_flagged(request, queryset, True)

    @admin.action(description=_("Refund selected flagged payments"), permissions=["approve_refund"])
    def refund_flagged(self, request, queryset):
        return self._resolve_flagged(request, queryset, False)

    def get_urls(self):
        return [path("report/", self.admin_site.admin_view(self.report_view), name="payments_payment_report"), *super().get_urls()]

    def report_view(self, request):
        """Revenue by period, doctor, gateway or currency, with refunds and the platform fee."""
        if not self.has_view_permission(request):
            raise PermissionDenied
        today = timezone.now().date()
        form = ReportForm(request.GET or {"start_date": today - timedelta(days=30), "end_date": today, "group_by": "day"})
        rows = []
        if form.is_valid():
            data = form.cleaned_data
            start, end = selectors.utc_days(data["start_date"], data["end_date"])
            rows = selectors.finance_report(start=start, end=end, group_by=data["group_by"])
            if request.GET.get("export") == "csv":
                return report_csv(rows, filename=f"finance-{data['start_date']}-{data['end_date']}")
            selectors.with_display(rows)
        context = {**self.admin_site.each_context(request), "title": _("Finance report"), "form": form, "rows": rows, "opts": self.model._meta}
        return render(request, "admin/payments/report.html", context)


@admin.register(Refund)
class RefundAdmin(ApprovesRefunds, ReadOnlyAdmin):
    list_display = ("created_at", "payment", "amount", "status", "source", "requested_by", "decided_by")
    list_filter = ("status", "source", "payment__gateway")
    search_fields = ("public_id", "gateway_reference", "payment__public_id", "payment__patient__email")
    date_hierarchy = "created_at"
    list_select_related = ("payment", "requested_by", "decided_by")
    readonly_fields = [f.name for f in Refund._meta.fields]
    actions = ["approve", "reject"]

    @admin.display(description=_("Amount"), ordering="amount_minor")
    def amount(self, obj):
        return obj.amount_display

    def _decide(self, request, queryset, approve: bool, note: str = ""):
        for refund in queryset:
            try:
                services.refund_decide(refund=refund, by=request.user, approve=approve, note=note, request=request)
                self.message_user(request, f"Refund {refund.amount_display} {'approved' if approve else 'rejected'}.", messages.SUCCESS)
            except ApplicationError as exc:
                self.message_user(request, f"Refund {refund.amount_display}: {exc.message}", messages.ERROR)

    @admin.action(description=_("Approve selected refunds"), permissions=["approve_refund"])
    def approve(self, request, queryset):
        self._decide(request, queryset, True)

    @admin.action(description=_("Reject selected refunds (asks for a reason)"), permissions=["approve_refund"])
    def reject(self, request, queryset):
        form = DecisionForm(request.POST if "apply" in request.POST else None)
        if form.is_valid():
            self._decide(request, queryset, False, form.cleaned_data["note"])
            return None
        lines = [f"{r.amount_display} — {r.payment.patient.email} — {r.reason}" for r in queryset.select_related("payment__patient")]
        return action_reason_page(self, request, queryset, form, title=_("Reject refunds"), lines=lines)


@admin.register(WebhookEvent)
class WebhookEventAdmin(ReadOnlyAdmin):
    list_display = ("received_at", "gateway", "event_type", "event_id", "status", "attempts", "processed_at")
    list_filter = ("gateway", "status", "event_type")
    search_fields = ("event_id", "object_reference")
    date_hierarchy = "received_at"
    readonly_fields = [f.name for f in WebhookEvent._meta.fields]
    actions = ["retry"]

    def has_retry_permission(self, request):
        return has_model_permission(request, self.model._meta, "change")

    @admin.action(description=_("Process selected events again (failed or deferred)"), permissions=["retry"])
    def retry(self, request, queryset):
        for event in queryset.filter(status__in=[WebhookEvent.Status.FAILED, WebhookEvent.Status.DEFERRED]):
            services.webhook_event_retry(event=event)
        self.message_user(request, _("Queued for processing."), messages.SUCCESS)


@admin.register(Invoice)
class InvoiceAdmin(ReadOnlyAdmin):
    list_display = ("number", "issued_at", "buyer_name", "total", "tax_name", "verification_code")
    list_filter = ("currency", "tax_name", "year")
    search_fields = ("number", "verification_code", "payment__public_id")
    date_hierarchy = "issued_at"
    readonly_fields = [f.name for f in Invoice._meta.fields]

    @admin.display(description=_("Total"), ordering="total_minor")
    def total(self, obj):
        return format_money(obj.total_minor, obj.currency)


@admin.register(SavedCard)
class SavedCardAdmin(ReadOnlyAdmin):
    list_display = ("user", "gateway", "brand", "last4", "exp_month", "exp_year", "created_at")
    list_filter = ("gateway", "brand")
    date_hierarchy = "created_at"
    search_fields = ("user__email",)
    readonly_fields = ("user", "gateway", "brand", "last4", "exp_month", "exp_year", "created_at")
    exclude = ("token", "fingerprint")


@admin.register(PayoutAccount)
class PayoutAccountAdmin(admin.ModelAdmin):
    list_display = ("doctor", "gateway", "account_id")
    list_filter = ("gateway",)
    search_fields = ("doctor__slug", "account_id")


@admin.register(GatewayCustomer)
class GatewayCustomerAdmin(ReadOnlyAdmin):
    list_display = ("user", "gateway", "customer_id")
    list_filter = ("gateway",)
    search_fields = ("user__email", "customer_id")


@admin.register(SandboxTransaction)
class SandboxTransactionAdmin(ReadOnlyAdmin):
    list_display = ("reference", "created_at", "amount_minor", "currency", "status", "amount_refunded_minor")
    list_filter = ("status",)
    search_fields = ("reference",)


@admin.register(InvoiceCounter)
class InvoiceCounterAdmin(ReadOnlyAdmin):
    """The last invoice number issued each year (numbers are gapless, taken under a row lock)."""

    list_display = ("year", "last_number")


# --- Care plans ----------------------------------------------------------------------------------


@admin.register(Plan)
class PlanAdmin(admin.ModelAdmin):
    """Finance defines plans; a plan with subscribers is archived (untick "offered"), never deleted."""

    list_display = ("name", "price", "period", "credits_per_period", "specialization", "doctor", "is_active", "subscribers")
    list_filter = ("is_active", "period", "currency")
    search_fields = ("name",)
    autocomplete_fields = ("doctor",)
    list_select_related = ("specialization", "doctor__user")
    fields = (
        "name", "description", ("price_minor", "currency"), "period", "credits_per_period", "specialization", "doctor",
        "rollover", "is_active", "sort_order", "stripe_price_id", "razorpay_plan_id",
    )  # fmt: skip

    def has_delete_permission(self, request, obj=None):
        return False

    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        # Plain choices (finance has no access to the doctors' admin, so no autocomplete there).
        if db_field.name == "doctor":
            kwargs["queryset"] = DoctorProfile.objects.listed().select_related("user").order_by("user__last_name")
        return super().formfield_for_foreignkey(db_field, request, **kwargs)

    def get_queryset(self, request):
        return super().get_queryset(request).annotate(live_count=Count("subscriptions", filter=Q(subscriptions__status__in=Subscription.LIVE_STATUSES)))

    @admin.display(description=_("Price"))
    def price(self, obj):
        return obj.price_display

    @admin.display(description=_("Subscribers"), ordering="live_count")
    def subscribers(self, obj):
        return obj.live_count


class SubscriptionChargeInline(ReadOnlyInline):
    model = SubscriptionCharge
    fields = ("created_at", "kind", "amount_minor", "currency", "status", "period_start", "period_end", "attempts", "gateway_reference", "failure_message", "paid_at")
    readonly_fields = fields


class CreditBalanceInline(ReadOnlyInline):
    model = CreditBalance
    fields = ("period_start", "period_end", "granted", "used")
    readonly_fields = fields


class SubscriptionEventInline(ReadOnlyInline):
    model = SubscriptionEvent
    fields = ("at", "from_status", "to_status", "note")
    readonly_fields = fields


@admin.register(Subscription)
class SubscriptionAdmin(ReadOnlyAdmin):
    list_display = ("created_at", "patient", "plan", "status", "gateway", "current_period_end", "cancel_at_period_end")
    list_filter = ("status", "gateway", "plan")
    search_fields = ("public_id", "gateway_reference", "patient__email")
    list_select_related = ("patient", "plan")
    readonly_fields = [f.name for f in Subscription._meta.fields]
    inlines = [CreditBalanceInline, SubscriptionChargeInline, SubscriptionEventInline]

    def get_urls(self):
        return [path("report/", self.admin_site.admin_view(self.report_view), name="payments_subscription_report"), *super().get_urls()]

    def report_view(self, request):
        """Subscriptions by plan and monthly recurring revenue per currency."""
        if not self.has_view_permission(request):
            raise PermissionDenied
        rows = selectors.subscriptions_report()
        totals = [{"currency": currency, "mrr": format_money(amount, currency)} for currency, amount in selectors.mrr_by_currency(rows).items()]
        for row in rows:
            row["mrr"] = format_money(row["mrr_minor"], row["currency"])
        context = {**self.admin_site.each_context(request), "title": _("Care plans: subscriptions and monthly recurring revenue"), "rows": rows, "totals": totals, "opts": self.model._meta}
        return render(request, "admin/payments/subscription_report.html", context)


@admin.register(CreditUse)
class CreditUseAdmin(ReadOnlyAdmin):
    """Which booking used which period's consultation, and whether it came back."""

    list_display = ("used_at", "appointment", "balance", "returned_at")
    list_select_related = ("appointment", "balance")
    readonly_fields = [f.name for f in CreditUse._meta.fields]
