"""Appointments API: slots, holds, bookings, cancellation, rescheduling, status, calendar, and
the doctor's availability rules. Every appointment is visible only to its patient, its doctor
and staff; anyone else gets APPT_006 (not found), whatever id they try."""

from __future__ import annotations

import zoneinfo
from datetime import UTC, datetime, time, timedelta

from django.db.models import Q
from django.http import HttpResponse
from django.utils.translation import gettext
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema, extend_schema_field
from rest_framework import serializers, status
from rest_framework.permissions import AllowAny
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.models import User, validate_timezone
from doctors.api import IsDoctor, MoneySerializer, money
from doctors.models import DoctorProfile, DoctorService
from medimeet.core import platform
from medimeet.core.api import ModelOutputSerializer, StandardPagination, UnsafeMethodsThrottleMixin, error_responses, valid_input
from medimeet.core.errors import ApplicationError
from medimeet.core.roles import staff_can

from . import selectors, services
from .calendar import appointment_ics
from .models import Appointment, RebookingOffer, WaitlistEntry

MAX_SLOT_DAYS = 31

# --- Serializers ----------------------------------------------------------------------------


class SlotOutput(serializers.Serializer):
    start = serializers.DateTimeField(help_text="UTC")
    end = serializers.DateTimeField(help_text="UTC")
    local_start = serializers.DateTimeField(help_text="In the requested time zone, with its offset")
    local_end = serializers.DateTimeField()


class SlotsOutput(serializers.Serializer):
    timezone = serializers.CharField()
    doctor_timezone = serializers.CharField()
    service = serializers.UUIDField()
    slots = SlotOutput(many=True)


class SlotQuery(serializers.Serializer):
    service = serializers.UUIDField()
    start_date = serializers.DateField(help_text="First day, in `timezone`.")
    end_date = serializers.DateField(help_text="Last day (inclusive), in `timezone`; at most 31 days after start_date.")
    timezone = serializers.CharField(max_length=64, default="UTC", validators=[validate_timezone])

    def validate(self, attrs: dict) -> dict:
        if attrs["end_date"] < attrs["start_date"]:
            raise serializers.ValidationError({"end_date": [gettext("The range ends before it starts.")]})
        if (attrs["end_date"] - attrs["start_date"]).days > MAX_SLOT_DAYS:
            raise serializers.ValidationError({"end_date": [f"Ask for at most {MAX_SLOT_DAYS} days at a time."]})
        return attrs


class PartyOutput(serializers.Serializer):
    id = serializers.UUIDField(source="public_id")
    name = serializers.CharField()


class AppointmentOutput(ModelOutputSerializer):
    id = serializers.UUIDField(source="public_id")
    doctor = serializers.SerializerMethodField()
    patient = serializers.SerializerMethodField()
    service = serializers.SerializerMethodField()
    price = serializers.SerializerMethodField()

    class Meta:
        model = Appointment
        fields = [
            "id", "status", "start", "end", "hold_expires_at", "doctor", "patient", "service", "price", "reason",
            "series_id", "reschedule_count", "cancelled_by", "cancelled_at", "cancellation_reason", "refund_percent", "created_at",
        ]

    def get_doctor(self, appointment) -> dict:
        return {"id": str(appointment.doctor.public_id), "slug": appointment.doctor.slug, "name": appointment.doctor.display_name}

    def get_patient(self, appointment) -> dict:
        return {"id": str(appointment.patient.public_id), "name": appointment.patient.display_name}

    def get_service(self, appointment) -> dict:
        service = appointment.service
        return {"id": str(service.public_id), "name": service.name, "duration_minutes": service.duration_minutes, "mode": service.mode}

    @extend_schema_field(MoneySerializer)
    def get_price(self, appointment) -> dict:
        return money(appointment.price_minor, appointment.currency)


