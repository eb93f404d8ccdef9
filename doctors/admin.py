"""Back office for doctors: the verification queue and the specialization taxonomy."""

from django import forms
from django.contrib import admin, messages
from django.urls import reverse
from django.utils.html import format_html
from django.utils.translation import gettext_lazy as _

from medimeet.core.admin import ReadOnlyAdmin, action_reason_page
from medimeet.core.errors import ApplicationError

from . import services
from .models import (
    Certification,
    DoctorDocument,
    DoctorProfile,
    DoctorService,
    Education,
    Language,
    Position,
    SearchTally,
    Specialization,
    VerificationEvent,
)

Status = DoctorProfile.Status


class DocumentInline(admin.TabularInline):
    model = DoctorDocument
    extra = 0
    fields = ("kind", "link", "content_type", "size", "uploaded_at")
    readonly_fields = ("kind", "link", "content_type", "size", "uploaded_at")
    can_delete = False

    @admin.display(description=_("Document"))
    def link(self, obj):
        return format_html('<a href="{}">{}</a>', reverse("doctors:document", args=[obj.pk]), obj.original_name) if obj.file else "—"

    def has_add_permission(self, request, obj=None):
        return False


class EducationInline(admin.TabularInline):
    model = Education
    extra = 0


class CertificationInline(admin.TabularInline):
    model = Certification
    extra = 0


class PositionInline(admin.TabularInline):
    model = Position
    extra = 0


class ServiceInline(admin.TabularInline):
    model = DoctorService
    extra = 0
    fields = ("name", "price_minor", "currency", "duration_minutes", "mode", "is_active")


class VerificationEventInline(admin.TabularInline):
    model = VerificationEvent
    extra = 0
    fields = ("created_at", "from_status", "to_status", "by", "reason")
    readonly_fields = fields
    can_delete = False

    def has_add_permission(self, request, obj=None):
        return False


class ReasonForm(forms.Form):
    reason = forms.CharField(widget=forms.Textarea(attrs={"rows": 4, "cols": 60}), label=_("Reason sent to the doctor(s)"))


