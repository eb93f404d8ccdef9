"""Staff see the shape of records (who, when, what kind) but never clinical content: no payloads,
titles, file contents or extracted text here. Emergency accesses wait for review; erasure
requests wait for a decision."""

from django import forms
from django.contrib import admin
from django.utils.translation import gettext_lazy as _

from medimeet.core.admin import ReadOnlyAdmin, action_with_reason

from . import services
from .models import AccessGrant, Document, EmergencyAccess, ErasureRequest, RecordEntry


class NoteForm(forms.Form):
    note = forms.CharField(label=_("Note"), widget=forms.Textarea(attrs={"rows": 3}), max_length=500)


class ReviewedFilter(admin.SimpleListFilter):
    title = _("review")
    parameter_name = "review"

    def lookups(self, request, model_admin):
        return [("flagged", _("Waiting for review")), ("reviewed", _("Reviewed"))]

    def queryset(self, request, queryset):
        if self.value() == "flagged":
            return queryset.filter(reviewed_at__isnull=True)
        if self.value() == "reviewed":
            return queryset.filter(reviewed_at__isnull=False)
        return queryset


@admin.register(EmergencyAccess)
class EmergencyAccessAdmin(ReadOnlyAdmin):
    list_display = ("started_at", "doctor", "patient", "expires_at", "flagged", "reviewed_by")
    list_filter = (ReviewedFilter,)
    fields = ("doctor", "patient", "reason", "started_at", "expires_at", "reviewed_at", "reviewed_by", "review_note")
    readonly_fields = fields
    list_select_related = ("doctor", "patient", "reviewed_by")
    actions = ["mark_reviewed"]

    @admin.display(boolean=True, description=_("Flagged for review"))
    def flagged(self, obj):
        return obj.reviewed_at is None

    @admin.action(description=_("Mark selected emergency accesses as reviewed (asks for a note)"))
    def mark_reviewed(self, request, queryset):
        return action_with_reason(
            self, request, queryset, NoteForm(request.POST if "apply" in request.POST else None),
            title=_("Review emergency accesses"),
            lines=lambda: [f"{a.started_at:%Y-%m-%d %H:%M} — {a.doctor} → {a.patient} — {a.reason}" for a in queryset.select_related("doctor", "patient")],
            apply=lambda access, data: services.emergency_access_review(access=access, by=request.user, note=data["note"]),
            label=str,
            done="reviewed",
        )  # fmt: skip


@admin.register(ErasureRequest)
class ErasureRequestAdmin(ReadOnlyAdmin):
    list_display = ("created_at", "patient", "status", "decided_by", "decided_at")
    list_filter = ("status",)
    fields = ("patient", "reason", "created_at", "status", "decided_by", "decided_at", "decision_note")
    readonly_fields = fields
    list_select_related = ("patient", "decided_by")
    actions = ["approve", "reject"]

    def _decide(self, request, queryset, approve: bool):
        return action_with_reason(
            self, request, queryset.select_related("patient"), NoteForm(request.POST if "apply" in request.POST else None),
            title=_("Approve erasure requests") if approve else _("Reject erasure requests"),
            lines=lambda: [f"{e.created_at:%Y-%m-%d} — {e.patient} — {e.get_status_display()}" for e in queryset.select_related("patient")],
            apply=lambda erasure, data: services.erasure_request_decide(erasure=erasure, by=request.user, approve=approve, note=data["note"]),
            label=str,
            done="approved" if approve else "rejected",
        )  # fmt: skip

    @admin.action(description=_("Approve selected erasure requests (record removed, kept for the retention period)"))
    def approve(self, request, queryset):
        return self._decide(request, queryset, True)

    @admin.action(description=_("Reject selected erasure requests"))
    def reject(self, request, queryset):
        return self._decide(request, queryset, False)


@admin.register(AccessGrant)
class AccessGrantAdmin(ReadOnlyAdmin):
    list_display = ("created_at", "patient", "doctor", "whole_record", "categories", "expires_at", "revoked_at")
    fields = ("patient", "doctor", "whole_record", "categories", "created_at", "expires_at", "revoked_at")
    readonly_fields = fields
    list_select_related = ("patient", "doctor")


@admin.register(RecordEntry)
class RecordEntryAdmin(ReadOnlyAdmin):
    """Metadata only: the payloads (clinical content) are not shown to staff."""

    list_display = ("public_id", "patient", "category", "version_count", "created_at", "deleted_at")
    list_filter = ("category",)
    fields = ("public_id", "patient", "category", "created_by", "created_at", "version_count", "deleted_at", "deleted_by", "deletion_reason", "retain_until")
    readonly_fields = fields
    list_select_related = ("patient",)


@admin.register(Document)
class DocumentAdmin(ReadOnlyAdmin):
    """Metadata only: no title, file or extracted text."""

    list_display = ("public_id", "patient", "kind", "size", "ocr_status", "created_at", "deleted_at")
    list_filter = ("kind", "ocr_status")
    fields = ("public_id", "patient", "uploaded_by", "kind", "size", "key_id", "ocr_status", "created_at", "deleted_at", "deletion_reason", "retain_until")
    readonly_fields = fields
    list_select_related = ("patient",)