class HoldInput(serializers.Serializer):
    service = serializers.UUIDField()
    start = serializers.DateTimeField(help_text="A slot start from the slots endpoint, with its offset (UTC recommended).")
    reason = serializers.CharField(
        max_length=2000, required=False,
        help_text="Why the patient is booking. Given here, the booking skips the confirm step: it is created waiting for payment (or confirmed when free).",
    )


class ConfirmInput(serializers.Serializer):
    reason = serializers.CharField(max_length=2000, help_text="Why the patient is booking, for the doctor.")


class ReasonInput(serializers.Serializer):
    reason = serializers.CharField(max_length=2000)


class RescheduleInput(serializers.Serializer):
    start = serializers.DateTimeField()


STATUS_CHANGES = [("in_progress", "In progress"), ("completed", "Completed"), ("no_show", "No-show")]


class StatusInput(serializers.Serializer):
    status = serializers.ChoiceField(choices=STATUS_CHANGES)


class QuoteOutput(serializers.Serializer):
    allowed = serializers.BooleanField()
    refund_percent = serializers.IntegerField()
    hours_before = serializers.FloatField()
    policy = serializers.ListField(child=serializers.DictField())


class ListQuery(serializers.Serializer):
    role = serializers.ChoiceField(choices=[("patient", "patient"), ("doctor", "doctor")], required=False, allow_blank=True, default="")
    status = serializers.ChoiceField(choices=Appointment.Status.choices, required=False, allow_blank=True, default="")
    start_date = serializers.DateField(required=False, allow_null=True, default=None)
    end_date = serializers.DateField(required=False, allow_null=True, default=None)


class WeeklyHoursIO(serializers.Serializer):
    weekday = serializers.IntegerField(min_value=0, max_value=6, help_text="0 = Monday")
    start = serializers.TimeField()
    end = serializers.TimeField()


class ScheduleIO(serializers.Serializer):
    timezone = serializers.CharField(max_length=64, validators=[validate_timezone], required=False)
    default_slot_minutes = serializers.IntegerField(min_value=5, max_value=240, required=False)
    buffer_before_minutes = serializers.IntegerField(min_value=0, max_value=120, required=False)
    buffer_after_minutes = serializers.IntegerField(min_value=0, max_value=120, required=False)
    min_notice_minutes = serializers.IntegerField(min_value=0, max_value=20160, required=False)
    max_days_ahead = serializers.IntegerField(min_value=1, max_value=365, required=False)
    daily_cap = serializers.IntegerField(min_value=1, max_value=200, required=False, allow_null=True)
    max_reschedules = serializers.IntegerField(min_value=0, max_value=10, required=False)
    reschedule_min_notice_minutes = serializers.IntegerField(min_value=0, max_value=20160, required=False)
    cancellation_policy = serializers.ListField(child=serializers.DictField(), required=False)
    weekly_hours = WeeklyHoursIO(many=True, required=False)


class OverrideInput(serializers.Serializer):
    date = serializers.DateField()
    closed = serializers.BooleanField(default=False)
    ranges = serializers.ListField(child=serializers.DictField(), required=False, default=list, help_text='[{"start": "10:00", "end": "13:00"}]')
    note = serializers.CharField(max_length=200, required=False, allow_blank=True, default="")

    def validate(self, attrs: dict) -> dict:
        parsed = []
        for item in attrs["ranges"]:
            try:
                parsed.append((time.fromisoformat(str(item["start"])), time.fromisoformat(str(item["end"]))))
            except (KeyError, ValueError):
                raise serializers.ValidationError({"ranges": ['Each range needs "start" and "end" as HH:MM.']})
        if not attrs["closed"] and not parsed:
            raise serializers.ValidationError({"ranges": [gettext("Give special hours, or set closed.")]})
        attrs["parsed"] = [] if attrs["closed"] else parsed
        return attrs


# --- Helpers --------------------------------------------------------------------------------


