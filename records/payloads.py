"""The fields of each category of structured entry. A payload is validated here before any
version is written, and stored as JSON (encrypted) in the version."""

from __future__ import annotations

from django.utils.translation import gettext, gettext_lazy
from rest_framework import serializers

from medimeet.core.errors import ApplicationError

from .models import Category

SEVERITY = ["mild", "moderate", "severe"]
ROUTES = ["oral", "sublingual", "topical", "inhaled", "intravenous", "intramuscular", "subcutaneous", "rectal", "ophthalmic", "otic", "nasal", "other"]


def text(max_length: int = 200, required: bool = False) -> serializers.CharField:
    return serializers.CharField(max_length=max_length, required=required, allow_blank=not required, trim_whitespace=True)


class AllergyPayload(serializers.Serializer):
    substance = text(required=True)
    reaction = text(500)
    severity = serializers.ChoiceField(SEVERITY, required=False)
    noted_on = serializers.DateField(required=False)


class MedicationPayload(serializers.Serializer):
    name = text(required=True)
    dose = text(100)
    route = serializers.ChoiceField(ROUTES, required=False)
    frequency = text(100)
    started_on = serializers.DateField(required=False)
    stopped_on = serializers.DateField(required=False)
    instructions = text(1000)

    def validate(self, attrs):
        if attrs.get("started_on") and attrs.get("stopped_on") and attrs["stopped_on"] < attrs["started_on"]:
            raise serializers.ValidationError({"stopped_on": [gettext("A medication cannot stop before it started.")]})
        return attrs


class ConditionPayload(serializers.Serializer):
    name = text(required=True)
    code = text(20)  # ICD-10 or SNOMED code, when known
    status = serializers.ChoiceField(["active", "resolved", "inactive"], default="active")
    onset_on = serializers.DateField(required=False)
    notes = text(2000)


class VitalPayload(serializers.Serializer):
    kind = serializers.ChoiceField(["blood_pressure", "heart_rate", "temperature", "weight", "height", "oxygen_saturation", "respiratory_rate", "blood_glucose", "other"])
    value = text(50, required=True)
    unit = text(20)
    measured_at = serializers.DateTimeField()


class ImmunizationPayload(serializers.Serializer):
    vaccine = text(required=True)
    dose_number = serializers.IntegerField(min_value=1, max_value=20, required=False)
    given_on = serializers.DateField()
    lot_number = text(50)


class LabResultPayload(serializers.Serializer):
    name = text(required=True)
    value = text(50, required=True)
    unit = text(20)
    reference_range = text(50)
    taken_on = serializers.DateField(required=False)
    flag = serializers.ChoiceField(["normal", "low", "high", "abnormal"], required=False)


PAYLOADS: dict[str, type[serializers.Serializer]] = {
    Category.ALLERGY: AllergyPayload,
    Category.MEDICATION: MedicationPayload,
    Category.CONDITION: ConditionPayload,
    Category.VITAL: VitalPayload,
    Category.IMMUNIZATION: ImmunizationPayload,
    Category.LAB_RESULT: LabResultPayload,
}

# The words for the coded values of the choice fields above.
CHOICE_FIELDS = ("severity", "route", "status", "kind", "flag")
VALUE_LABELS = {
    "mild": gettext_lazy("Mild"), "moderate": gettext_lazy("Moderate"), "severe": gettext_lazy("Severe"),
    "oral": gettext_lazy("Oral"), "sublingual": gettext_lazy("Sublingual"), "topical": gettext_lazy("Topical"), "inhaled": gettext_lazy("Inhaled"), "intravenous": gettext_lazy("Intravenous"),
    "intramuscular": gettext_lazy("Intramuscular"), "subcutaneous": gettext_lazy("Subcutaneous"), "rectal": gettext_lazy("Rectal"), "ophthalmic": gettext_lazy("Ophthalmic"),
    "otic": gettext_lazy("Otic"), "nasal": gettext_lazy("Nasal"), "other": gettext_lazy("Other"),
    "active": gettext_lazy("Active"), "resolved": gettext_lazy("Resolved"), "inactive": gettext_lazy("Inactive"),
    "blood_pressure": gettext_lazy("Blood pressure"), "heart_rate": gettext_lazy("Heart rate"), "temperature": gettext_lazy("Temperature"), "weight": gettext_lazy("Weight"),
    "height": gettext_lazy("Height"), "oxygen_saturation": gettext_lazy("Oxygen saturation"), "respiratory_rate": gettext_lazy("Respiratory rate"), "blood_glucose": gettext_lazy("Blood glucose"),
    "normal": gettext_lazy("Normal"), "low": gettext_lazy("Low"), "high": gettext_lazy("High"), "abnormal": gettext_lazy("Abnormal"),
}  # fmt: skip


def payload_value_label(value: str) -> str:
    """A coded value as people read it, in the active language ("blood_pressure" → "Blood pressure")."""
    return str(VALUE_LABELS.get(value) or value.replace("_", " ").capitalize())


def payload_display(payload: dict) -> dict:
    """The payload with its coded values in words, for pages (the stored payload keeps the codes)."""
    return {name: payload_value_label(value) if name in CHOICE_FIELDS and isinstance(value, str) else value for name, value in payload.items()}


# The one-line title of an entry on the timeline and in lists.
HEADLINE = {
    Category.ALLERGY: "substance",
    Category.MEDICATION: "name",
    Category.CONDITION: "name",
    Category.VITAL: "kind",
    Category.IMMUNIZATION: "vaccine",
    Category.LAB_RESULT: "name",
}


def payload_validate(category: str, data) -> dict:
    """The payload as JSON-ready values (dates as ISO strings), or ApplicationError REC_003."""
    serializer_class = PAYLOADS.get(category)
    if serializer_class is None:
        raise ApplicationError("REC_003", fields={"category": [gettext("Choose one of: %(values)s.") % {"values": ", ".join(Category.values)}]})
    if not isinstance(data, dict):
        raise ApplicationError("REC_003", fields={"payload": [gettext("Send the entry's fields as an object.")]})
    serializer = serializer_class(data=data)
    if not serializer.is_valid():
        raise ApplicationError("REC_003", fields={f"payload.{name}": [str(m) for m in messages] for name, messages in serializer.errors.items()})
    return {name: value for name, value in serializer_class(serializer.validated_data).data.items() if value not in (None, "")}


def payload_headline(category: str, payload: dict) -> str:
    value = str(payload.get(HEADLINE.get(category, ""), ""))
    if category == Category.VITAL:
        return f"{payload_value_label(value)}: {payload.get('value', '')} {payload.get('unit', '')}".strip()
    if category == Category.LAB_RESULT:
        return f"{value}: {payload.get('value', '')} {payload.get('unit', '')}".strip()
    return value


class MedicinePayload(serializers.Serializer):
    name = text(required=True)
    dose = text(100, required=True)
    route = serializers.ChoiceField(ROUTES, default="oral")
    frequency = text(100, required=True)
    duration = text(100, required=True)
    instructions = text(500)


class PrescriptionPayload(serializers.Serializer):
    medicines = MedicinePayload(many=True, allow_empty=False)
    advice = text(2000)
    follow_up = text(500)


def prescription_validate(data) -> dict:
    serializer = PrescriptionPayload(data=data)
    if not serializer.is_valid():
        from medimeet.core.errors import _field_messages

        raise ApplicationError("REC_017", fields=_field_messages(serializer.errors))
    return PrescriptionPayload(serializer.validated_data).data
