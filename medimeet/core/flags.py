"""Feature flags and switches (django-waffle): their names, safe defaults, and how code asks.

- A **flag** is decided per person (everyone, staff, groups, users, or a percentage of browsers
  kept by waffle's ``dwf_<name>`` cookie). Pages and API views ask with the request
  (``waffle.flag_is_active(request, name)``, or ``{% flag %}`` in templates); code without a
  request (a websocket consumer, a service) asks ``flag_active_for(user, name)``, which follows
  everyone/authenticated/staff/groups/users but not percentages (they need a browser cookie).
- A **switch** is global (``waffle.switch_is_active(name)``): Celery tasks use them.

The rows are created by migration ``core.0008_feature_flags`` and again after every ``migrate``
or flush (``flags_ensure`` on post_migrate), so each exists with its safe default and staff
change them in the admin (Waffle → Flags / Switches); an unknown name is off.
"""

from __future__ import annotations

from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.permissions import AllowAny
from rest_framework.response import Response
from rest_framework.views import APIView
from waffle import flag_is_active, get_waffle_flag_model, switch_is_active

from .api import error_responses

VIDEO_RECORDING = "video-recording"
NEW_BOOKING_FLOW = "new-booking-flow"
SMS_REMINDERS = "sms-reminders"

# name: (field values of a new row, note for staff). Existing rows are never changed.
FLAGS = {
    VIDEO_RECORDING: (
        {"everyone": True},
        "Consultation recording (with consent) in the video room, its socket frames and the recording API. "
        "Roll out by group or user, not by percent: the socket and the API decide without a browser cookie.",
    ),
    NEW_BOOKING_FLOW: (
        {"everyone": None, "percent": None, "rollout": False},
        "Experiment: the booking page asks for the reason first and one click holds and confirms the slot. Roll out by percent (sticky per browser) or group.",
    ),
}
SWITCHES = {
    SMS_REMINDERS: ({"active": True}, "Reminders and room-open messages also go by SMS to verified numbers (email always goes)."),
}
# What the apps are told (GET /api/v1/flags/): the per-person flags and the global switches.
PUBLIC_FLAGS = (VIDEO_RECORDING, NEW_BOOKING_FLOW)
PUBLIC_SWITCHES = (SMS_REMINDERS,)


def flags_ensure(flag_model, switch_model) -> None:
    """Create the known flags and switches that do not exist yet, with their safe defaults
    (the data migration passes its historical models; post_migrate the real ones)."""
    for model, known in ((flag_model, FLAGS), (switch_model, SWITCHES)):
        for name, (values, note) in known.items():
            model.objects.get_or_create(name=name, defaults={**values, "note": note})


def flags_ensure_after_migrate(**kwargs) -> None:
    from django.db import DatabaseError
    from waffle.models import Flag, Switch

    try:
        flags_ensure(Flag, Switch)
    except DatabaseError:  # waffle's tables not migrated in this database yet (a partial migrate)
        return


def flag_active_for(user, name: str) -> bool:
    """A flag for a person where there is no request (websocket consumers, services)."""
    flag = get_waffle_flag_model().get(name)
    return bool(flag.pk and flag.is_active_for_user(user))


def active_flags(request) -> dict:
    return {
        "flags": {name: bool(flag_is_active(request, name)) for name in PUBLIC_FLAGS},
        "switches": {name: switch_is_active(name) for name in PUBLIC_SWITCHES},
    }


class MaintenanceOutput(serializers.Serializer):
    active = serializers.BooleanField()
    message = serializers.CharField(allow_blank=True)


class SupportOutput(serializers.Serializer):
    email = serializers.CharField(allow_blank=True)
    phone = serializers.CharField(allow_blank=True)


class FlagsOutput(serializers.Serializer):
    flags = serializers.DictField(child=serializers.BooleanField(), help_text='Per person: {"video-recording": true, "new-booking-flow": false}.')
    switches = serializers.DictField(child=serializers.BooleanField(), help_text='Global: {"sms-reminders": true}.')
    maintenance = MaintenanceOutput()
    support = SupportOutput()


class FlagsView(APIView):
    permission_classes = [AllowAny]

    @extend_schema(tags=["platform"], responses={200: FlagsOutput, **error_responses(429)})
    def get(self, request):
        """Which features are on for the caller (signed in or not), the maintenance notice and
        the support contact, so the apps follow the site. A percentage rollout is decided once
        and kept by the ``dwf_<flag>`` cookie this answer sets: send it back to keep the answer."""
        from .platform import site_notice

        notice = site_notice()
        body = {
            # The Django request: waffle notes a new draw on it for its middleware to set the cookie.
            **active_flags(request._request),
            "maintenance": {"active": bool(notice.maintenance), "message": notice.maintenance},
            "support": {"email": notice.support_email, "phone": notice.support_phone},
        }
        return Response(FlagsOutput(body).data)