def _appointment_for(request, appointment_id) -> Appointment:
    """The appointment if the caller is its patient, its doctor or staff; APPT_006 otherwise."""
    qs = Appointment.objects.select_related("doctor__user", "patient", "service")
    if not staff_can(request.user, "appointments.view_appointment"):
        qs = qs.filter(Q(patient=request.user) | Q(doctor__user=request.user))
    appointment = qs.filter(public_id=appointment_id).first()
    if appointment is None:
        raise ApplicationError("APPT_006")
    return appointment


def _output(appointment: Appointment) -> dict:
    """The appointment as the API shows it, read again only when its parties are not loaded."""
    loaded = all(Appointment._meta.get_field(name).is_cached(appointment) for name in ("doctor", "patient", "service"))
    if not loaded or not DoctorProfile._meta.get_field("user").is_cached(appointment.doctor):
        appointment = Appointment.objects.select_related("doctor__user", "patient", "service").get(pk=appointment.pk)
    return AppointmentOutput.represent(appointment)


def _schedule_output(doctor: DoctorProfile) -> dict:
    schedule = selectors.schedule_for(doctor)
    data = {name: getattr(schedule, name) for name in services.SCHEDULE_FIELDS}
    data["cancellation_policy"] = schedule.cancellation_policy or platform.cancellation_policy_default()
    data["weekly_hours"] = [{"weekday": w.weekday, "start": w.start_time, "end": w.end_time} for w in schedule.weekly_hours.all()]
    return ScheduleIO(data).data


# --- Views ----------------------------------------------------------------------------------


class SlotsView(APIView):
    permission_classes = [AllowAny]

    @extend_schema(tags=["appointments"], parameters=[SlotQuery], responses={200: SlotsOutput, **error_responses(400, 404)}, auth=[])
    def get(self, request, slug: str):
        params = valid_input(SlotQuery, request.query_params)
        doctor = DoctorProfile.objects.listed().select_related("user").filter(slug=slug).first()
        if doctor is None:
            raise ApplicationError("DOC_001")
        service = DoctorService.objects.filter(doctor=doctor, public_id=params["service"], is_active=True).first()
        if service is None:
            raise ApplicationError("APPT_001", fields={"service": [gettext("This doctor offers no such service.")]})
        tz = zoneinfo.ZoneInfo(params["timezone"])
        window_start = datetime.combine(params["start_date"], time(0), tzinfo=tz).astimezone(UTC)
        window_end = datetime.combine(params["end_date"] + timedelta(days=1), time(0), tzinfo=tz).astimezone(UTC)
        slots = selectors.free_slots(doctor=doctor, service=service, window_start=window_start, window_end=window_end)
        return Response(
            {
                "timezone": params["timezone"],
                "doctor_timezone": selectors.schedule_for(doctor).timezone,
                "service": str(service.public_id),
                "slots": [
                    {"start": s.start, "end": s.end, "local_start": s.start.astimezone(tz), "local_end": s.end.astimezone(tz)} for s in slots
                ],
            }
        )


class AppointmentListView(UnsafeMethodsThrottleMixin, APIView):
    throttle_scope = "booking"
    pagination_class = StandardPagination  # what drf-spectacular documents the 200 as: one page
    @extend_schema(tags=["appointments"], parameters=[ListQuery], responses={200: AppointmentOutput(many=True), **error_responses(400, 401)})
    def get(self, request):
        params = valid_input(ListQuery, request.query_params)
        role = params["role"] or ("doctor" if request.user.role == User.Role.DOCTOR else "patient")
        tz = zoneinfo.ZoneInfo(request.user.timezone or "UTC")
        start = datetime.combine(params["start_date"], time(0), tzinfo=tz) if params["start_date"] else None
        end = datetime.combine(params["end_date"] + timedelta(days=1), time(0), tzinfo=tz) if params["end_date"] else None
        queryset = selectors.appointments_for(user=request.user, role=role, status=params["status"], start=start, end=end)
        paginator = self.pagination_class()
        page = paginator.paginate_queryset(queryset, request, view=self)
        return paginator.get_paginated_response(AppointmentOutput(page, many=True).data)

    @extend_schema(
        tags=["appointments"],
        request=HoldInput,
        parameters=[OpenApiParameter("Idempotency-Key", str, OpenApiParameter.HEADER, required=False, description="Retrying with the same key never creates a second appointment.")],
        responses={201: AppointmentOutput, **error_responses(400, 401, 409, 429)},
    )
    def post(self, request):
        data = valid_input(HoldInput, request.data)
        service = selectors.service_for_booking(data["service"])
        if service is None:
            raise ApplicationError("APPT_001", fields={"service": [gettext("Unknown service.")]})
        key = request.headers.get("Idempotency-Key", "")[:100]
        appointment = services.appointment_hold(
            patient=request.user, service=service, start=data["start"], idempotency_key=key, reason=data.get("reason", ""), request=request._request
        )
        return Response(_output(appointment), status=status.HTTP_201_CREATED)


