"""Appointment pages of the patient and doctor portals: booking, the hold and details page,
cancelling and rescheduling, the lists, and the doctor's week and availability editor.

Every write goes through services.py; a service's ApplicationError comes back as a form error
next to the field it names (or on top of the form)."""

from __future__ import annotations

import uuid
from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.core.paginator import Paginator
from django.db.models import Exists, OuterRef, Q
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.dateformat import format as format_date
from django.utils.translation import gettext, gettext_lazy
from django.utils.translation import gettext as _
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_POST
from waffle import flag_is_active

from accounts.models import User
from consultations.selectors import join_card
from doctors.models import DoctorProfile, DoctorService, format_money
from doctors.views import doctor_required
from medimeet.core import platform
from medimeet.core.api import page_throttled
from medimeet.core.errors import ApplicationError, form_add_service_errors
from medimeet.core.flags import NEW_BOOKING_FLOW
from medimeet.core.roles import staff_can
from payments.selectors import payment_for_appointment, plan_coverage, plan_credit_for

from . import selectors, services
from .calendar import appointments_feed, google_calendar_link, outlook_calendar_link
from .forms import (
    SCHEDULE_FIELD_NAMES,
    AppointmentFilterForm,
    BaseWeeklyHoursFormSet,
    BookPatientForm,
    BookPatientReasonForm,
    CancelForm,
    ClinicalNoteForm,
    EmergencyForm,
    FollowUpForm,
    HoldForm,
    OverrideForm,
    ReasonForm,
    RescheduleForm,
    ScheduleForm,
    SeriesForm,
    StatusForm,
    VacationForm,
    WeeklyHoursFormSet,
)
from .models import Appointment, RebookingOffer

Status = Appointment.Status
BOOKING_DAYS = 14


# --- Helpers --------------------------------------------------------------------------------


def _visible_appointment(request: HttpRequest, appointment_id) -> Appointment:
    qs = Appointment.objects.select_related("doctor__user", "doctor__primary_specialization", "patient", "service")
    if not staff_can(request.user, "appointments.view_appointment"):
        qs = qs.filter(Q(patient=request.user) | Q(doctor__user=request.user))
    appointment = qs.filter(public_id=appointment_id).first()
    if appointment is None:
        raise Http404
    return appointment


def _role(user: User, appointment: Appointment) -> str:
    """How ``user`` takes part in the appointment: its patient, its doctor, or staff."""
    return appointment.party(user) or "staff"


def _viewer_zone(request: HttpRequest) -> ZoneInfo:
    """The signed-in person's zone; anonymous visitors may name one with ?tz=, else UTC."""
    name = request.user.timezone if request.user.is_authenticated else request.GET.get("tz", "UTC")
    try:
        return ZoneInfo(name or "UTC")
    except (ValueError, KeyError):
        return ZoneInfo("UTC")


def _zone_label(tz: ZoneInfo, at: datetime) -> str:
    """"Europe/London (GMT)"; the abbreviation is left out where it is only an offset."""
    abbreviation = at.astimezone(tz).strftime("%Z")
    name = str(tz).replace("_", " ")
    return name if not abbreviation or abbreviation[0] in "+-" or abbreviation == str(tz) else f"{name} ({abbreviation})"


def _error_text(exc: ApplicationError) -> str:
    """A service error as one sentence for a flash message: the first field message, if any."""
    return next(iter(exc.fields.values()))[0] if exc.fields else exc.message


@dataclass(frozen=True)
class SlotChoice:
    """A free slot as the pickers show it."""

    value: str  # ISO 8601 in UTC: what the form posts back
    start: datetime  # in the viewer's zone
    label: str  # "09:00"
    doctor_label: str  # the doctor's local time when it reads differently, else ""

    @property
    def period(self) -> str:
        return "Morning" if self.start.hour < 12 else ("Afternoon" if self.start.hour < 17 else "Evening")


def _slot_choices(starts: list[datetime], viewer_tz: ZoneInfo, doctor_tz: ZoneInfo) -> list[SlotChoice]:
    choices = []
    for start in starts:
        local, theirs = start.astimezone(viewer_tz), start.astimezone(doctor_tz)
        doctor_label = f"{theirs:%H:%M}" if (theirs.hour, theirs.minute) != (local.hour, local.minute) else ""
        choices.append(SlotChoice(start.astimezone(UTC).isoformat(), local, f"{local:%H:%M}", doctor_label))
    return choices


def _by_period(choices: list[SlotChoice]) -> list[tuple[str, list[SlotChoice]]]:
    groups: dict[str, list[SlotChoice]] = {}
    for choice in choices:
        groups.setdefault(choice.period, []).append(choice)
    return list(groups.items())


def _slot_picker(
    *, request: HttpRequest, doctor: DoctorProfile, service: DoctorService, exclude: Appointment | None = None, ignore_notice: bool = False
) -> dict:
    """The day strip (the next two weeks in the viewer's zone, days without a free slot marked)
    and the free slots of the chosen day (?date=, else the first day with a slot)."""
    viewer_tz = _viewer_zone(request)
    doctor_tz = ZoneInfo(selectors.schedule_for(doctor).timezone)
    now = timezone.now()
    today = now.astimezone(viewer_tz).date()
    window_start = datetime.combine(today, time(0), tzinfo=viewer_tz)
    window_end = datetime.combine(today + timedelta(days=BOOKING_DAYS), time(0), tzinfo=viewer_tz)
    slots = selectors.free_slots(
        doctor=doctor, service=service, window_start=window_start.astimezone(UTC), window_end=window_end.astimezone(UTC), exclude=exclude, ignore_notice=ignore_notice
    )
    by_day: dict[date, list[datetime]] = defaultdict(list)
    for slot in slots:
        by_day[slot.start.astimezone(viewer_tz).date()].append(slot.start)
    try:
        chosen = date.fromisoformat(request.GET.get("date", ""))
    except ValueError:
        chosen = None
    days = [today + timedelta(days=offset) for offset in range(BOOKING_DAYS)]
    if chosen not in days:
        chosen = next((day for day in days if by_day[day]), today)
    choices = _slot_choices(by_day[chosen], viewer_tz, doctor_tz)
    return {
        "days": [{"date": day, "count": len(by_day[day]), "selected": day == chosen, "is_today": day == today} for day in days],
        "chosen_day": chosen,
        "slot_groups": _by_period(choices),
        "first_free": next((day for day in days if by_day[day]), None),
        "window_start": window_start,  # the days shown, for the live updates (static/js/availability.js)
        "window_end": window_end,
        "viewer_zone": _zone_label(viewer_tz, now),
        "doctor_zone": _zone_label(doctor_tz, now),
        "zones_differ": any(choice.doctor_label for choice in choices) or now.astimezone(viewer_tz).utcoffset() != now.astimezone(doctor_tz).utcoffset(),
    }


