"""Forms of the appointment pages: choosing a slot, the reason for the visit, cancelling, the
list filters, and the doctor's availability editor. They parse and check input; the rules
about time (free slots, overlaps, limits) stay in services.py, whose errors the views put back
onto these forms."""

from __future__ import annotations

from datetime import UTC, date, datetime

from django import forms
from django.utils.translation import gettext_lazy as _

from accounts.forms import TIMEZONE_CHOICES
from accounts.models import validate_timezone

from .models import Appointment, WeeklyHours

WEEKDAY_CHOICES = [(index, name) for index, name in enumerate([_("Monday"), _("Tuesday"), _("Wednesday"), _("Thursday"), _("Friday"), _("Saturday"), _("Sunday")])]
TIME_INPUT = forms.TimeInput(attrs={"type": "time"}, format="%H:%M")


class SlotStartField(forms.CharField):
    """A slot start as the booking page renders it: ISO 8601 with its offset."""

    def to_python(self, value):
        value = super().to_python(value)
        if not value:
            return None
        try:
            parsed = datetime.fromisoformat(value)
        except ValueError:
            raise forms.ValidationError(_("Choose one of the times shown.")) from None
        if parsed.tzinfo is None:
            raise forms.ValidationError(_("Choose one of the times shown."))
        return parsed.astimezone(UTC)


class HoldForm(forms.Form):
    """A slot button pressed on the booking page. ``key`` is new on every render of the page, so
    a double click or a resent form holds the slot once (see views.book)."""

    service = forms.UUIDField(widget=forms.HiddenInput)
    start = SlotStartField(error_messages={"required": _("Choose a time.")})
    key = forms.RegexField(regex=r"^[A-Za-z0-9-]{8,64}$", widget=forms.HiddenInput)


class RescheduleForm(forms.Form):
    start = SlotStartField(error_messages={"required": _("Choose a new time.")})


class ReasonForm(forms.Form):
    reason = forms.CharField(
        label=_("Reason for visit"),
        max_length=2000,
        widget=forms.Textarea(attrs={"rows": 4, "placeholder": _("For example: a dry cough for three weeks, worse at night.")}),
        help_text=_("A sentence or two for the doctor: your symptoms and how long you have had them. Only your doctor sees this."),
        error_messages={"required": _("Tell the doctor briefly why you are booking.")},
    )


class CancelForm(forms.Form):
    reason = forms.CharField(
        label=_("Reason for cancelling"),
        max_length=2000,
        widget=forms.Textarea(attrs={"rows": 3}),
        error_messages={"required": _("Give a reason for cancelling.")},
    )


class StatusForm(forms.Form):
    status = forms.ChoiceField(choices=[("in_progress", _("In progress")), ("completed", _("Completed")), ("no_show", _("No-show"))])


class AppointmentFilterForm(forms.Form):
    status = forms.ChoiceField(
        required=False,
        label=_("Status"),
        choices=[("", _("Any status"))] + [(value, label) for value, label in Appointment.Status.choices if value != Appointment.Status.EXPIRED],
    )
    start_date = forms.DateField(required=False, label=_("From"), widget=forms.DateInput(attrs={"type": "date"}))
    end_date = forms.DateField(required=False, label=_("To"), widget=forms.DateInput(attrs={"type": "date"}))

    def clean(self):
        data = super().clean()
        if data.get("start_date") and data.get("end_date") and data["end_date"] < data["start_date"]:
            self.add_error("end_date", _("The range ends before it starts."))
        return data


# --- Availability ---------------------------------------------------------------------------