class AppointmentDetailView(APIView):
    @extend_schema(tags=["appointments"], responses={200: AppointmentOutput, **error_responses(401, 404)})
    def get(self, request, appointment_id):
        return Response(AppointmentOutput.represent(_appointment_for(request, appointment_id)))


class AppointmentConfirmView(APIView):
    @extend_schema(tags=["appointments"], request=ConfirmInput, responses={200: AppointmentOutput, **error_responses(400, 401, 404, 409)})
    def post(self, request, appointment_id):
        appointment = _appointment_for(request, appointment_id)
        data = valid_input(ConfirmInput, request.data)
        return Response(_output(services.appointment_confirm_details(appointment=appointment, patient=request.user, reason=data["reason"], request=request._request)))


class AppointmentCancellationQuoteView(APIView):
    @extend_schema(tags=["appointments"], responses={200: QuoteOutput, **error_responses(401, 404)})
    def get(self, request, appointment_id):
        appointment = _appointment_for(request, appointment_id)
        quote = services.cancellation_quote(appointment=appointment, by_role=appointment.cancelling_role(request.user))
        return Response(QuoteOutput(quote).data)


class AppointmentCancelView(APIView):
    @extend_schema(tags=["appointments"], request=ReasonInput, responses={200: AppointmentOutput, **error_responses(400, 401, 404, 409)})
    def post(self, request, appointment_id):
        appointment = _appointment_for(request, appointment_id)
        data = valid_input(ReasonInput, request.data)
        return Response(_output(services.appointment_cancel(appointment=appointment, by=request.user, reason=data["reason"], request=request._request)))


class AppointmentRescheduleView(APIView):
    @extend_schema(tags=["appointments"], request=RescheduleInput, responses={200: AppointmentOutput, **error_responses(400, 401, 404, 409)})
    def post(self, request, appointment_id):
        appointment = _appointment_for(request, appointment_id)
        data = valid_input(RescheduleInput, request.data)
        return Response(_output(services.appointment_reschedule(appointment=appointment, by=request.user, start=data["start"], request=request._request)))


class AppointmentStatusView(APIView):
    @extend_schema(tags=["appointments"], request=StatusInput, responses={200: AppointmentOutput, **error_responses(400, 401, 404, 409)})
    def post(self, request, appointment_id):
        appointment = _appointment_for(request, appointment_id)
        data = valid_input(StatusInput, request.data)
        return Response(_output(services.appointment_set_status(appointment=appointment, by=request.user, status=data["status"], request=request._request)))


class AppointmentCalendarView(APIView):
    @extend_schema(tags=["appointments"], responses={(200, "text/calendar"): OpenApiResponse(description="iCalendar event"), **error_responses(401, 404)})
    def get(self, request, appointment_id):
        appointment = _appointment_for(request, appointment_id)
        response = HttpResponse(appointment_ics(appointment, viewer_timezone=request.user.timezone or "UTC"), content_type="text/calendar; charset=utf-8")
        response["Content-Disposition"] = f'attachment; filename="medimeet-{appointment.public_id}.ics"'
        return response


