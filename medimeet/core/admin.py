from collections.abc import Callable

from django.contrib import admin, messages
from django.db.models import Count

from .errors import ApplicationError
from .models import Announcement, AuditEvent, FailedTask, Notification
from .notifications.announcements import announcement_save


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
    it applies to, the form, and a button that posts the action back with ``apply``."""
    from django.shortcuts import render

    context = {**model_admin.admin_site.each_context(request), "title": title, "form": form, "queryset": queryset, "lines": lines, "action": request.POST.get("action"), "opts": model_admin.model._meta}
    return render(request, "admin/action_reason.html", context)


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