class ScheduleForm(forms.Form):
    """Booking rules. Notice periods are edited in hours and stored in minutes."""

    timezone = forms.ChoiceField(choices=TIMEZONE_CHOICES, label=_("Time zone"), validators=[validate_timezone], help_text=_("Your working hours below are in this zone."))
    default_slot_minutes = forms.IntegerField(min_value=5, max_value=240, label=_("Slot length (minutes)"))
    buffer_before_minutes = forms.IntegerField(min_value=0, max_value=120, label=_("Buffer before (minutes)"), help_text=_("Free time kept before each appointment."))
    buffer_after_minutes = forms.IntegerField(min_value=0, max_value=120, label=_("Buffer after (minutes)"), help_text=_("Free time kept after each appointment."))
    min_notice_hours = forms.IntegerField(min_value=0, max_value=336, label=_("Minimum notice (hours)"), help_text=_("How soon before a slot patients can still book it."))
    max_days_ahead = forms.IntegerField(min_value=1, max_value=365, label=_("Book up to (days ahead)"))
    daily_cap = forms.IntegerField(min_value=1, max_value=200, required=False, label=_("Most appointments a day"), help_text=_("Leave empty for no limit."))
    max_reschedules = forms.IntegerField(min_value=0, max_value=10, label=_("Reschedules allowed"), help_text=_("How often a patient may move one appointment."))
    reschedule_notice_hours = forms.IntegerField(min_value=0, max_value=336, label=_("Reschedule notice (hours)"), help_text=_("Patients cannot move an appointment later than this."))

    @classmethod
    def initial_for(cls, schedule) -> dict:
        return {
            "timezone": schedule.timezone,
            "default_slot_minutes": schedule.default_slot_minutes,
            "buffer_before_minutes": schedule.buffer_before_minutes,
            "buffer_after_minutes": schedule.buffer_after_minutes,
            "min_notice_hours": schedule.min_notice_minutes // 60,
            "max_days_ahead": schedule.max_days_ahead,
            "daily_cap": schedule.daily_cap,
            "max_reschedules": schedule.max_reschedules,
            "reschedule_notice_hours": schedule.reschedule_min_notice_minutes // 60,
        }

    def schedule_data(self) -> dict:
        """The cleaned form as DoctorSchedule fields (services.schedule_update)."""
        data = dict(self.cleaned_data)
        data["min_notice_minutes"] = data.pop("min_notice_hours") * 60
        data["reschedule_min_notice_minutes"] = data.pop("reschedule_notice_hours") * 60
        return data


# Service field names that belong to a form field with another name.
SCHEDULE_FIELD_NAMES = {"min_notice_minutes": "min_notice_hours", "reschedule_min_notice_minutes": "reschedule_notice_hours"}


class WeeklyHoursForm(forms.Form):
    # The blank first choice keeps the empty row unchanged, so Django skips it when saving.
    weekday = forms.TypedChoiceField(choices=[("", "Choose a day")] + WEEKDAY_CHOICES, coerce=int, empty_value=None, label=_("Day"), error_messages={"required": _("Choose a day.")})
    start = forms.TimeField(label=_("From"), widget=TIME_INPUT)
    end = forms.TimeField(label=_("To"), widget=TIME_INPUT)

    def clean(self):
        data = super().clean()
        if data.get("start") and data.get("end") and data["end"] <= data["start"]:
            self.add_error("end", _("End after the start time."))
        return data


class BaseWeeklyHoursFormSet(forms.BaseFormSet):
    def clean(self):
        """Ranges on one weekday must not overlap: say so on the later of the two rows."""
        if any(form.errors for form in self.forms):
            return
        seen: dict[int, list[tuple]] = {}
        for form in self.forms:
            data = form.cleaned_data
            if not data or data.get("DELETE"):
                continue
            weekday, new_start, new_end = data["weekday"], data["start"], data["end"]
            day_ranges = seen.setdefault(weekday, [])
            for start, end in day_ranges:
                if new_start < end and start < new_end:
                    form.add_error("start", _("Overlaps %(start)s–%(end)s on %(weekday)s.") % {"start": f"{start:%H:%M}", "end": f"{end:%H:%M}", "weekday": WEEKDAY_CHOICES[weekday][1]})
                    break
            day_ranges.append((new_start, new_end))

    def ranges(self) -> list[tuple[int, object, object]]:
        """Filled, not-deleted rows as (weekday, start, end), for services.schedule_update."""
        rows = [form.cleaned_data for form in self.forms if form.cleaned_data and not form.cleaned_data.get("DELETE")]
        return sorted((row["weekday"], row["start"], row["end"]) for row in rows)

    @staticmethod
    def initial_for(schedule) -> list[dict]:
        return [{"weekday": row.weekday, "start": row.start_time, "end": row.end_time} for row in WeeklyHours.objects.filter(schedule=schedule)]


WeeklyHoursFormSet = forms.formset_factory(WeeklyHoursForm, formset=BaseWeeklyHoursFormSet, extra=1, can_delete=True, max_num=50)


class OverrideForm(forms.Form):
    KIND_CHOICES = [("closed", _("Closed all day")), ("hours", _("Special hours"))]

    date = forms.DateField(label=_("Date"), widget=forms.DateInput(attrs={"type": "date"}))
    kind = forms.ChoiceField(choices=KIND_CHOICES, initial="closed", widget=forms.RadioSelect, label=_("On that date"))
    start = forms.TimeField(required=False, label=_("From"), widget=TIME_INPUT)
    end = forms.TimeField(required=False, label=_("To"), widget=TIME_INPUT)
    note = forms.CharField(required=False, max_length=200, label=_("Note"), help_text=_("Only you see this, e.g. “Conference”."))

    def __init__(self, *args, today: date, **kwargs):
        super().__init__(*args, **kwargs)
        self.today = today
        self.fields["date"].widget.attrs["min"] = today.isoformat()

    def clean_date(self):
        value = self.cleaned_data["date"]
        if value < self.today:
            raise forms.ValidationError(_("Choose today or a later date."))
        return value

    def clean(self):
        data = super().clean()
        if data.get("kind") == "hours":
            if not data.get("start"):
                self.add_error("start", _("Give the start time."))
            if not data.get("end"):
                self.add_error("end", _("Give the end time."))
            if data.get("start") and data.get("end") and data["end"] <= data["start"]:
                self.add_error("end", _("End after the start time."))
        return data

    def ranges(self) -> list[tuple]:
        data = self.cleaned_data
        return [(data["start"], data["end"])] if data["kind"] == "hours" else []


