"""Page forms of the record. Entry forms are built from the category's payload fields
(records.payloads), so the page and the API validate the same way."""

from __future__ import annotations

from django import forms
from django.utils.translation import gettext_lazy as _
from rest_framework import serializers

from .models import Category, Scope
from .payloads import PAYLOADS, MedicinePayload, payload_value_label

GRANT_DURATIONS = [("1", _("1 day")), ("7", _("7 days")), ("30", _("30 days")), ("90", _("90 days"))]


# The page's words for the payload fields (the API keeps the field names).
FIELD_LABELS = {
    "substance": _("Substance"), "reaction": _("Reaction"), "severity": _("Severity"), "noted_on": _("Noted on"), "name": _("Name"),
    "dose": _("Dose"), "route": _("Route"), "frequency": _("Frequency"), "started_on": _("Started on"), "stopped_on": _("Stopped on"),
    "instructions": _("Instructions"), "code": _("Code"), "status": _("Status"), "onset_on": _("Onset on"), "notes": _("Notes"),
    "kind": _("Kind"), "value": _("Value"), "unit": _("Unit"), "measured_at": _("Measured at"), "vaccine": _("Vaccine"),
    "dose_number": _("Dose number"), "given_on": _("Given on"), "lot_number": _("Lot number"), "reference_range": _("Reference range"),
    "taken_on": _("Taken on"), "flag": _("Flag"), "duration": _("Duration"),
}  # fmt: skip


def field_label(name: str) -> str:
    """How a payload field is named on the pages, in the reader's language ("noted_on" -> "Noted on")."""
    return FIELD_LABELS.get(name) or name.replace("_", " ").capitalize()


def _form_field(field: serializers.Field) -> forms.Field:
    label = field_label(field.field_name)
    if isinstance(field, serializers.ChoiceField):
        choices = [("", "—")] if not field.required else []
        return forms.ChoiceField(label=label, required=field.required, choices=choices + [(k, payload_value_label(k)) for k in field.choices])
    if isinstance(field, serializers.DateTimeField):
        return forms.DateTimeField(label=label, required=field.required, widget=forms.DateTimeInput(attrs={"type": "datetime-local"}))
    if isinstance(field, serializers.DateField):
        return forms.DateField(label=label, required=field.required, widget=forms.DateInput(attrs={"type": "date"}))
    if isinstance(field, serializers.IntegerField):
        return forms.IntegerField(label=label, required=field.required, min_value=field.min_value, max_value=field.max_value)
    return forms.CharField(label=label, required=field.required, max_length=field.max_length)


def entry_form_class(category: str) -> type[forms.Form]:
    return type(f"{category.title()}EntryForm", (forms.Form,), _fields_of(PAYLOADS[category]))


def entry_form(category: str, data=None) -> forms.Form:
    return entry_form_class(category)(data, prefix=category)


def entry_forms(data=None, bound: str | None = None) -> list[tuple[str, str, forms.Form]]:
    return [(c.value, c.label, entry_form(c.value, data if c.value == bound else None)) for c in Category]


def entry_form_initial(category: str, payload: dict) -> dict:
    """A stored payload as the entry form's initial values (a datetime-local input takes
    "YYYY-MM-DDTHH:MM", the payload keeps ISO 8601 with seconds and zone)."""
    fields = entry_form_class(category).base_fields
    initial = {}
    for name, value in payload.items():
        if name in fields and isinstance(fields[name], forms.DateTimeField) and isinstance(value, str):
            value = value[:16]
        initial[name] = value
    return initial


def entry_form_payload(form: forms.Form) -> dict:
    """The payload a valid entry form describes, for records.services (which validates it again
    with the same serializer: one set of rules). Empty optional fields are left out."""
    return {name: value for name, value in form.cleaned_data.items() if value not in (None, "")}


class DocumentForm(forms.Form):
    title = forms.CharField(label=_("Title"), max_length=200, required=False, help_text=_("For example: Blood test, October 2026."))
    file = forms.FileField(label=_("File"), help_text=_("PDF, DICOM, JPEG, PNG, WebP, TIFF or GIF. Encrypted before it is stored."))


class GrantForm(forms.Form):
    doctor = forms.ChoiceField(label=_("Doctor"))
    whole_record = forms.BooleanField(label=_("The whole record"), required=False)
    categories = forms.MultipleChoiceField(label=_("Or only these parts"), choices=Scope.choices, required=False, widget=forms.CheckboxSelectMultiple)
    days = forms.ChoiceField(label=_("For"), choices=GRANT_DURATIONS, initial="1")

    def __init__(self, *args, doctors=(), **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.fields["doctor"].choices = [(str(d.user.public_id), d.display_name) for d in doctors]


class ReasonForm(forms.Form):
    reason = forms.CharField(label=_("Reason"), max_length=500, widget=forms.Textarea(attrs={"rows": 3}))


def _fields_of(serializer_class) -> dict[str, forms.Field]:
    return {name: _form_field(field) for name, field in serializer_class().fields.items()}


# One medicine of a prescription, from the same fields the service validates.
MedicineForm = type("MedicineForm", (forms.Form,), _fields_of(MedicinePayload))
MedicineFormSet = forms.formset_factory(MedicineForm, extra=3, max_num=10)


class PrescriptionForm(forms.Form):
    advice = forms.CharField(label=_("Advice"), required=False, max_length=2000, widget=forms.Textarea(attrs={"rows": 3}))
    follow_up = forms.CharField(label=_("Follow-up"), required=False, max_length=500)
    supersede = forms.BooleanField(label=_("Replaces the current prescription of this consultation"), required=False)
