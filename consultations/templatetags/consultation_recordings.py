"""The appointment page's recordings card: ``{% load consultation_recordings %}{% appointment_recordings appointment %}``.

A tag rather than a view change so the appointment page needs two lines to show it; the card is
for the appointment's doctor and patient only (consultations.selectors.recordings_for_appointment)."""

from __future__ import annotations

from django import template
from django.conf import settings

from consultations.selectors import recordings_for_appointment

register = template.Library()


@register.inclusion_tag("consultations/includes/recordings.html", takes_context=True)
def appointment_recordings(context, appointment) -> dict:
    request = context.get("request")
    user = getattr(request, "user", None)
    recordings = recordings_for_appointment(appointment=appointment, user=user) if user is not None and user.is_authenticated else None
    return {
        "recordings": recordings or [],
        "retention_days": settings.CONSULTATION_RECORDING_RETENTION_DAYS,
        "link_max_minutes": settings.CONSULTATION_RECORDING_LINK_MAX_MINUTES,
        "csrf_token": context.get("csrf_token"),
    }