def _fragment_asked(request: HttpRequest) -> bool:
    """Whether static/js/availability.js asks a page with a live slot picker for the picker alone."""
    return request.method == "GET" and request.headers.get(SLOT_PICKER_FRAGMENT_HEADER) == "slot-picker"


def _slot_picker_fragment(request: HttpRequest, *, day_query: str, **picker) -> HttpResponse:
    """The day strip and the day's times only (includes/slot_picker.html), as the page around
    them renders them: the live updates re-render just that part."""
    return render(request, "appointments/includes/slot_picker.html", {**_slot_picker(request=request, **picker), "day_query": day_query})


def _suggestions(exc: ApplicationError, viewer_tz: ZoneInfo, doctor_tz: ZoneInfo) -> list[SlotChoice]:
    """APPT_002 carries the next free slots; show them as one-click choices."""
    starts = []
    for item in exc.extra.get("next_free_slots", []):
        try:
            starts.append(datetime.fromisoformat(item["start"]))
        except (KeyError, TypeError, ValueError):
            continue
    return _slot_choices(starts, viewer_tz, doctor_tz)


def _policy_sentences(policy: list[dict]) -> list[str]:
    """Cancellation tiers as sentences: "Cancel 24 h or more before: 100 % refund", …"""
    tiers = sorted(policy, key=lambda tier: tier["min_hours"], reverse=True)
    sentences = []

    def refund(percent: int) -> str:
        return _("%(percent)s %% refund") % {"percent": percent} if percent else _("no refund")

    for index, tier in enumerate(tiers):
        values = {"refund": refund(tier["refund_percent"]), "hours": f"{tier['min_hours']:g}"}
        if tier["min_hours"] > 0:
            sentences.append(_("Cancel %(hours)s h or more before: %(refund)s") % values)
        elif index:
            sentences.append(_("Cancel less than %(hours)s h before: %(refund)s") % {**values, "hours": f"{tiers[index - 1]['min_hours']:g}"})
        else:
            sentences.append(_("Cancel any time before: %(refund)s") % values)
    if tiers and tiers[-1]["min_hours"] > 0:
        sentences.append(_("Cancel less than %(hours)s h before: %(refund)s") % {"hours": f"{tiers[-1]['min_hours']:g}", "refund": _("no refund")})
    return sentences


def _doctor_local(appointment: Appointment, viewer_tz: ZoneInfo) -> str:
    """The appointment's start in the doctor's zone ("14:30 on Tue 3 Nov") when it reads
    differently from the viewer's, else ""."""
    doctor_tz = ZoneInfo(selectors.schedule_for(appointment.doctor).timezone)
    theirs, mine = appointment.start.astimezone(doctor_tz), appointment.start.astimezone(viewer_tz)
    return format_date(theirs, gettext_lazy("H:i \\o\\n D j M")) if theirs.replace(tzinfo=None) != mine.replace(tzinfo=None) else ""


EVENT_LABELS = {
    "held": gettext_lazy("Time held"),
    "pending_payment": gettext_lazy("Details sent, awaiting payment"),
    "confirmed": gettext_lazy("Confirmed"),
    "in_progress": gettext_lazy("Consultation started"),
    "completed": gettext_lazy("Completed"),
    "cancelled": gettext_lazy("Cancelled"),
    "no_show": gettext_lazy("Marked as no-show"),
    "expired": gettext_lazy("Hold expired"),
}


def _timeline(appointment: Appointment, viewer: User, viewer_tz: ZoneInfo) -> list[dict]:
    """The appointment's events in words, newest last."""
    rows = []
    for event in appointment.events.select_related("by"):
        label, note = EVENT_LABELS.get(event.to_status, event.to_status), event.note
        if event.from_status == event.to_status == Status.CONFIRMED and note.startswith("Rescheduled to "):
            label, note = _("Rescheduled"), ""
            try:
                moved = datetime.fromisoformat(event.note.removeprefix("Rescheduled to "))
                note = _("New time: %(when)s") % {"when": format_date(moved.astimezone(viewer_tz), "l j F, H:i")}
            except ValueError:
                pass
        elif event.from_status == Status.PENDING_PAYMENT and event.to_status == Status.CONFIRMED:
            label, note = _("Paid and confirmed"), ""
        elif event.to_status == Status.EXPIRED:
            note = ""
        who = _("you") if event.by_id == viewer.pk else (event.by.display_name if event.by else "MediMeet")
        rows.append({"status": event.to_status, "label": label, "at": event.created_at, "who": who, "note": note})
    return rows


def _status_choices(appointment: Appointment) -> list[tuple[str, str]]:
    """The attendance buttons a doctor sees: the moves the appointment allows now."""
    labels = {"in_progress": _("Mark in progress"), "completed": _("Mark completed"), "no_show": _("Mark no-show")}
    started = appointment.start <= timezone.now()
    return [(status, label) for status, label in labels.items() if appointment.can_transition_to(status) and (status != "no_show" or started)]


# --- Patient: booking -----------------------------------------------------------------------


