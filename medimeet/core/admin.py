from collections.abc import Callable

from django.contrib import admin, messages
from django.contrib.auth import get_permission_codename
from django.db.models import Count

from .audit import audit_record
from .errors import ApplicationError
from .models import Announcement, AnnouncementDismissal, AuditEvent, FailedTask, Notification, NotificationPreference
from .notifications.announcements import announcement_save
from .roles import can_see_clinical_content


def has_model_permission(request, opts, action: str) -> bool:
    """The model permission itself, for read-only admins whose has_*_permission say no to the
    form but whose actions (through services) need the same right."""
    return request.user.has_perm(f"{opts.app_label}.{get_permission_codename(action, opts)}")


class ClinicalContentMixin:
    """For admins and inlines that carry clinical content in ``clinical_fields``: those fields
    (and columns) exist only for staff who can see clinical content (``roles``); everyone else
    sees the shape — who, when, what kind. A ModelAdmin's change page that shows them is audited."""

    clinical_fields: tuple[str, ...] = ()

    def _without_clinical(self, request, names):
        if can_see_clinical_content(request.user):
            return names
        return type(names)(name for name in names if name not in self.clinical_fields)

    def get_fields(self, request, obj=None):
        return self._without_clinical(request, super().get_fields(request, obj))

    def get_readonly_fields(self, request, obj=None):
        return self._without_clinical(request, super().get_readonly_fields(request, obj))

    def get_list_display(self, request):
        return self._without_clinical(request, super().get_list_display(request))

    def clinical_subject(self, obj):
        """The patient the content is about (for the audit entry)."""
        return getattr(obj, "patient", None)

    def change_view(self, request, object_id, form_url="", extra_context=None):
        response = super().change_view(request, object_id, form_url, extra_context)
        original = getattr(response, "context_data", {}).get("original") if response.status_code == 200 else None
        if original is not None and can_see_clinical_content(request.user):
            audit_record(
                action="admin.clinical_content_viewed", actor=request.user, target=original, subject_user=self.clinical_subject(original), request=request
            )
        return response


class ClinicalOnlyMixin(ClinicalContentMixin):
    """Models that are nothing but clinical content (chat, notes, record versions): not even
    listed for staff who cannot see clinical content."""

    def has_view_permission(self, request, obj=None):
        return can_see_clinical_content(request.user) and super().has_view_permission(request, obj)

    def has_module_permission(self, request):
        return can_see_clinical_content(request.user) and super().has_module_permission(request)


class ReadOnlyAdmin(admin.ModelAdmin):
    """Nothing added, changed or deleted through the admin (actions may still call services)."""

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


class ReadOnlyInline(admin.TabularInline):
    """Rows shown beside their parent (the evidence of what happened) that nobody edits there."""

    extra = 0
    can_delete = False

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False


@admin.register(AuditEvent)
class AuditEventAdmin(ReadOnlyAdmin):
    """Read-only: audit entries cannot be added, edited or deleted through the admin."""

    list_display = ("created_at", "action", "actor", "actor_role", "target_type", "target_id", "ip_address")
    list_filter = ("action", "actor_role", "target_type")
    search_fields = ("action", "target_id", "actor__email", "request_id")
    date_hierarchy = "created_at"
    list_select_related = ("actor",)

    def get_readonly_fields(self, request, obj=None):
        return [field.name for field in self.model._meta.fields]


@admin.register(FailedTask)
class FailedTaskAdmin(ReadOnlyAdmin):
    """Celery tasks that failed for good (counted on the dashboard): name, id, exception type."""

    list_display = ("failed_at", "task_name", "exception_type", "task_id")
    list_filter = ("task_name", "exception_type")
    search_fields = ("task_name", "task_id")
    date_hierarchy = "failed_at"

    def has_delete_permission(self, request, obj=None):
        return request.user.is_superuser  # clearing old failures once they are understood

    def get_readonly_fields(self, request, obj=None):
        return [field.name for field in self.model._meta.fields]


def action_reason_page(model_admin, request, queryset, form, *, title: str, lines: list[str]):
    """The page of an admin action that needs a reason (templates/admin/action_reason.html): what
    it applies to, the form, and a button that posts the action back with ``apply``. A
    TemplateResponse, like Django's delete confirmation: the audit (``admin_site``) records
    the action when it is applied, not when it asks."""
    from django.template.response import TemplateResponse

    context = {**model_admin.admin_site.each_context(request), "title": title, "form": form, "queryset": queryset, "lines": lines, "action": request.POST.get("action"), "opts": model_admin.model._meta}
    return TemplateResponse(request, "admin/action_reason.html", context)


