"""Back office for consultations: who joined when (the evidence for no-shows and disputes) and
connection quality. Chat content is clinical and stays out of the admin."""

from django.contrib import admin
from django.db.models import Avg

from .models import Consultation, Participation, PresenceEvent, QualitySample


class ReadOnlyInline(admin.TabularInline):
    extra = 0
    can_delete = False

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False


class ParticipationInline(ReadOnlyInline):
    model = Participation
    fields = ("role", "user", "admitted_at", "first_joined_at", "last_left_at", "seconds_connected", "connections", "sockets")
    readonly_fields = fields


class PresenceInline(ReadOnlyInline):
    model = PresenceEvent
    fields = ("at", "participation", "kind")
    readonly_fields = fields


class QualityInline(ReadOnlyInline):
    model = QualitySample
    fields = ("recorded_at", "participation", "rtt_ms", "packet_loss", "jitter_ms", "bitrate_kbps", "fps")
    readonly_fields = fields


@admin.register(Consultation)
class ConsultationAdmin(admin.ModelAdmin):
    list_display = ("appointment", "status", "started_at", "ended_at", "duration", "average_rtt")
    list_filter = ("status",)
    search_fields = ("room", "appointment__public_id", "appointment__patient__email", "appointment__doctor__slug")
    date_hierarchy = "created_at"
    list_select_related = ("appointment__doctor__user",)
    readonly_fields = ("appointment", "room", "status", "started_at", "ended_at", "ended_by", "created_at")
    inlines = [ParticipationInline, PresenceInline, QualityInline]

    def get_queryset(self, request):
        return super().get_queryset(request).annotate(rtt=Avg("quality_samples__rtt_ms"))

    @admin.display(description="Average RTT (ms)", ordering="rtt")
    def average_rtt(self, obj):
        return round(obj.rtt, 1) if obj.rtt is not None else "—"

    def has_add_permission(self, request):
        return False