ORDINALS = [
    gettext_lazy("first"), gettext_lazy("second"), gettext_lazy("third"), gettext_lazy("fourth"), gettext_lazy("fifth"), gettext_lazy("sixth"),
    gettext_lazy("seventh"), gettext_lazy("eighth"), gettext_lazy("ninth"), gettext_lazy("tenth"), gettext_lazy("eleventh"), gettext_lazy("twelfth"),
]  # fmt: skip
DAY_AT_TIME = gettext_lazy("l j F \\a\\t H:i")  # "Tuesday 17 November at 09:00"; a date format, translated per language
INTERVAL_WORDS = {7: gettext_lazy("every week"), 14: gettext_lazy("every two weeks"), 28: gettext_lazy("every four weeks")}


def _book_series(
    request: HttpRequest, *, service: DoctorService, first_start: datetime, options: dict, viewer_tz: ZoneInfo, key: str
) -> tuple[list[Appointment], str]:
    """Book the recurring series the booking page asked for: the booked appointments and a
    success message, or nothing and the error in the patient's words (which occurrence is taken,
    in their zone)."""
    interval, occurrences = options["repeat"], options["occurrences"]
    try:
        booked = services.appointment_series_book(
            patient=request.user, service=service, first_start=first_start, occurrences=occurrences, interval_days=interval, reason=options["reason"],
            idempotency_key=key, request=request,
        )  # fmt: skip
    except ApplicationError as exc:
        number = exc.extra.get("occurrence")
        if exc.code == "APPT_002" and number:
            taken = format_date((first_start + timedelta(days=interval * (number - 1))).astimezone(viewer_tz), DAY_AT_TIME)
            return [], _("The %(ordinal)s appointment, %(when)s, is not free, so nothing was booked. Choose another first time, or fewer appointments.") % {"ordinal": ORDINALS[number - 1], "when": taken}
        return [], _error_text(exc)
    first = format_date(first_start.astimezone(viewer_tz), DAY_AT_TIME)
    unpaid = sum(1 for appointment in booked if appointment.status == Status.PENDING_PAYMENT)
    values = {"count": len(booked), "interval": INTERVAL_WORDS[interval], "first": first, "unpaid": unpaid}
    if unpaid:
        messages.success(request, _("%(count)d appointments booked, %(interval)s from %(first)s. Each one is confirmed once its fee is paid (%(unpaid)d to pay).") % values)
    else:
        messages.success(request, _("%(count)d appointments booked, %(interval)s from %(first)s. They are all confirmed.") % values)
    return booked, ""


SLOT_PICKER_FRAGMENT_HEADER = "X-MediMeet-Fragment"


@never_cache
@login_required
@page_throttled("booking", methods=("POST",))
def book(request: HttpRequest, slug: str) -> HttpResponse:
    doctor = DoctorProfile.objects.listed().select_related("user", "primary_specialization").filter(slug=slug).first()
    if doctor is None:
        raise Http404
    if request.user.role != User.Role.PATIENT:
        messages.info(request, _("Appointments are booked from a patient account."))
        return redirect("doctors:detail", slug=doctor.slug)
    offered = list(doctor.services.filter(is_active=True).order_by("price_minor", "name"))
    chosen_id = request.POST.get("service") or request.GET.get("service")
    service = next((s for s in offered if str(s.public_id) == chosen_id), offered[0] if offered else None)
    if service is not None and _fragment_asked(request):
        return _slot_picker_fragment(request, day_query=f"service={service.public_id}&", doctor=doctor, service=service)
    viewer_tz = _viewer_zone(request)
    schedule = selectors.schedule_for(doctor)
    doctor_tz = ZoneInfo(schedule.timezone)
    # Experiment (flag new-booking-flow, sticky per browser by waffle's cookie): the reason is
    # asked first and pressing a time holds it and confirms the details in one step.
    one_step = bool(flag_is_active(request, NEW_BOOKING_FLOW))
    reason = (request.POST.get("reason") or "").strip()[:2000] if one_step else ""
    error, suggestions = "", []
    series_form = SeriesForm(request.POST if request.method == "POST" else None)
    if request.method == "POST" and service is not None:
        form = HoldForm(request.POST)
        if form.is_valid() and str(form.cleaned_data["service"]) == str(service.public_id):
            start = form.cleaned_data["start"]
            if one_step and not reason and not series_form.data.get("repeat"):
                error = _("Tell the doctor why you are booking, then choose a time.")
            elif not series_form.is_valid():
                error = _("Check the repeat options below, then choose the first time again.")
            elif series_form.cleaned_data["repeat"]:
                key = f"{form.cleaned_data['key']}:series:{start:%Y%m%dT%H%M}"  # a double click books the series once
                booked, error = _book_series(request, service=service, first_start=start, options=series_form.cleaned_data, viewer_tz=viewer_tz, key=key)
                if booked:
                    return redirect("appointments:list")
            else:
                try:
                    # One key per page render and slot: a double click or a resent form holds the
                    # slot once, and choosing another slot after "Back" is a new request.
                    appointment = services.appointment_hold(
                        patient=request.user, service=service, start=start, idempotency_key=f"{form.cleaned_data['key']}:{start:%Y%m%dT%H%M}", request=request, reason=reason
                    )
                except ApplicationError as exc:
                    error = exc.message
                    if exc.code == "APPT_002":
                        suggestions = _suggestions(exc, viewer_tz, doctor_tz)
                else:
                    if appointment.status == Status.PENDING_PAYMENT:  # one step: straight to paying
                        return redirect("payments:pay", appointment_id=appointment.public_id)
                    return redirect("appointments:detail", appointment_id=appointment.public_id)
        else:
            error = _("Choose one of the times shown.")
    context = {
        "doctor": doctor,
        "offered": offered,
        "service": service,
        "key": uuid.uuid4().hex,
        "hold_minutes": platform.hold_minutes(),
        "waitlist_minutes": settings.WAITLIST_OFFER_MINUTES,
        "error": error,
        "suggestions": suggestions,
        "series_form": series_form,
        "one_step": one_step,
        "reason": reason,
        "live_availability": settings.LIVE_AVAILABILITY_ON_PAGES,
        "policy": _policy_sentences(schedule.cancellation_policy or platform.cancellation_policy_default()) if one_step else [],
        "plan_coverage": plan_coverage(patient=request.user, doctor=doctor),
        "current_hold": Appointment.objects.filter(patient=request.user, doctor=doctor, status=Status.HELD, hold_expires_at__gt=timezone.now())
        .exclude(Exists(selectors.open_proposals_of(OuterRef("pk"))))
        .select_related("service")
        .first(),
    }
    if service is not None:
        context.update(_slot_picker(request=request, doctor=doctor, service=service), day_query=f"service={service.public_id}&")
    return render(request, "appointments/book.html", context, status=409 if suggestions else 200)