def action_with_reason(model_admin, request, queryset, form, *, title: str, lines: Callable[[], list[str]], apply: Callable, label: Callable, done: str):
    """An admin action that needs a reason: the page asking for it while ``form`` is unbound or
    invalid, then ``apply(obj, cleaned_data)`` (a service call) on each selected object, each
    outcome reported — "<label>: <done>." or the service's refusal."""
    if not form.is_valid():
        return action_reason_page(model_admin, request, queryset, form, title=title, lines=lines())
    for obj in queryset:
        try:
            apply(obj, form.cleaned_data)
            model_admin.message_user(request, f"{label(obj)}: {done}.", messages.SUCCESS)
        except ApplicationError as exc:
            model_admin.message_user(request, f"{label(obj)}: {exc.message}", messages.ERROR)
    return None


@admin.register(Notification)
class NotificationAdmin(admin.ModelAdmin):
    """The delivery log: every message, its status and attempts. Staff can resend; nothing
    else is editable (the log is evidence of what we told people)."""

    list_display = ("created_at", "event", "channel", "user", "language", "status", "attempts", "sent_at")
    list_filter = ("status", "channel", "event", "language", ("created_at", admin.DateFieldListFilter))
    search_fields = ("user__email", "public_id", "provider_message_id", "subject")
    date_hierarchy = "created_at"
    list_select_related = ("user",)
    actions = ["resend"]
    readonly_fields = ("message_preview",)
    exclude = ("text_body", "html_body", "attachments")

    def get_readonly_fields(self, request, obj=None):
        return [field.name for field in self.model._meta.fields if field.name not in self.exclude] + ["message_preview"]

    def has_add_permission(self, request):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    @admin.display(description="Text part")
    def message_preview(self, obj: Notification):
        from django.utils.html import format_html

        return format_html('<pre style="white-space:pre-wrap;max-width:60rem">{}</pre>', obj.text_body)

    @admin.action(description="Resend the selected messages", permissions=["change"])
    def resend(self, request, queryset):
        from .notifications.services import notification_resend

        for notification in queryset:
            notification_resend(notification=notification, by=request.user, request=request)
        self.message_user(request, f"{queryset.count()} message(s) queued again.")


@admin.register(Announcement)
class AnnouncementAdmin(admin.ModelAdmin):
    """Staff compose system announcements here; saving one with "send email" emails everyone it is
    for, once (notifications/announcements.py)."""

    list_display = ("title", "kind", "audience", "starts_at", "ends_at", "send_email", "emailed_at", "dismissed")
    list_filter = ("kind", "audience", "send_email")
    search_fields = ("title", "body")
    date_hierarchy = "starts_at"
    autocomplete_fields = ("user",)
    readonly_fields = ("emailed_at", "created_by", "created_at")
    fieldsets = (
        (None, {"fields": ("kind", "title", "body")}),
        ("Who and when", {"fields": ("audience", "user", "starts_at", "ends_at", "send_email")}),
        ("Record", {"fields": ("emailed_at", "created_by", "created_at")}),
    )

    def get_queryset(self, request):
        return super().get_queryset(request).annotate(dismissal_count=Count("dismissals"))

    @admin.display(description="Dismissed by", ordering="dismissal_count")
    def dismissed(self, obj):
        return obj.dismissal_count

    def save_model(self, request, obj, form, change):
        announcement_save(announcement=obj, by=request.user, request=request)


@admin.register(AnnouncementDismissal)
class AnnouncementDismissalAdmin(ReadOnlyAdmin):
    """Who closed which banner (not an inline: an announcement for everyone has one row a person)."""

    list_display = ("dismissed_at", "announcement", "user")
    list_filter = ("announcement",)
    search_fields = ("user__email",)
    date_hierarchy = "dismissed_at"
    list_select_related = ("announcement", "user")
    fields = list_display
    readonly_fields = list_display


class NotificationPreferenceInline(admin.StackedInline):
    """Shown on the user's page; people change their own preferences (the number stays private)."""

    model = NotificationPreference
    can_delete = False
    fields = ("channels", "reminder_offsets", "sms_verified_at", "updated_at")
    readonly_fields = fields

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False
