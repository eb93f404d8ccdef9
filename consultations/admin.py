"""Back office for consultations: who joined when (the evidence for no-shows and disputes) and
connection quality. Chat content is clinical and stays out of the admin."""

from django.contrib import admin
from django.db.models import Avg
from django.template.defaultfilters import filesizeformat
from django.urls import reverse
from django.utils.html import format_html

from medimeet.core.admin import ClinicalOnlyMixin, ReadOnlyAdmin, ReadOnlyInline

from .models import ChatMessage, Consultation, GuestInvite, Participation, PresenceEvent, QualitySample, Recording, RecordingChunk, RecordingConsent


class ParticipationInline(ReadOnlyInline):
    model = Participation
    fields = ("role", "user", "guest", "admitted_at", "first_joined_at", "last_left_at", "seconds_connected", "connections", "sockets")
    readonly_fields = fields


class GuestInviteInline(ReadOnlyInline):
    """Who was invited, by whom, and what became of the link (the link itself is never stored)."""

    model = GuestInvite
    fk_name = "consultation"
    fields = ("name", "relationship", "invited_by", "email", "created_at", "expires_at", "used_at", "revoked_at")
    readonly_fields = fields


class PresenceInline(ReadOnlyInline):
    model = PresenceEvent
    fields = ("at", "participation", "kind")
    readonly_fields = fields


class RecordingConsentInline(ReadOnlyInline):
    model = RecordingConsent
    fields = ("at", "participation", "role", "consent", "source")
    readonly_fields = fields
    verbose_name_plural = "Recording consents (every change)"


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
    inlines = [ParticipationInline, GuestInviteInline, PresenceInline, RecordingConsentInline, QualityInline]

    def get_queryset(self, request):
        return super().get_queryset(request).annotate(rtt=Avg("quality_samples__rtt_ms"))

    @admin.display(description="Average RTT (ms)", ordering="rtt")
    def average_rtt(self, obj):
        return round(obj.rtt, 1) if obj.rtt is not None else "—"

    def has_add_permission(self, request):
        return False


class RecordingChunkInline(ReadOnlyInline):
    """The encrypted pieces in upload order (checksums only; the media is downloaded whole)."""

    model = RecordingChunk
    fields = readonly_fields = ("seq", "size", "sha256", "created_at")


@admin.register(ChatMessage)
class ChatMessageAdmin(ClinicalOnlyMixin, ReadOnlyAdmin):
    """The consultation chat is clinical content: clinical reviewers only, every opening audited."""

    list_display = ("sent_at", "consultation", "participation")
    date_hierarchy = "sent_at"
    search_fields = ("consultation__room", "consultation__appointment__public_id")
    list_select_related = ("consultation", "participation")
    fields = readonly_fields = ("consultation", "participation", "sent_at", "body")
    clinical_fields = ("body",)

    def clinical_subject(self, obj):
        return obj.consultation.appointment.patient


@admin.register(Recording)
class RecordingAdmin(admin.ModelAdmin):
    """Read-only: recordings are made in the room and deleted by the retention policy. Staff with
    consultations.view_recording may download one (audited, through the API's download)."""

    list_display = ("public_id", "consultation", "status", "started_at", "ended_at", "chunk_count", "size", "download")
    list_filter = ("status",)
    search_fields = ("public_id", "consultation__room", "consultation__appointment__public_id")
    date_hierarchy = "started_at"
    list_select_related = ("consultation__appointment__doctor__user", "consultation__appointment__patient")
    fields = ("public_id", "consultation", "started_by", "status", "mime_type", "started_at", "ended_at", "deleted_at", "chunk_count", "size", "download")
    readonly_fields = fields
    inlines = [RecordingChunkInline]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False  # the retention task deletes media and keeps the row

    @admin.display(description="Size", ordering="bytes")
    def size(self, obj):
        return filesizeformat(obj.bytes)

    @admin.display(description="Download")
    def download(self, obj):
        if not obj.is_downloadable:
            return "—"
        return format_html('<a href="{}" download>Download</a>', reverse("api-v1:consultations:recording-download", args=[obj.public_id]))