@login_required
@require_POST
def waitlist_join(request: HttpRequest, slug: str) -> HttpResponse:
    doctor = DoctorProfile.objects.listed().filter(slug=slug).first()
    service = DoctorService.objects.filter(doctor=doctor, public_id=request.POST.get("service"), is_active=True).first() if doctor else None
    if service is None:
        raise Http404
    try:
        first_day = date.fromisoformat(request.POST.get("first_day", ""))
        last_day = date.fromisoformat(request.POST.get("last_day", ""))
        services.waitlist_join(patient=request.user, service=service, first_day=first_day, last_day=last_day, request=request)
    except ValueError:
        messages.error(request, _("Choose the first and last day you could come."))
    except ApplicationError as exc:
        messages.error(request, _error_text(exc))
    else:
        messages.success(request, _("You are on the waitlist. We will email you as soon as a time frees up."))
    return redirect(f"{reverse('appointments:book', args=[slug])}?service={service.public_id}")


# --- The appointment page -------------------------------------------------------------------


def _rebooking_context(appointment: Appointment, role: str) -> dict:
    """The vacation rebooking offer on the patient's page: the proposals still held for them."""
    if role != "patient" or appointment.status not in services.REBOOKABLE_STATUSES:
        return {}
    offer = selectors.rebooking_offer_open(appointment=appointment)
    if offer is None:
        return {}
    proposals = [
        {
            "choice": choice,
            "hold": hold,
            "doctor": hold.doctor,
            "price": format_money(hold.price_minor, hold.currency),
            "costs_more": (hold.currency, hold.price_minor) != (appointment.currency, appointment.price_minor),
        }
        for choice, hold in ((RebookingOffer.Choice.SAME_DOCTOR, offer.same_doctor_hold), (RebookingOffer.Choice.OTHER_DOCTOR, offer.other_doctor_hold))
        if hold is not None and hold.is_hold_live
    ]
    return {"offer": offer, "proposals": proposals} if proposals else {}


def _clinical_context(request: HttpRequest, appointment: Appointment, role: str, notes_form: ClinicalNoteForm | None, follow_up_form: FollowUpForm | None) -> dict:
    """Notes and the follow-up recommendation: the form for the doctor, the reading for the
    patient (each read audited), nothing clinical for staff."""
    if appointment.status not in services.NOTE_STATUSES:
        return {}
    if role == "staff":
        return {"clinical_withheld": True}
    note = services.clinical_note_read(appointment=appointment, by=request.user, request=request)
    follow_up = note.follow_up_appointment if note is not None else None
    context = {
        "note": note,
        "follow_up_booked": follow_up if follow_up is not None and (follow_up.status in (Status.CONFIRMED, Status.IN_PROGRESS, Status.COMPLETED) or follow_up.is_hold_live) else None,
    }
    if role == "doctor":
        offered = DoctorService.objects.filter(doctor=appointment.doctor, is_active=True).order_by("price_minor", "name")
        default_day = timezone.now().astimezone(_viewer_zone(request)).date() + timedelta(days=14)
        context["notes_form"] = notes_form or ClinicalNoteForm(initial={"text": note.text if note else ""})
        context["follow_up_form"] = follow_up_form or FollowUpForm(
            services=offered,
            initial={
                "on": (note.follow_up_on if note and note.follow_up_on else default_day),
                "service": note.follow_up_service if note and note.follow_up_service else appointment.service,
                "note": note.follow_up_note if note else "",
            },
        )
    return context


def _detail_context(
    request: HttpRequest,
    appointment: Appointment,
    role: str,
    reason_form: ReasonForm | None = None,
    notes_form: ClinicalNoteForm | None = None,
    follow_up_form: FollowUpForm | None = None,
) -> dict:
    viewer_tz = _viewer_zone(request)
    quote = services.cancellation_quote(appointment=appointment, by_role=role)
    schedule = selectors.schedule_for(appointment.doctor)
    now = timezone.now()
    is_confirmed = appointment.status == Status.CONFIRMED
    reschedule_blocked = services.appointment_reschedule_refusal(appointment=appointment, by=request.user, schedule=schedule, now=now) if is_confirmed else ""
    return {
        "appointment": appointment,
        "role": role,
        "events": _timeline(appointment, request.user, viewer_tz),
        "hold_live": appointment.is_hold_live,
        "hold_minutes": platform.hold_minutes(),
        "hold_expires_iso": appointment.hold_expires_at.isoformat(timespec="milliseconds") if appointment.hold_expires_at else "",
        "now_iso": now.isoformat(timespec="milliseconds"),
        "price": format_money(appointment.price_minor, appointment.currency),
        "plan_credit": plan_credit_for(appointment) if appointment.price_minor == 0 else None,
        "quote": quote,
        "policy": _policy_sentences(quote.policy),
        "viewer_zone": _zone_label(viewer_tz, appointment.start),
        "doctor_local": _doctor_local(appointment, viewer_tz),
        "doctor_zone": _zone_label(ZoneInfo(schedule.timezone), appointment.start),
        "reason_form": reason_form or ReasonForm(),
        "can_cancel": quote.allowed and appointment.status in (Status.PENDING_PAYMENT, Status.CONFIRMED),
        "can_reschedule": is_confirmed and not reschedule_blocked and appointment.start > now,
        "reschedule_blocked": reschedule_blocked,
        "max_reschedules": schedule.max_reschedules,
        "status_choices": _status_choices(appointment) if role in ("doctor", "staff") else [],
        "has_calendar": appointment.status in (Status.CONFIRMED, Status.IN_PROGRESS, Status.CANCELLED),
        "payment": payment_for_appointment(appointment=appointment) if role in ("patient", "staff") else None,
        "google_calendar_url": google_calendar_link(appointment),
        "outlook_calendar_url": outlook_calendar_link(appointment),
        "video_room": join_card(appointment=appointment, user=request.user),
        **_rebooking_context(appointment, role),
        **_clinical_context(request, appointment, role, notes_form, follow_up_form),
    }


