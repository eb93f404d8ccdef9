from django.contrib import admin

from medimeet.core.admin import ClinicalContentMixin, ClinicalOnlyMixin, ReadOnlyAdmin

from .models import (
    Appointment,
    AppointmentEvent,
    CalendarFeed,
    ClinicalNote,
    DateOverride,
    DoctorSchedule,
    PlatformHoliday,
    RebookingOffer,
    WaitlistEntry,
    WeeklyHours,
)


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
    search_fields = ("name",)
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
class AppointmentAdmin(ClinicalContentMixin, admin.ModelAdmin):
    """Read-only view of bookings: changes go through the portals and the API so that every
    rule (overlaps, policy, history) applies. The reason for visit is clinical information:
    only clinical reviewers see it (audited)."""

    list_display = ("start", "doctor", "patient", "service", "status", "price_minor", "currency")
    list_filter = ("status", "currency")
    search_fields = ("public_id", "doctor__user__email", "patient__email")
    date_hierarchy = "start"
    list_select_related = ("doctor__user", "patient", "service")
    inlines = [AppointmentEventInline]
    fields = readonly_fields = [f.name for f in Appointment._meta.fields if f.name != "id"]
    clinical_fields = ("reason",)

    def has_add_permission(self, request):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(ClinicalNote)
class ClinicalNoteAdmin(ClinicalOnlyMixin, ReadOnlyAdmin):
    """The doctor's notes on an appointment: clinical reviewers only, every opening audited."""

    list_display = ("created_at", "appointment", "author", "follow_up_appointment")
    search_fields = ("appointment__public_id",)
    date_hierarchy = "created_at"
    list_select_related = ("appointment", "author")
    fields = readonly_fields = (
        "appointment",
        "author",
        "created_at",
        "updated_at",
        "text",
        "follow_up_on",
        "follow_up_note",
        "follow_up_service",
        "follow_up_appointment",
    )
    clinical_fields = ("text", "follow_up_on", "follow_up_note")

    def clinical_subject(self, obj):
        return obj.appointment.patient


@admin.register(WaitlistEntry)
class WaitlistEntryAdmin(ReadOnlyAdmin):
    list_display = ("created_at", "patient", "doctor", "service", "first_day", "last_day", "status", "declined_offers")
    list_filter = ("status",)
    search_fields = ("patient__email", "doctor__slug")
    date_hierarchy = "created_at"
    list_select_related = ("patient", "doctor__user", "service")


@admin.register(RebookingOffer)
class RebookingOfferAdmin(ReadOnlyAdmin):
    """Offers made when a doctor cancels: the patient's choice and what it became."""

    list_display = ("created_at", "appointment", "original_start", "status", "choice", "expires_at", "decided_at")
    list_filter = ("status", "choice")
    search_fields = ("appointment__public_id",)
    date_hierarchy = "created_at"
    list_select_related = ("appointment",)


@admin.register(CalendarFeed)
class CalendarFeedAdmin(ReadOnlyAdmin):
    """Who subscribes to a calendar feed and when it was last fetched (the secret URL is not shown)."""

    list_display = ("user", "created_at", "rotated_at", "last_fetched_at", "fetch_count")
    search_fields = ("user__email",)
    list_select_related = ("user",)
    fields = readonly_fields = list_display

    def has_add_permission(self, request):
        return False

    def has_delete_permission(self, request, obj=None):
        return False
