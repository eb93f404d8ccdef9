from django.contrib import admin, messages
from django.contrib.auth.admin import UserAdmin as DjangoUserAdmin
from django.utils.translation import gettext_lazy as _

from medimeet.core.admin import NotificationPreferenceInline

from . import services
from .models import ApiSession, PatientProfile, User


class PatientProfileInline(admin.StackedInline):
    model = PatientProfile
    can_delete = False
    # Clinical content is not shown in the back office; Step 9 gives clinical roles their own view.
    fields = ("updated_at",)
    readonly_fields = ("updated_at",)


class ApiSessionInline(admin.TabularInline):
    model = ApiSession
    extra = 0
    can_delete = False
    fields = ("device_name", "ip_address", "created_at", "last_used_at", "expires_at", "revoked_at", "revoked_reason")
    readonly_fields = fields

    def has_add_permission(self, request, obj=None):
        return False


@admin.register(User)
class UserAdmin(DjangoUserAdmin):
    ordering = ("-date_joined",)
    list_display = ("email", "first_name", "last_name", "role", "status", "is_staff", "date_joined", "last_login")
    list_filter = ("role", "status", "is_staff", "is_superuser", "is_active")
    search_fields = ("email", "first_name", "last_name")
    date_hierarchy = "date_joined"
    readonly_fields = ("public_id", "last_login", "date_joined", "blocked_at", "blocked_reason", "status")
    fieldsets = (
        (None, {"fields": ("public_id", "email", "password")}),
        (_("Personal info"), {"fields": ("first_name", "last_name", "timezone", "language", "picture")}),
        (_("Role and status"), {"fields": ("role", "status", "blocked_reason", "blocked_at", "is_active")}),
        (_("Permissions"), {"fields": ("is_staff", "is_superuser", "groups", "user_permissions")}),
        (_("Important dates"), {"fields": ("last_login", "date_joined")}),
    )
    add_fieldsets = ((None, {"classes": ("wide",), "fields": ("email", "role", "password1", "password2")}),)
    inlines = [PatientProfileInline, NotificationPreferenceInline, ApiSessionInline]
    actions = ["force_logout", "block_users", "unblock_users", "resend_verification"]
    # Roles and permissions are given by superusers only: a support agent can fix a name or a
    # time zone, not make someone staff.
    superuser_only_fields = ("role", "is_staff", "is_superuser", "groups", "user_permissions")

    def get_readonly_fields(self, request, obj=None):
        readonly = super().get_readonly_fields(request, obj)
        return readonly if request.user.is_superuser else (*readonly, *self.superuser_only_fields)

    @admin.action(description=_("Force log-out (end every session and token)"), permissions=["change"])
    def force_logout(self, request, queryset):
        for user in queryset:
            services.user_force_logout(user=user, by=request.user, request=request)
        self.message_user(request, _("%(count)d user(s) signed out everywhere.") % {"count": queryset.count()}, messages.SUCCESS)

    @admin.action(description=_("Block (reason: blocked by staff)"), permissions=["change"])
    def block_users(self, request, queryset):
        blocked = 0
        for user in queryset.exclude(pk=request.user.pk):
            services.user_block(user=user, by=request.user, reason=f"Blocked by staff ({request.user.email})", request=request)
            blocked += 1
        self.message_user(request, _("%(count)d user(s) blocked.") % {"count": blocked}, messages.SUCCESS)

    @admin.action(description=_("Unblock"), permissions=["change"])
    def unblock_users(self, request, queryset):
        for user in queryset:
            services.user_unblock(user=user, by=request.user, request=request)
        self.message_user(request, _("%(count)d user(s) unblocked.") % {"count": queryset.count()}, messages.SUCCESS)

    @admin.action(description=_("Resend the email verification link"), permissions=["change"])
    def resend_verification(self, request, queryset):
        sent = sum(services.user_verification_resend(user=user, by=request.user, request=request) for user in queryset)
        skipped = queryset.count() - sent
        self.message_user(
            request, _("Verification link sent to %(sent)d user(s); %(skipped)d already verified.") % {"sent": sent, "skipped": skipped}, messages.SUCCESS
        )