class OwnScheduleView(APIView):
    permission_classes = [IsDoctor]

    @extend_schema(tags=["doctor portal"], responses={200: ScheduleIO, **error_responses(401, 403)})
    def get(self, request):
        return Response(_schedule_output(request.user.doctor_profile))

    @extend_schema(tags=["doctor portal"], request=ScheduleIO, responses={200: ScheduleIO, **error_responses(400, 401, 403)})
    def put(self, request):
        data = dict(valid_input(ScheduleIO, request.data))
        weekly = data.pop("weekly_hours", None)
        services.schedule_update(
            doctor=request.user.doctor_profile,
            data=data,
            weekly_hours=[(row["weekday"], row["start"], row["end"]) for row in weekly] if weekly is not None else None,
            by=request.user,
            request=request._request,
        )
        return Response(_schedule_output(request.user.doctor_profile))


class OwnOverridesView(APIView):
    permission_classes = [IsDoctor]

    @extend_schema(tags=["doctor portal"], request=OverrideInput, responses={201: None, **error_responses(400, 401, 403)})
    def post(self, request):
        data = valid_input(OverrideInput, request.data)
        services.override_set(doctor=request.user.doctor_profile, day=data["date"], ranges=data["parsed"], note=data["note"], by=request.user, request=request._request)
        return Response(status=status.HTTP_201_CREATED)


class CalendarFeedOutput(serializers.Serializer):
    url = serializers.URLField()
    last_fetched_at = serializers.DateTimeField(allow_null=True)
    rotated_at = serializers.DateTimeField(allow_null=True)


def _feed_output(feed) -> dict:
    from django.conf import settings
    from django.urls import reverse

    url = settings.SITE_URL + reverse("appointments:calendar-feed", args=[feed.token])
    return CalendarFeedOutput({"url": url, "last_fetched_at": feed.last_fetched_at, "rotated_at": feed.rotated_at}).data


class CalendarFeedView(APIView):
    @extend_schema(tags=["appointments"], responses={200: CalendarFeedOutput, **error_responses(401)})
    def get(self, request):
        return Response(_feed_output(services.calendar_feed_get(user=request.user)))


class CalendarFeedRotateView(APIView):
    @extend_schema(tags=["appointments"], request=None, responses={200: CalendarFeedOutput, **error_responses(401)})
    def post(self, request):
        return Response(_feed_output(services.calendar_feed_rotate(user=request.user, request=request._request)))


class EmergencyInput(serializers.Serializer):
    until = serializers.DateTimeField(required=False, allow_null=True, default=None, help_text="Default: the end of the doctor's day.")
    reason = serializers.CharField(max_length=500, required=False, allow_blank=True, default="")


class VacationInput(serializers.Serializer):
    first_day = serializers.DateField()
    last_day = serializers.DateField()
    note = serializers.CharField(max_length=200, required=False, allow_blank=True, default="")


class AffectedOutput(serializers.Serializer):
    affected = AppointmentOutput(many=True)


class OwnEmergencyView(APIView):
    permission_classes = [IsDoctor]

    @extend_schema(tags=["doctor portal"], request=EmergencyInput, responses={200: AffectedOutput, **error_responses(400, 401, 403)})
    def post(self, request):
        data = valid_input(EmergencyInput, request.data)
        affected = services.doctor_emergency_unavailable(doctor=request.user.doctor_profile, by=request.user, until=data["until"], reason=data["reason"], request=request._request)
        return Response({"affected": AppointmentOutput(affected, many=True).data})


class OwnVacationView(APIView):
    permission_classes = [IsDoctor]

    @extend_schema(tags=["doctor portal"], request=VacationInput, responses={200: AffectedOutput, **error_responses(400, 401, 403)})
    def post(self, request):
        data = valid_input(VacationInput, request.data)
        affected = services.doctor_vacation_set(doctor=request.user.doctor_profile, first_day=data["first_day"], last_day=data["last_day"], note=data["note"], by=request.user, request=request._request)
        return Response({"affected": AppointmentOutput(affected, many=True).data})