@admin.register(DoctorProfile)
class DoctorProfileAdmin(admin.ModelAdmin):
    """The verification queue: filter by status, oldest submissions first, bulk decisions."""

    list_display = ("display_name", "email", "primary_specialization", "verification_status", "licence_country", "licence_number", "licence_expiry", "submitted_at", "listed")
    list_filter = ("verification_status", "licence_country", "primary_specialization", "offers_video", "offers_in_person")
    search_fields = ("user__email", "user__first_name", "user__last_name", "licence_number", "slug")
    date_hierarchy = "submitted_at"
    ordering = ("submitted_at",)
    list_select_related = ("user", "primary_specialization")
    autocomplete_fields = ("primary_specialization", "secondary_specializations")
    filter_horizontal = ("languages",)
    readonly_fields = ("user", "public_id", "verification_status", "status_reason", "status_changed_at", "submitted_at", "licence_expired_flagged_at", "min_fee_minor", "fee_currency", "rating_average", "rating_count", "created_at", "updated_at")
    fieldsets = (
        (None, {"fields": ("user", "public_id", "slug", "title")}),
        (_("Verification"), {"fields": ("verification_status", "status_reason", "status_changed_at", "submitted_at", "licence_number", "licence_authority", "licence_country", "licence_expiry", "licence_expired_flagged_at")}),
        (_("Profile"), {"fields": ("bio", "years_experience", "special_skills", "primary_specialization", "secondary_specializations", "languages")}),
        (_("Practice"), {"fields": ("clinic_name", "clinic_address", "city", "country", "offers_video", "offers_in_person")}),
        (_("Derived"), {"fields": ("min_fee_minor", "fee_currency", "rating_average", "rating_count", "created_at", "updated_at")}),
    )
    inlines = [DocumentInline, VerificationEventInline, EducationInline, CertificationInline, PositionInline, ServiceInline]
    actions = ["start_review", "approve", "reject", "request_changes"]

    @admin.display(description=_("Email"), ordering="user__email")
    def email(self, obj):
        return obj.user.email

    @admin.display(description=_("Listed"), boolean=True)
    def listed(self, obj):
        return obj.is_listed

    def save_model(self, request, obj, form, change):
        super().save_model(request, obj, form, change)
        services.doctor_search_refresh(doctor=obj)

    def _transition(self, request, queryset, to_status, reason=""):
        done, failed = 0, []
        for doctor in queryset.select_related("user"):
            try:
                services.doctor_transition(doctor=doctor, to_status=to_status, by=request.user, reason=reason, request=request)
                done += 1
            except ApplicationError as exc:
                details = "; ".join(m for ms in exc.fields.values() for m in ms) if exc.fields else exc.message
                failed.append(f"{doctor.display_name}: {details}")
        if done:
            self.message_user(request, _("%(count)d application(s) now %(status)s.") % {"count": done, "status": Status(to_status).label.lower()}, messages.SUCCESS)
        for failure in failed:
            self.message_user(request, failure, messages.ERROR)

    def _with_reason(self, request, queryset, to_status, title):
        if "apply" in request.POST:
            form = ReasonForm(request.POST)
            if form.is_valid():
                self._transition(request, queryset, to_status, form.cleaned_data["reason"])
                return None
        else:
            form = ReasonForm()
        lines = [f"{doctor.display_name} — {doctor.user.email}" for doctor in queryset.select_related("user")]
        return action_reason_page(self, request, queryset, form, title=title, lines=lines)

    @admin.action(description=_("Start review of selected applications"), permissions=["change"])
    def start_review(self, request, queryset):
        self._transition(request, queryset, Status.UNDER_REVIEW)

    @admin.action(description=_("Approve selected applications"), permissions=["change"])
    def approve(self, request, queryset):
        self._transition(request, queryset, Status.APPROVED)

    @admin.action(description=_("Reject selected applications (asks for a reason)"), permissions=["change"])
    def reject(self, request, queryset):
        return self._with_reason(request, queryset, Status.REJECTED, _("Reject applications"))

    @admin.action(description=_("Request changes on selected applications (asks for a reason)"), permissions=["change"])
    def request_changes(self, request, queryset):
        return self._with_reason(request, queryset, Status.CHANGES_REQUESTED, _("Request changes"))


@admin.register(Specialization)
class SpecializationAdmin(admin.ModelAdmin):
    """The taxonomy editor: indentation shows the tree; moving a node moves its subtree."""

    list_display = ("indented_name", "slug", "parent", "required_qualifications")
    search_fields = ("name", "slug")
    prepopulated_fields = {"slug": ("name",)}
    autocomplete_fields = ("parent",)
    ordering = ("path",)

    @admin.display(description=_("Name"), ordering="path")
    def indented_name(self, obj):
        return format_html('<span style="padding-left:{}em">{}</span>', obj.depth * 1.5, obj.name)


@admin.register(Language)
class LanguageAdmin(admin.ModelAdmin):
    list_display = ("code", "name")
    search_fields = ("code", "name")


@admin.register(DoctorService)
class DoctorServiceAdmin(admin.ModelAdmin):
    list_display = ("name", "doctor", "price_display", "duration_minutes", "mode", "is_active")
    list_filter = ("mode", "currency", "is_active")
    search_fields = ("name", "doctor__user__email", "doctor__user__last_name")
    list_select_related = ("doctor__user",)
    raw_id_fields = ("doctor",)


@admin.register(SearchTally)
class SearchTallyAdmin(ReadOnlyAdmin):
    """Doctor searches per quarter hour (UTC): the denominator of the dashboard's conversion."""

    list_display = ("bucket", "count")
    date_hierarchy = "bucket"