@never_cache
@login_required
def detail(request: HttpRequest, appointment_id) -> HttpResponse:
    """The appointment: while held, the patient's last step (reason for the visit); then its
    details, history and actions."""
    appointment = _visible_appointment(request, appointment_id)
    services.holds_release_expired(patient=appointment.patient)  # a lapsed hold reads as expired
    appointment.refresh_from_db()
    role = _role(request.user, appointment)
    proposed_in = selectors.open_proposals_of(appointment).select_related("appointment").first()
    if proposed_in is not None and role == "patient":  # a proposed time is chosen on the original's page
        return redirect("appointments:detail", appointment_id=proposed_in.appointment.public_id)
    form = ReasonForm(request.POST or None)
    if request.method == "POST":
        if role != "patient":
            raise Http404
        if form.is_valid():
            try:
                appointment = services.appointment_confirm_details(appointment=appointment, patient=request.user, reason=form.cleaned_data["reason"], request=request)
            except ApplicationError as exc:
                form_add_service_errors(form, exc)
            else:
                if appointment.status == Status.CONFIRMED:
                    messages.success(request, _("Your appointment is confirmed."))
                    return redirect("appointments:detail", appointment_id=appointment.public_id)
                messages.success(request, _("Thank you. Your details are saved and the time stays held for you while you pay."))
                return redirect("payments:pay", appointment_id=appointment.public_id)
    return render(request, "appointments/detail.html", _detail_context(request, appointment, role, form))