class WaitlistInput(serializers.Serializer):
    service = serializers.UUIDField()
    first_day = serializers.DateField()
    last_day = serializers.DateField()


class WaitlistOutput(serializers.ModelSerializer):
    id = serializers.IntegerField(source="pk")
    doctor = serializers.CharField(source="doctor.slug")
    service = serializers.UUIDField(source="service.public_id")
    offer = serializers.UUIDField(source="offer.public_id", allow_null=True, default=None)

    class Meta:
        model = WaitlistEntry
        fields = ["id", "doctor", "service", "first_day", "last_day", "status", "offer", "created_at"]


class WaitlistView(APIView):
    @extend_schema(tags=["appointments"], responses={200: WaitlistOutput(many=True), **error_responses(401)})
    def get(self, request):
        entries = WaitlistEntry.objects.select_related("doctor", "service", "offer").filter(patient=request.user).order_by("-created_at")[:50]
        return Response(WaitlistOutput(entries, many=True).data)

    @extend_schema(tags=["appointments"], request=WaitlistInput, responses={201: WaitlistOutput, **error_responses(400, 401, 409)})
    def post(self, request):
        data = valid_input(WaitlistInput, request.data)
        service = DoctorService.objects.select_related("doctor").filter(public_id=data["service"]).first()
        if service is None:
            raise ApplicationError("APPT_001", fields={"service": [gettext("Unknown service.")]})
        entry = services.waitlist_join(patient=request.user, service=service, first_day=data["first_day"], last_day=data["last_day"], request=request._request)
        entry.refresh_from_db()
        return Response(WaitlistOutput(entry).data, status=status.HTTP_201_CREATED)


class WaitlistEntryView(APIView):
    @extend_schema(tags=["appointments"], responses={204: None, **error_responses(401, 404)})
    def delete(self, request, entry_id: int):
        entry = WaitlistEntry.objects.filter(pk=entry_id, patient=request.user).first()
        if entry is None:
            raise ApplicationError("APPT_006", gettext("Waitlist entry not found."))
        services.waitlist_leave(entry=entry, patient=request.user)
        return Response(status=status.HTTP_204_NO_CONTENT)


class SeriesInput(serializers.Serializer):
    service = serializers.UUIDField()
    first_start = serializers.DateTimeField()
    occurrences = serializers.IntegerField(min_value=2, max_value=services.MAX_SERIES_OCCURRENCES)
    interval_days = serializers.ChoiceField(choices=[(7, "weekly"), (14, "fortnightly"), (28, "every four weeks")], default=7)
    reason = serializers.CharField(max_length=2000)


class SeriesView(UnsafeMethodsThrottleMixin, APIView):
    throttle_scope = "booking"

    @extend_schema(
        tags=["appointments"],
        request=SeriesInput,
        responses={201: AppointmentOutput(many=True), **error_responses(400, 401, 409, 429)},
        parameters=[OpenApiParameter("Idempotency-Key", str, OpenApiParameter.HEADER, required=False, description="Retrying with the same key returns the series already booked.")],
    )
    def post(self, request):
        data = valid_input(SeriesInput, request.data)
        service = DoctorService.objects.select_related("doctor").filter(public_id=data["service"]).first()
        if service is None:
            raise ApplicationError("APPT_001", fields={"service": [gettext("Unknown service.")]})
        booked = services.appointment_series_book(
            patient=request.user, service=service, first_start=data["first_start"], occurrences=data["occurrences"],
            interval_days=int(data["interval_days"]), reason=data["reason"], request=request._request,
            idempotency_key=request.headers.get("Idempotency-Key", ""),
        )
        queryset = Appointment.objects.select_related("doctor__user", "patient", "service").filter(pk__in=[a.pk for a in booked]).order_by("start")
        return Response(AppointmentOutput(queryset, many=True).data, status=status.HTTP_201_CREATED)


