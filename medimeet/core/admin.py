from django.contrib import admin

from .models import AuditEvent


class ReadOnlyAdmin(admin.ModelAdmin):
    """Nothing added, changed or deleted through the admin (actions may still call services)."""

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
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


def action_reason_page(model_admin, request, queryset, form, *, title: str, lines: list[str]):
    """The page of an admin action that needs a reason (templates/admin/action_reason.html): what
    it applies to, the form, and a button that posts the action back with ``apply``."""
    from django.shortcuts import render

    context = {**model_admin.admin_site.each_context(request), "title": title, "form": form, "queryset": queryset, "lines": lines, "action": request.POST.get("action"), "opts": model_admin.model._meta}
    return render(request, "admin/action_reason.html", context)
