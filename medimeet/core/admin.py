from django.contrib import admin

from .models import AuditEvent


@admin.register(AuditEvent)
class AuditEventAdmin(admin.ModelAdmin):
    """Read-only: audit entries cannot be added, edited or deleted through the admin."""

    list_display = ("created_at", "action", "actor", "actor_role", "target_type", "target_id", "ip_address")
    list_filter = ("action", "actor_role", "target_type")
    search_fields = ("action", "target_id", "actor__email", "request_id")
    date_hierarchy = "created_at"
    list_select_related = ("actor",)

    def get_readonly_fields(self, request, obj=None):
        return [field.name for field in self.model._meta.fields]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False