# --- Vacation rebooking offers ------------------------------------------------------------------


class DoctorRefOutput(serializers.Serializer):
    id = serializers.UUIDField()
    slug = serializers.CharField()
    name = serializers.CharField()


class ServiceRefOutput(serializers.Serializer):
    id = serializers.UUIDField()
    name = serializers.CharField()
    duration_minutes = serializers.IntegerField()
    mode = serializers.CharField()


class ProposalOutput(serializers.Serializer):
    choice = serializers.ChoiceField(choices=[c for c in RebookingOffer.Choice.choices if c[0] != "cancel"])
    hold = serializers.UUIDField(help_text="The held appointment; accepting turns it into the booking (or moves the original into its time).")
    doctor = DoctorRefOutput()
    service = ServiceRefOutput()
    start = serializers.DateTimeField()
    end = serializers.DateTimeField()
    price = MoneySerializer(help_text="Same doctor: not charged again (the original booking moves). Other doctor: the new booking's fee.")


class RebookingOfferOutput(serializers.Serializer):
    appointment = serializers.UUIDField()
    expires_at = serializers.DateTimeField(help_text="The proposed times are released then.")
    proposals = ProposalOutput(many=True)
    cancel_refund_percent = serializers.IntegerField(help_text="Refund when choosing `cancel` (of what was paid).")


class RebookingInput(serializers.Serializer):
    choice = serializers.ChoiceField(choices=RebookingOffer.Choice.choices)


def _service_ref(service: DoctorService) -> dict:
    return {"id": service.public_id, "name": service.name, "duration_minutes": service.duration_minutes, "mode": service.mode}


def _offer_output(offer: RebookingOffer) -> dict:
    proposals = []
    for choice, hold in ((RebookingOffer.Choice.SAME_DOCTOR, offer.same_doctor_hold), (RebookingOffer.Choice.OTHER_DOCTOR, offer.other_doctor_hold)):
        if hold is not None and hold.is_hold_live:
            proposals.append(
                {
                    "choice": choice, "hold": hold.public_id, "start": hold.start, "end": hold.end, "service": _service_ref(hold.service),
                    "doctor": {"id": hold.doctor.public_id, "slug": hold.doctor.slug, "name": hold.doctor.display_name},
                    "price": money(0 if choice == RebookingOffer.Choice.SAME_DOCTOR else hold.price_minor, hold.currency),
                }
            )
    quote = services.cancellation_quote(appointment=offer.appointment, by_role="patient")
    return RebookingOfferOutput(
        {"appointment": offer.appointment.public_id, "expires_at": offer.expires_at, "proposals": proposals, "cancel_refund_percent": quote.refund_percent}
    ).data


def _own_appointment(request, appointment_id) -> Appointment:
    """The appointment if the caller is its patient (offers and follow-ups are theirs alone)."""
    appointment = _appointment_for(request, appointment_id)
    if appointment.patient_id != request.user.pk:
        raise ApplicationError("APPT_006")
    return appointment


class AppointmentRebookingView(APIView):
    @extend_schema(tags=["appointments"], responses={200: RebookingOfferOutput, **error_responses(401, 404)})
    def get(self, request, appointment_id):
        appointment = _own_appointment(request, appointment_id)
        offer = selectors.rebooking_offer_open(appointment=appointment)
        if offer is None:
            raise ApplicationError("APPT_009", gettext("This appointment has no open rebooking offer."), status_code=404)
        return Response(_offer_output(offer))

    @extend_schema(
        tags=["appointments"],
        request=RebookingInput,
        responses={200: OpenApiResponse(AppointmentOutput, description="same_doctor: the moved appointment; other_doctor: the new booking; cancel: the cancelled appointment."), **error_responses(400, 401, 404, 409)},
    )
    def post(self, request, appointment_id):
        appointment = _own_appointment(request, appointment_id)
        data = valid_input(RebookingInput, request.data)
        offer = appointment.rebooking_offers.first()  # the latest: an accepted one answers a repeated click
        if offer is None:
            raise ApplicationError("APPT_009", gettext("This appointment has no rebooking offer."), status_code=404)
        result = services.rebooking_offer_accept(offer=offer, patient=request.user, choice=data["choice"], request=request._request)
        return Response(_output(result))


