from django.contrib import admin

from .models import Appointment, AppointmentEvent, DateOverride, DoctorSchedule, PlatformHoliday, WeeklyHours


class WeeklyHoursInline(admin.TabularInline):
    model = WeeklyHours
    extra = 0


class DateOverrideInline(admin.TabularInline):
    model = DateOverride
    extra = 0


@admin.register(DoctorSchedule)
class DoctorScheduleAdmin(admin.ModelAdmin):
    list_display = ("doctor", "timezone", "default_slot_minutes", "buffer_before_minutes", "buffer_after_minutes", "min_notice_minutes", "daily_cap")
    search_fields = ("doctor__user__email", "doctor__user__last_name")
    list_select_related = ("doctor__user",)
    raw_id_fields = ("doctor",)
    inlines = [WeeklyHoursInline, DateOverrideInline]


@admin.register(PlatformHoliday)
class PlatformHolidayAdmin(admin.ModelAdmin):
    """Dates closed for every doctor (or every doctor in one country)."""

    list_display = ("date", "name", "country")
    list_filter = ("country",)
    date_hierarchy = "date"


class AppointmentEventInline(admin.TabularInline):
    model = AppointmentEvent
    extra = 0
    can_delete = False
    fields = ("created_at", "from_status", "to_status", "by", "note")
    readonly_fields = fields

    def has_add_permission(self, request, obj=None):
        return False


@admin.register(Appointment)
class AppointmentAdmin(admin.ModelAdmin):
    """Read-only view of bookings: changes go through the portals and the API so that every
    rule (overlaps, policy, history) applies."""

    list_display = ("start", "doctor", "patient", "service", "status", "price_minor", "currency")
    list_filter = ("status", "currency")
    search_fields = ("public_id", "doctor__user__email", "patient__email")
    date_hierarchy = "start"
    list_select_related = ("doctor__user", "patient", "service")
    inlines = [AppointmentEventInline]
    exclude = ("reason",)  # the reason for visit is clinical information

    def get_readonly_fields(self, request, obj=None):
        return [f.name for f in self.model._meta.fields if f.name != "reason"]

    def has_add_permission(self, request):
        return False

    def has_delete_permission(self, request, obj=None):
        return False
