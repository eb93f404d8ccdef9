"""The fields of each category of structured entry. A payload is validated here before any
version is written, and stored as JSON (encrypted) in the version."""

from __future__ import annotations

from django.utils.translation import gettext
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
        return f"{value.replace('_', ' ').capitalize()}: {payload.get('value', '')} {payload.get('unit', '')}".strip()
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