# --- Clinical notes and follow-up -----------------------------------------------------------------


class FollowUpOutput(serializers.Serializer):
    on = serializers.DateField(help_text="Book from this date.")
    note = serializers.CharField()
    service = ServiceRefOutput()
    appointment = serializers.UUIDField(allow_null=True, help_text="The follow-up booked from this recommendation, if any.")


class ClinicalNoteOutput(serializers.Serializer):
    text = serializers.CharField()
    follow_up = FollowUpOutput(allow_null=True)
    updated_at = serializers.DateTimeField(allow_null=True)


class ClinicalNoteInput(serializers.Serializer):
    text = serializers.CharField(max_length=services.MAX_NOTE_LENGTH, allow_blank=True, trim_whitespace=True)


class FollowUpInput(serializers.Serializer):
    on = serializers.DateField(help_text="The date the patient should book from.")
    note = serializers.CharField(max_length=2000, required=False, allow_blank=True, default="")
    service = serializers.UUIDField(required=False, allow_null=True, default=None, help_text="One of your services; default: the appointment's.")


def _note_output(note) -> dict:
    if note is None:
        return ClinicalNoteOutput({"text": "", "follow_up": None, "updated_at": None}).data
    follow_up = None
    if note.follow_up_on is not None:
        booked = note.follow_up_appointment
        follow_up = {"on": note.follow_up_on, "note": note.follow_up_note, "service": _service_ref(note.follow_up_service), "appointment": booked.public_id if booked else None}
    return ClinicalNoteOutput({"text": note.text, "follow_up": follow_up, "updated_at": note.updated_at}).data


class AppointmentNotesView(APIView):
    @extend_schema(tags=["appointments"], responses={200: ClinicalNoteOutput, **error_responses(401, 403, 404)})
    def get(self, request, appointment_id):
        appointment = _appointment_for(request, appointment_id)
        return Response(_note_output(services.clinical_note_read(appointment=appointment, by=request.user, request=request._request)))

    @extend_schema(tags=["appointments"], request=ClinicalNoteInput, responses={200: ClinicalNoteOutput, **error_responses(400, 401, 403, 404, 409)})
    def put(self, request, appointment_id):
        appointment = _appointment_for(request, appointment_id)
        data = valid_input(ClinicalNoteInput, request.data)
        return Response(_note_output(services.clinical_note_write(appointment=appointment, by=request.user, text=data["text"], request=request._request)))


class FollowUpView(APIView):
    @extend_schema(tags=["appointments"], request=FollowUpInput, responses={200: ClinicalNoteOutput, **error_responses(400, 401, 403, 404, 409)})
    def post(self, request, appointment_id):
        appointment = _appointment_for(request, appointment_id)
        data = valid_input(FollowUpInput, request.data)
        service = None
        if data["service"] is not None:
            service = DoctorService.objects.filter(public_id=data["service"]).first()
            if service is None:
                raise ApplicationError("REQ_001", fields={"service": [gettext("Choose one of your active services.")]})
        note = services.follow_up_recommend(appointment=appointment, by=request.user, on=data["on"], note=data["note"], service=service, request=request._request)
        return Response(_note_output(note))


class FollowUpBookView(APIView):
    @extend_schema(tags=["appointments"], request=None, responses={201: AppointmentOutput, **error_responses(401, 404, 409)})
    def post(self, request, appointment_id):
        appointment = _own_appointment(request, appointment_id)
        hold = services.follow_up_book(appointment=appointment, patient=request.user, request=request._request)
        return Response(_output(hold), status=status.HTTP_201_CREATED)