@never_cache
@login_required
def cancel(request: HttpRequest, appointment_id) -> HttpResponse:
    """What cancelling would refund, then the cancellation with a reason."""
    appointment = _visible_appointment(request, appointment_id)
    role = _role(request.user, appointment)
    quote = services.cancellation_quote(appointment=appointment, by_role=role)
    if not quote.allowed or appointment.status == Status.HELD:
        messages.info(request, _("A %(status)s appointment cannot be cancelled.") % {"status": appointment.get_status_display().lower()})
        return redirect("appointments:detail", appointment_id=appointment.public_id)
    form = CancelForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            appointment = services.appointment_cancel(appointment=appointment, by=request.user, reason=form.cleaned_data["reason"], request=request)
        except ApplicationError as exc:
            form_add_service_errors(form, exc)
        else:
            if appointment.refund_percent:
                messages.success(request, _("The appointment is cancelled. A refund of %(percent)s %% is on its way.") % {"percent": appointment.refund_percent})
            else:
                messages.success(request, _("The appointment is cancelled."))
            return redirect("appointments:detail", appointment_id=appointment.public_id)
    paid = appointment.status == Status.CONFIRMED
    return render(
        request,
        "appointments/cancel.html",
        {
            "appointment": appointment,
            "role": role,
            "form": form,
            "quote": quote,
            "paid": paid,
            "price": format_money(appointment.price_minor, appointment.currency),
            "refund_amount": format_money(appointment.price_minor * quote.refund_percent // 100, appointment.currency) if paid else "",
            "policy": _policy_sentences(quote.policy),
        },
    )


@never_cache
@login_required
def reschedule(request: HttpRequest, appointment_id) -> HttpResponse:
    """Choose another free slot of the same doctor and service; the old time is kept until the
    new one is secured (services.appointment_reschedule)."""
    appointment = _visible_appointment(request, appointment_id)
    role = _role(request.user, appointment)
    if appointment.status != Status.CONFIRMED:
        messages.info(request, _("Only confirmed appointments can be rescheduled."))
        return redirect("appointments:detail", appointment_id=appointment.public_id)
    picker = {"doctor": appointment.doctor, "service": appointment.service, "exclude": appointment, "ignore_notice": role == "doctor"}
    if _fragment_asked(request):
        return _slot_picker_fragment(request, day_query="", **picker)
    viewer_tz = _viewer_zone(request)
    doctor_tz = ZoneInfo(selectors.schedule_for(appointment.doctor).timezone)
    error, suggestions = "", []
    if request.method == "POST":
        form = RescheduleForm(request.POST)
        if form.is_valid():
            try:
                appointment = services.appointment_reschedule(appointment=appointment, by=request.user, start=form.cleaned_data["start"], request=request)
            except ApplicationError as exc:
                error = exc.message
                if exc.code == "APPT_002":
                    suggestions = _suggestions(exc, viewer_tz, doctor_tz)
            else:
                messages.success(request, _("Your appointment is moved to %(when)s.") % {"when": format_date(appointment.start.astimezone(viewer_tz), "l j F, H:i")})
                return redirect("appointments:detail", appointment_id=appointment.public_id)
        else:
            error = _("Choose one of the times shown.")
    context = {
        "appointment": appointment,
        "role": role,
        "doctor": appointment.doctor,
        "service": appointment.service,
        "error": error,
        "suggestions": suggestions,
        "live_availability": settings.LIVE_AVAILABILITY_ON_PAGES,
        **_slot_picker(request=request, **picker),
    }
    return render(request, "appointments/reschedule.html", context, status=409 if suggestions else 200)


@require_POST
@login_required
def set_status(request: HttpRequest, appointment_id) -> HttpResponse:
    """The doctor records attendance: in progress, completed or no-show."""
    appointment = _visible_appointment(request, appointment_id)
    if _role(request.user, appointment) == "patient":
        raise Http404
    form = StatusForm(request.POST)
    if form.is_valid():
        try:
            appointment = services.appointment_set_status(appointment=appointment, by=request.user, status=form.cleaned_data["status"], request=request)
        except ApplicationError as exc:
            messages.error(request, exc.message)
        else:
            messages.success(request, _("Marked as %(status)s.") % {"status": appointment.get_status_display().lower()})
    else:
        messages.error(request, _("Choose a status."))
    return redirect("appointments:detail", appointment_id=appointment.public_id)


# --- Vacation rebooking, notes and follow-up -------------------------------------------------


@require_POST
@login_required
def rebooking_accept(request: HttpRequest, appointment_id) -> HttpResponse:
    """The patient's one click on a proposal (or on cancelling) while their doctor is away."""
    appointment = _visible_appointment(request, appointment_id)
    offer = appointment.rebooking_offers.first()
    if _role(request.user, appointment) != "patient" or offer is None:
        raise Http404
    choice = request.POST.get("choice", "")
    try:
        result = services.rebooking_offer_accept(offer=offer, patient=request.user, choice=choice, request=request)
    except ApplicationError as exc:
        messages.error(request, _error_text(exc))
        return redirect("appointments:detail", appointment_id=appointment.public_id)
    when = format_date(result.start.astimezone(_viewer_zone(request)), DAY_AT_TIME)
    refunded = appointment.status == Status.CONFIRMED
    values = {"doctor": result.doctor.display_name, "when": when, "previous_doctor": appointment.doctor.display_name}
    if choice == RebookingOffer.Choice.SAME_DOCTOR:
        if result.status == Status.CONFIRMED:
            messages.success(request, _("Your appointment with %(doctor)s is moved to %(when)s. Nothing more to pay.") % values)
        else:
            messages.success(request, _("Your appointment with %(doctor)s is moved to %(when)s.") % values)
    elif choice == RebookingOffer.Choice.OTHER_DOCTOR:
        booked = result.status == Status.CONFIRMED
        if refunded:
            message = (
                _("Your appointment with %(previous_doctor)s is cancelled with a full refund, and %(when)s with %(doctor)s is yours. You are booked.")
                if booked
                else _("Your appointment with %(previous_doctor)s is cancelled with a full refund, and %(when)s with %(doctor)s is yours. Pay the fee below to confirm it.")
            )
        else:
            message = (
                _("Your appointment with %(previous_doctor)s is cancelled, and %(when)s with %(doctor)s is yours. You are booked.")
                if booked
                else _("Your appointment with %(previous_doctor)s is cancelled, and %(when)s with %(doctor)s is yours. Pay the fee below to confirm it.")
            )
        messages.success(request, message % values)
    else:
        messages.success(request, _("The appointment is cancelled with a full refund.") if refunded else _("The appointment is cancelled."))
    return redirect("appointments:detail", appointment_id=result.public_id)


def _doctor_section_post(request: HttpRequest, appointment_id, *, make_form, save, section: str, form_key: str) -> HttpResponse:
    """A doctor's form on the appointment page (notes, follow-up): validate, call the service
    (``save`` returns the success message), come back to the section; errors re-render the page."""
    appointment = _visible_appointment(request, appointment_id)
    role = _role(request.user, appointment)
    if role != "doctor":
        raise Http404
    form = make_form(appointment)
    if form.is_valid():
        try:
            message = save(appointment, form.cleaned_data)
        except ApplicationError as exc:
            form_add_service_errors(form, exc)
        else:
            messages.success(request, message)
            return redirect(reverse("appointments:detail", args=[appointment.public_id]) + f"#{section}")
    return render(request, "appointments/detail.html", _detail_context(request, appointment, role, **{form_key: form}), status=400)


@require_POST
@login_required
def clinical_note(request: HttpRequest, appointment_id) -> HttpResponse:
    """The doctor saves the consultation notes."""

    def save(appointment: Appointment, data: dict) -> str:
        services.clinical_note_write(appointment=appointment, by=request.user, text=data["text"], request=request)
        return _("Notes saved. Only you and the patient can read them.")

    return _doctor_section_post(request, appointment_id, make_form=lambda _: ClinicalNoteForm(request.POST), save=save, section="notes-title", form_key="notes_form")


@require_POST
@login_required
def follow_up(request: HttpRequest, appointment_id) -> HttpResponse:
    """The doctor recommends a follow-up; the patient is emailed a one-click booking link."""

    def save(appointment: Appointment, data: dict) -> str:
        services.follow_up_recommend(appointment=appointment, by=request.user, on=data["on"], note=data["note"], service=data["service"], request=request)
        return _("Follow-up recommended from %(day)s. %(patient)s has been emailed a link to book it.") % {"day": format_date(data["on"], "l j F Y"), "patient": appointment.patient.display_name}

    def make_form(appointment: Appointment) -> FollowUpForm:
        return FollowUpForm(request.POST, services=DoctorService.objects.filter(doctor=appointment.doctor, is_active=True))

    return _doctor_section_post(request, appointment_id, make_form=make_form, save=save, section="follow-up-title", form_key="follow_up_form")


@require_POST
@login_required
def follow_up_book(request: HttpRequest, appointment_id) -> HttpResponse:
    """"Book your follow-up": one click holds the first free time and opens the hold page."""
    appointment = _visible_appointment(request, appointment_id)
    if _role(request.user, appointment) != "patient":
        raise Http404
    try:
        hold = services.follow_up_book(appointment=appointment, patient=request.user, request=request)
    except ApplicationError as exc:
        messages.error(request, _error_text(exc))
        return redirect("appointments:detail", appointment_id=appointment.public_id)
    return redirect("appointments:detail", appointment_id=hold.public_id)


# --- Lists ----------------------------------------------------------------------------------


@login_required
def my_appointments(request: HttpRequest) -> HttpResponse:
    role = "doctor" if request.user.role == User.Role.DOCTOR else "patient"
    if role == "doctor" and hasattr(request.user, "doctor_profile"):
        services.holds_release_expired(doctor=request.user.doctor_profile)
    else:
        services.holds_release_expired(patient=request.user)
    tab = "past" if request.GET.get("tab") == "past" else "upcoming"
    form = AppointmentFilterForm(request.GET or None)
    status, start, end = "", None, None
    viewer_tz = _viewer_zone(request)
    if form.is_bound and form.is_valid():
        status = form.cleaned_data["status"] or ""
        if form.cleaned_data["start_date"]:
            start = datetime.combine(form.cleaned_data["start_date"], time(0), tzinfo=viewer_tz)
        if form.cleaned_data["end_date"]:
            end = datetime.combine(form.cleaned_data["end_date"] + timedelta(days=1), time(0), tzinfo=viewer_tz)
    appointments = selectors.appointments_for(user=request.user, role=role, status=status, start=start, end=end)
    if role == "doctor":
        appointments = appointments.exclude(status=Status.HELD)  # a patient still choosing is not a booking yet
    now = timezone.now()
    appointments = appointments.filter(end__gt=now) if tab == "upcoming" else appointments.filter(end__lte=now).order_by("-start")
    page = Paginator(appointments, 20).get_page(request.GET.get("page"))
    query = request.GET.copy()
    query.pop("page", None)
    query.pop("tab", None)
    return render(
        request,
        "appointments/list.html",
        {
            "page": page,
            "appointments": page.object_list,
            "role": role,
            "tab": tab,
            "form": form,
            "filtered": bool(status or start or end),
            "query": query.urlencode(),
            "paging_query": "&".join(part for part in (query.urlencode(), f"tab={tab}") if part),
            "viewer_zone": _zone_label(viewer_tz, now),
            "feed": services.calendar_feed_get(user=request.user),
        },
    )


# --- Doctor portal: week and availability ---------------------------------------------------


@doctor_required
def schedule(request: HttpRequest, doctor: DoctorProfile) -> HttpResponse:
    """A week of the doctor's appointments (Monday first) in their schedule's zone, with the
    working hours of each day."""
    doctor_schedule = selectors.schedule_for(doctor)
    tz = ZoneInfo(doctor_schedule.timezone)
    today = timezone.now().astimezone(tz).date()
    try:
        week_of = date.fromisoformat(request.GET.get("week", ""))
    except ValueError:
        week_of = today
    monday = week_of - timedelta(days=week_of.weekday())
    start = datetime.combine(monday, time(0), tzinfo=tz)
    end = datetime.combine(monday + timedelta(days=7), time(0), tzinfo=tz)
    appointments = selectors.appointments_for(user=request.user, role="doctor", start=start, end=end).exclude(status=Status.HELD)
    rules = selectors.load_schedule_data(doctor=doctor, window_start=start.astimezone(UTC), window_end=end.astimezone(UTC))
    by_day: dict[date, list[Appointment]] = defaultdict(list)
    for appointment in appointments:
        by_day[appointment.start.astimezone(tz).date()].append(appointment)
    days = []
    for offset in range(7):
        day = monday + timedelta(days=offset)
        ranges = selectors.working_ranges(day=day, tz=tz, weekly=rules.weekly, overrides=rules.overrides, holiday=day in rules.holidays)
        closed = day in rules.holidays or any(o.date == day and o.is_closed for o in rules.overrides)
        days.append(
            {
                "date": day,
                "is_today": day == today,
                "hours": [(r.start.astimezone(tz), r.end.astimezone(tz)) for r in ranges],
                "closed": closed,
                "special": any(o.date == day and not o.is_closed for o in rules.overrides),
                "appointments": by_day[day],
            }
        )
    return render(
        request,
        "appointments/schedule.html",
        {
            "doctor": doctor,
            "days": days,
            "monday": monday,
            "sunday": monday + timedelta(days=6),
            "previous_week": monday - timedelta(days=7),
            "next_week": monday + timedelta(days=7),
            "is_this_week": monday <= today < monday + timedelta(days=7),
            "schedule_zone": doctor_schedule.timezone,
            "zone_label": _zone_label(tz, start),
            "total": sum(len(day["appointments"]) for day in days),
        },
    )


@never_cache
@doctor_required
def book_patient(request: HttpRequest, doctor: DoctorProfile) -> HttpResponse:
    """The doctor books one of their own patients: whom and which service (GET), then the
    reason and a free time, their own minimum notice not applying (POST)."""
    offered = DoctorService.objects.filter(doctor=doctor, is_active=True).order_by("price_minor", "name")
    form = BookPatientForm(request.GET if "patient" in request.GET else None, services=offered)
    patient = None
    if form.is_bound and form.is_valid():
        patient = User.objects.filter(email=form.cleaned_data["patient"].lower(), role=User.Role.PATIENT).first()
        if patient is None or not selectors.is_patient_of(doctor=doctor, patient=patient):
            # One message whether or not the address has an account: the page reveals nothing.
            form.add_error("patient", "None of your patients has this email address. Check it, or ask the patient to book themselves.")
            patient = None
    context: dict = {"doctor": doctor, "form": form, "offered": offered, "my_patients": selectors.patients_of(doctor=doctor), "patient": patient}
    if patient is not None:
        service = form.cleaned_data["service"]
        query = urlencode({"patient": patient.email, "service": service.public_id})
        if _fragment_asked(request):
            return _slot_picker_fragment(request, day_query=f"{query}&", doctor=doctor, service=service, ignore_notice=True)
        reason_form = BookPatientReasonForm(request.POST or None)
        error, suggestions = "", []
        viewer_tz = _viewer_zone(request)
        if request.method == "POST" and reason_form.is_valid():
            start = reason_form.cleaned_data["start"]
            try:
                if start is None:
                    raise ApplicationError("REQ_001", gettext("Choose one of the times shown."))
                appointment = services.appointment_book_by_doctor(doctor_user=request.user, patient=patient, service=service, start=start, reason=reason_form.cleaned_data["reason"], request=request)
            except ApplicationError as exc:
                error = _error_text(exc)
                if exc.code == "APPT_002":
                    suggestions = _suggestions(exc, viewer_tz, ZoneInfo(selectors.schedule_for(doctor).timezone))
            else:
                messages.success(request, _("%(patient)s is booked for %(when)s and has been emailed.") % {"patient": patient.display_name, "when": format_date(appointment.start.astimezone(viewer_tz), DAY_AT_TIME)})
                return redirect("appointments:detail", appointment_id=appointment.public_id)
        context.update(
            service=service, reason_form=reason_form, error=error, suggestions=suggestions, query=query, day_query=f"{query}&",
            live_availability=settings.LIVE_AVAILABILITY_ON_PAGES, **_slot_picker(request=request, doctor=doctor, service=service, ignore_notice=True),
        )
    return render(request, "appointments/book_patient.html", context, status=409 if patient is not None and context.get("suggestions") else 200)


@doctor_required
def availability(request: HttpRequest, doctor: DoctorProfile) -> HttpResponse:
    """Booking rules and weekly hours (one form), and date overrides (another)."""
    doctor_schedule = selectors.schedule_for(doctor)
    today = timezone.now().astimezone(ZoneInfo(doctor_schedule.timezone)).date()
    action = request.POST.get("form") if request.method == "POST" else None
    schedule_form = ScheduleForm(request.POST if action == "schedule" else None, initial=ScheduleForm.initial_for(doctor_schedule))
    hours = WeeklyHoursFormSet(request.POST if action == "schedule" else None, prefix="hours", initial=BaseWeeklyHoursFormSet.initial_for(doctor_schedule))
    override_form = OverrideForm(request.POST if action == "override" else None, today=today)
    vacation_form = VacationForm(request.POST if action == "vacation" else None)
    emergency_form = EmergencyForm(request.POST if action == "emergency" else None)

    if action == "vacation" and vacation_form.is_valid():
        data = vacation_form.cleaned_data
        try:
            affected = services.doctor_vacation_set(doctor=doctor, first_day=data["first_day"], last_day=data["last_day"], note=data["note"], by=request.user, request=request)
        except ApplicationError as exc:
            form_add_service_errors(vacation_form, exc)
        else:
            messages.success(request, _("Vacation set. %(count)d booked patient(s) have been told and can move or cancel for free.") % {"count": len(affected)})
            return redirect("appointments:availability")

    if action == "emergency" and emergency_form.is_valid():
        cancelled = services.doctor_emergency_unavailable(doctor=doctor, by=request.user, reason=emergency_form.cleaned_data["reason"], request=request)
        messages.success(request, _("The rest of today is closed. %(count)d appointment(s) cancelled with full refunds; the patients have been told.") % {"count": len(cancelled)})
        return redirect("appointments:availability")

    if action == "schedule" and schedule_form.is_valid() and hours.is_valid():
        try:
            services.schedule_update(doctor=doctor, data=schedule_form.schedule_data(), weekly_hours=hours.ranges(), by=request.user, request=request)
        except ApplicationError as exc:
            for message in exc.fields.pop("weekly_hours", []):
                hours.nonform_add_service_errors().append(message)
            if exc.fields or not hours.nonform_add_service_errors():
                form_add_service_errors(schedule_form, exc, names=SCHEDULE_FIELD_NAMES)
        except ValidationError as exc:
            for name, field_messages in exc.message_dict.items():
                for message in field_messages:
                    schedule_form.add_error(SCHEDULE_FIELD_NAMES.get(name, name) if SCHEDULE_FIELD_NAMES.get(name, name) in schedule_form.fields else None, message)
        else:
            messages.success(request, _("Your availability is saved. Patients see the new times at once."))
            return redirect("appointments:availability")

    if action == "override" and override_form.is_valid():
        data = override_form.cleaned_data
        try:
            services.override_set(doctor=doctor, day=data["date"], ranges=override_form.ranges(), note=data["note"], by=request.user, request=request)
        except ApplicationError as exc:
            form_add_service_errors(override_form, exc, names={"weekly_hours": "end"})
        else:
            messages.success(request, (_("%(day)s is closed.") if data["kind"] == "closed" else _("%(day)s is set to special hours.")) % {"day": format_date(data["date"], "l j F Y")})
            return redirect("appointments:availability")

    overrides: dict[date, list] = defaultdict(list)
    for override in doctor_schedule.overrides.filter(date__gte=today).order_by("date", "start_time"):
        overrides[override.date].append(override)
    return render(
        request,
        "appointments/availability.html",
        {
            "doctor": doctor,
            "schedule_form": schedule_form,
            "hours": hours,
            "override_form": override_form,
            "vacation_form": vacation_form,
            "emergency_form": emergency_form,
            "overrides": [{"date": day, "rows": rows, "closed": any(r.is_closed for r in rows), "note": rows[0].note} for day, rows in overrides.items()],
            "schedule_errors": action == "schedule" and (schedule_form.errors or hours.total_error_count() or hours.nonform_add_service_errors()),
        },
    )


@require_POST
@doctor_required
def override_remove(request: HttpRequest, doctor: DoctorProfile, day: str) -> HttpResponse:
    try:
        removed_day = date.fromisoformat(day)
    except ValueError:
        raise Http404 from None
    if services.override_clear(doctor=doctor, day=removed_day, by=request.user, request=request):
        messages.success(request, _("%(day)s follows your weekly hours again.") % {"day": format_date(removed_day, "l j F Y")})
    return redirect(reverse("appointments:availability"))


def calendar_feed(request: HttpRequest, token: str) -> HttpResponse:
    """The private subscribable feed. No sign-in: the unguessable token is the credential."""
    feed = services.calendar_feed_fetched(token=token)
    if feed is None:
        raise Http404
    user = feed.user
    content = appointments_feed(selectors.feed_appointments(user=user), viewer_timezone=user.timezone or "UTC", for_doctor=user.role == "doctor")
    response = HttpResponse(content, content_type="text/calendar; charset=utf-8")
    response["Cache-Control"] = "private, max-age=300"
    return response


@login_required
@require_POST
def calendar_feed_rotate(request: HttpRequest) -> HttpResponse:
    services.calendar_feed_rotate(user=request.user, request=request)
    messages.success(request, _("Your calendar link has been replaced. Calendars using the old link no longer update."))
    return redirect("appointments:list")