class VacationForm(forms.Form):
    first_day = forms.DateField(label=_("First day away"), widget=forms.DateInput(attrs={"type": "date"}))
    last_day = forms.DateField(label=_("Last day away"), widget=forms.DateInput(attrs={"type": "date"}))
    note = forms.CharField(label=_("Note (only you see it)"), max_length=200, required=False)


class EmergencyForm(forms.Form):
    reason = forms.CharField(
        label=_("Message to your patients"),
        max_length=500,
        required=False,
        initial=_("Your doctor is unavailable today because of an emergency."),
        widget=forms.Textarea(attrs={"rows": 2}),
    )


# --- Recurring series, clinical notes and follow-up, booking by the doctor ----------------------


class SeriesForm(forms.Form):
    """The booking page's "Repeat" options: with a repeat chosen, the slot pressed is the first
    of a series booked all or nothing (services.appointment_series_book)."""

    REPEAT_CHOICES = [("", _("Just once")), ("7", _("Every week")), ("14", _("Every two weeks")), ("28", _("Every four weeks"))]

    repeat = forms.TypedChoiceField(choices=REPEAT_CHOICES, coerce=int, empty_value=None, required=False, label=_("Repeat"))
    occurrences = forms.IntegerField(min_value=2, max_value=12, initial=4, required=False, label=_("Number of appointments"), help_text=_("2 to 12, the first included."))
    reason = forms.CharField(
        label=_("Reason for the visits"),
        max_length=2000,
        required=False,
        widget=forms.Textarea(attrs={"rows": 2, "placeholder": _("For example: weekly physiotherapy review after knee surgery.")}),
        help_text=_("Only your doctor sees this."),
    )

    def clean(self):
        data = super().clean()
        if data.get("repeat"):
            if not data.get("occurrences"):
                self.add_error("occurrences", _("Choose how many appointments, 2 to 12."))
            if not (data.get("reason") or "").strip():
                self.add_error("reason", _("Tell the doctor briefly why you are booking."))
        return data


class ServiceChoiceField(forms.ModelChoiceField):
    """One of the doctor's services, posted by public id and shown as "Follow-up · 15 min · ₹500.00"."""

    def __init__(self, **kwargs):
        super().__init__(queryset=None, empty_label=None, to_field_name="public_id", **kwargs)

    def label_from_instance(self, obj) -> str:
        return f"{obj.name} · {obj.duration_minutes} min · {obj.price_display}"


class ClinicalNoteForm(forms.Form):
    text = forms.CharField(
        label=_("Notes"),
        max_length=20_000,
        required=False,
        widget=forms.Textarea(attrs={"rows": 6, "placeholder": _("Findings, assessment and plan.")}),
    )


class FollowUpForm(forms.Form):
    on = forms.DateField(label=_("Follow-up from"), widget=forms.DateInput(attrs={"type": "date"}), help_text=_("The patient books the first free time from this date."))
    service = ServiceChoiceField(label=_("Service"))
    note = forms.CharField(label=_("Note for the patient"), max_length=2000, required=False, widget=forms.Textarea(attrs={"rows": 2}), help_text=_("For example: bring your latest blood pressure readings."))

    def __init__(self, *args, services, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["service"].queryset = services


class BookPatientForm(forms.Form):
    """Step one of the doctor's "Book a patient": whom and what (slots depend on both)."""

    patient = forms.EmailField(label=_("Patient's email"), help_text=_("Someone who has had an appointment with you."), widget=forms.EmailInput(attrs={"list": "my-patients", "autocomplete": "off"}))
    service = ServiceChoiceField(label=_("Service"))

    def __init__(self, *args, services, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["service"].queryset = services


class BookPatientReasonForm(forms.Form):
    reason = forms.CharField(
        label=_("Why the patient should come"),
        max_length=2000,
        widget=forms.Textarea(attrs={"rows": 2, "placeholder": _("For example: review blood results.")}),
        help_text=_("You and the patient see this on the appointment page."),
        error_messages={"required": _("Note why the patient should come.")},
    )
    start = SlotStartField(required=False)
