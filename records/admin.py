"""Staff see the shape of records (who, when, what kind) but never clinical content: no payloads,
titles, file contents or extracted text here. Emergency accesses wait for review; erasure
requests wait for a decision."""

from django import forms
from django.contrib import admin
from django.utils.translation import gettext_lazy as _

from medimeet.core.admin import ClinicalContentMixin, ClinicalOnlyMixin, ReadOnlyAdmin, ReadOnlyInline, action_with_reason

from . import services
from .models import AccessGrant, Document, EmergencyAccess, ErasureRequest, Prescription, RecordEntry, RecordEntryVersion


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
    search_fields = ("doctor__email", "patient__email")
    date_hierarchy = "started_at"
    fields = ("doctor", "patient", "reason", "started_at", "expires_at", "reviewed_at", "reviewed_by", "review_note")
    readonly_fields = fields
    list_select_related = ("doctor", "patient", "reviewed_by")
    actions = ["mark_reviewed"]

    def has_review_permission(self, request):
        return request.user.has_perm("records.review_emergency_access")

    @admin.display(boolean=True, description=_("Flagged for review"))
    def flagged(self, obj):
        return obj.reviewed_at is None

    @admin.action(description=_("Mark selected emergency accesses as reviewed (asks for a note)"), permissions=["review"])
    def mark_reviewed(self, request, queryset):
        return action_with_reason(
            self, request, queryset, NoteForm(request.POST if "apply" in request.POST else None),
            title=_("Review emergency accesses"),
            lines=lambda: [f"{a.started_at:%Y-%m-%d %H:%M} — {a.doctor} → {a.patient} — {a.reason}" for a in queryset.select_related("doctor", "patient")],
            apply=lambda access, data: services.emergency_access_review(access=access, by=request.user, note=data["note"], request=request),
            label=str,
            done="reviewed",
        )  # fmt: skip


@admin.register(ErasureRequest)
class ErasureRequestAdmin(ReadOnlyAdmin):
    list_display = ("created_at", "patient", "status", "decided_by", "decided_at")
    list_filter = ("status",)
    search_fields = ("patient__email",)
    date_hierarchy = "created_at"
    fields = ("patient", "reason", "created_at", "status", "decided_by", "decided_at", "decision_note")
    readonly_fields = fields
    list_select_related = ("patient", "decided_by")
    actions = ["approve", "reject"]

    def has_decide_permission(self, request):
        return request.user.has_perm("records.decide_erasure")

    def _decide(self, request, queryset, approve: bool):
        return action_with_reason(
            self, request, queryset.select_related("patient"), NoteForm(request.POST if "apply" in request.POST else None),
            title=_("Approve erasure requests") if approve else _("Reject erasure requests"),
            lines=lambda: [f"{e.created_at:%Y-%m-%d} — {e.patient} — {e.get_status_display()}" for e in queryset.select_related("patient")],
            apply=lambda erasure, data: services.erasure_request_decide(erasure=erasure, by=request.user, approve=approve, note=data["note"], request=request),
            label=str,
            done="approved" if approve else "rejected",
        )  # fmt: skip

    @admin.action(description=_("Approve selected erasure requests (record removed, kept for the retention period)"), permissions=["decide"])
    def approve(self, request, queryset):
        return self._decide(request, queryset, True)

    @admin.action(description=_("Reject selected erasure requests"), permissions=["decide"])
    def reject(self, request, queryset):
        return self._decide(request, queryset, False)


@admin.register(AccessGrant)
class AccessGrantAdmin(ReadOnlyAdmin):
    list_display = ("created_at", "patient", "doctor", "whole_record", "categories", "expires_at", "revoked_at")
    list_filter = ("whole_record", ("revoked_at", admin.EmptyFieldListFilter))
    search_fields = ("patient__email", "doctor__email")
    date_hierarchy = "created_at"
    fields = ("patient", "doctor", "whole_record", "categories", "created_at", "expires_at", "revoked_at")
    readonly_fields = fields
    list_select_related = ("patient", "doctor")


class VersionInline(ClinicalOnlyMixin, ReadOnlyInline):
    model = RecordEntryVersion
    fields = readonly_fields = ("number", "change", "author", "author_role", "reason", "created_at", "payload")
    clinical_fields = ("payload",)


@admin.register(RecordEntry)
class RecordEntryAdmin(ClinicalContentMixin, ReadOnlyAdmin):
    """Metadata for staff; the content (payload and its versions) for clinical reviewers only."""

    list_display = ("public_id", "patient", "category", "version_count", "created_at", "deleted_at")
    list_filter = ("category",)
    date_hierarchy = "created_at"
    search_fields = ("public_id", "patient__email")
    fields = (
        "public_id",
        "patient",
        "category",
        "created_by",
        "created_at",
        "version_count",
        "content",
        "deleted_at",
        "deleted_by",
        "deletion_reason",
        "retain_until",
    )
    readonly_fields = fields
    list_select_related = ("patient",)
    inlines = [VersionInline]
    clinical_fields = ("content",)

    @admin.display(description=_("Current content"))
    def content(self, entry: RecordEntry) -> str:
        return entry.current_version.payload if entry.current_version_id else ""


@admin.register(Document)
class DocumentAdmin(ClinicalContentMixin, ReadOnlyAdmin):
    """Metadata for staff; title and extracted text for clinical reviewers only (never the file here)."""

    list_display = ("public_id", "patient", "kind", "size", "ocr_status", "created_at", "deleted_at")
    list_filter = ("kind", "ocr_status")
    date_hierarchy = "created_at"
    search_fields = ("public_id", "patient__email")
    fields = (
        "public_id",
        "patient",
        "uploaded_by",
        "kind",
        "title",
        "size",
        "key_id",
        "ocr_status",
        "text",
        "created_at",
        "deleted_at",
        "deletion_reason",
        "retain_until",
    )
    readonly_fields = fields
    list_select_related = ("patient",)
    clinical_fields = ("title", "text")


@admin.register(Prescription)
class PrescriptionAdmin(ClinicalContentMixin, ReadOnlyAdmin):
    """Issued prescriptions (immutable; superseded, never edited): who, when, status and the
    verification code pharmacists check; medicines and advice for clinical reviewers only."""

    list_display = ("issued_at", "public_id", "doctor", "patient", "status", "verification_code")
    list_filter = ("status",)
    date_hierarchy = "issued_at"
    search_fields = ("public_id", "verification_code", "patient__email")
    fields = readonly_fields = (
        "public_id",
        "appointment",
        "patient",
        "doctor",
        "registration_number",
        "verification_code",
        "status",
        "issued_at",
        "supersedes",
        "content",
    )
    list_select_related = ("patient", "doctor__user")
    clinical_fields = ("content",)
