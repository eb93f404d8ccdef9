"""API: a person's notification history and preferences (``/api/v1/notifications/``)."""

from __future__ import annotations

from django.conf import settings
from django.utils.translation import gettext
from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.response import Response
from rest_framework.views import APIView

from medimeet.core.api import ModelOutputSerializer, StandardPagination, error_responses, valid_input
from medimeet.core.errors import ApplicationError
from medimeet.core.models import Announcement, Notification
from medimeet.core.sms import TWILIO_STATUSES, twilio_signature_valid

from . import announcements, phone, selectors, services
from .catalogue import CATEGORIES, EVENTS


class NotificationOutput(ModelOutputSerializer):
    id = serializers.UUIDField(source="public_id")
    category = serializers.SerializerMethodField()

    class Meta:
        model = Notification
        fields = ["id", "event", "category", "channel", "subject", "language", "status", "created_at", "sent_at"]

    def get_category(self, obj: Notification) -> str:
        event = EVENTS.get(obj.event)
        return event.category if event else ""


class PreferencesSerializer(serializers.Serializer):
    channels = serializers.DictField(
        child=serializers.ListField(child=serializers.ChoiceField(choices=["email", "sms"])),
        help_text=f"Channels per category ({', '.join(CATEGORIES)}). Essential categories are always emailed.",
    )
    reminder_offsets = serializers.ListField(child=serializers.IntegerField(min_value=5, max_value=7 * 24 * 60), max_length=6, help_text="Minutes before each appointment.")
    language = serializers.ChoiceField(choices=settings.LANGUAGES)


class PreferencesInput(PreferencesSerializer):
    channels = serializers.DictField(child=serializers.ListField(child=serializers.ChoiceField(choices=["email", "sms"])), required=False)
    reminder_offsets = serializers.ListField(child=serializers.IntegerField(min_value=5, max_value=7 * 24 * 60), max_length=6, required=False)
    language = serializers.ChoiceField(choices=settings.LANGUAGES, required=False)


def preferences_output(user) -> dict:
    preference = services.preferences_for(user)
    channels = {name: list(preference.channels.get(name, category.default_channels)) for name, category in CATEGORIES.items()}
    return {"channels": channels, "reminder_offsets": preference.reminder_offsets, "language": user.language}


class NotificationListView(APIView):
    pagination_class = StandardPagination  # what drf-spectacular documents the 200 as: one page
    @extend_schema(tags=["notifications"], responses={200: NotificationOutput(many=True), **error_responses(401)})
    def get(self, request):
        """Messages sent to you, newest first, with their delivery status."""
        paginator = self.pagination_class()
        page = paginator.paginate_queryset(selectors.notifications_for(user=request.user), request, view=self)
        return paginator.get_paginated_response(NotificationOutput(page, many=True).data)


class PreferencesView(APIView):
    @extend_schema(tags=["notifications"], responses={200: PreferencesSerializer, **error_responses(401)})
    def get(self, request):
        """Your channels per kind of message, reminder offsets and language."""
        return Response(preferences_output(request.user))

    @extend_schema(tags=["notifications"], request=PreferencesInput, responses={200: PreferencesSerializer, **error_responses(400, 401)})
    def patch(self, request):
        """Change any of them; what is left out stays as it is."""
        data = valid_input(PreferencesInput, request.data)
        services.preferences_update(user=request.user, channels=data.get("channels"), reminder_offsets=data.get("reminder_offsets"), language=data.get("language"))
        return Response(preferences_output(request.user))


class AnnouncementOutput(ModelOutputSerializer):
    class Meta:
        model = Announcement
        fields = ["id", "kind", "title", "body", "starts_at", "ends_at"]


class AnnouncementListView(APIView):
    @extend_schema(tags=["notifications"], responses={200: AnnouncementOutput(many=True), **error_responses(401)})
    def get(self, request):
        """System announcements for you that are active and not dismissed, newest first (the
        portals show them as banners)."""
        return Response(AnnouncementOutput(announcements.announcements_for(user=request.user), many=True).data)


class AnnouncementDismissView(APIView):
    @extend_schema(tags=["notifications"], request=None, responses={204: None, **error_responses(401, 404)})
    def post(self, request, announcement_id: int):
        """Hide an announcement for good (for you)."""
        if not announcements.announcement_dismiss(announcement_id=announcement_id, user=request.user):
            raise ApplicationError("REQ_004", gettext("No such announcement for you."))
        return Response(status=204)


class SmsNumberInput(serializers.Serializer):
    number = serializers.CharField(max_length=32, help_text="With its country code, e.g. +44 7700 900123.")


class SmsCodeInput(serializers.Serializer):
    code = serializers.CharField(max_length=12)


class SmsNumberOutput(serializers.Serializer):
    number = serializers.CharField(help_text="Masked: +44••••••••23.")
    verified = serializers.BooleanField()


def sms_number_output(preference) -> dict:
    return SmsNumberOutput({"number": phone.masked(preference.sms_number), "verified": bool(preference.verified_sms_number)}).data


class SmsNumberView(APIView):
    @extend_schema(tags=["notifications"], request=SmsNumberInput, responses={202: SmsNumberOutput, **error_responses(400, 401, 429)})
    def post(self, request):
        """Text a six-digit code to this number (valid 10 minutes); confirm it with
        ``/notifications/sms/verify/``. Until then no text message goes to it."""
        data = valid_input(SmsNumberInput, request.data)
        preference = phone.sms_number_start(user=request.user, number=data["number"], request=request)
        return Response(sms_number_output(preference), status=202)

    @extend_schema(tags=["notifications"], responses={204: None, **error_responses(401)})
    def delete(self, request):
        """Forget the number: no more text messages."""
        phone.sms_number_remove(user=request.user, request=request)
        return Response(status=204)


class SmsNumberVerifyView(APIView):
    @extend_schema(tags=["notifications"], request=SmsCodeInput, responses={200: SmsNumberOutput, **error_responses(400, 401, 429)})
    def post(self, request):
        data = valid_input(SmsCodeInput, request.data)
        return Response(sms_number_output(phone.sms_number_confirm(user=request.user, code=data["code"], request=request)))


class SmsStatusView(APIView):
    """Twilio's status callback: signed with the account's auth token, no session."""

    authentication_classes: list = []
    permission_classes: list = []
    throttle_classes: list = []

    @extend_schema(tags=["notifications"], request=None, responses={204: None, **error_responses(403)})
    def post(self, request):
        params = {key: request.POST.get(key) for key in request.POST}
        url = settings.SITE_URL + request.get_full_path()
        if not twilio_signature_valid(url=url, params=params, signature=request.headers.get("X-Twilio-Signature", "")):
            raise ApplicationError("NTF_005")
        status = TWILIO_STATUSES.get(params.get("MessageStatus", ""))
        if status:
            services.notification_status_update(provider_message_id=params.get("MessageSid", ""), status=status, error=params.get("ErrorCode", "") or "")
        return Response(status=204)
