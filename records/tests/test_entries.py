"""Structured entries: validated per category, versioned without overwrite, soft-deleted with a
reason, encrypted at rest, every write audited."""

from __future__ import annotations

import pytest
from django.core.exceptions import PermissionDenied
from django.db import connection

from medimeet.core.errors import ApplicationError
from medimeet.core.models import AuditEvent
from records import selectors, services
from records.models import RecordEntry, RecordEntryVersion

pytestmark = pytest.mark.django_db

PENICILLIN = {"substance": "Penicillin", "reaction": "Hives", "severity": "moderate"}


def test_every_change_is_a_new_version_and_the_history_compares_them(cast):
    patient, doctor = cast["patient"], cast["doctor"]
    entry = services.entry_create(by=patient, patient=patient, category="allergy", payload=PENICILLIN)

    services.entry_update(by=doctor, entry=entry, payload={**PENICILLIN, "severity": "severe", "reaction": "Anaphylaxis"})

    versions = selectors.entry_versions(entry)
    assert [(v.number, v.change, v.author, v.author_role) for v in versions] == [(1, "created", patient, "patient"), (2, "updated", doctor, "doctor")]
    assert selectors.entry_payload(versions[0]) == PENICILLIN
    assert selectors.version_diff(selectors.entry_payload(versions[0]), selectors.entry_payload(versions[1])) == [
        {"field": "reaction", "before": "Hives", "after": "Anaphylaxis"},
        {"field": "severity", "before": "moderate", "after": "severe"},
    ]
    assert sorted(AuditEvent.objects.filter(subject_user=patient).values_list("action", flat=True)) == ["record.entry_created", "record.entry_updated"]


def test_versions_cannot_be_overwritten_or_deleted(cast):
    entry = services.entry_create(by=cast["patient"], patient=cast["patient"], category="allergy", payload=PENICILLIN)
    version = entry.current_version

    version.reason = "tampered"
    with pytest.raises(PermissionDenied):
        version.save()
    with pytest.raises(PermissionDenied):
        RecordEntryVersion.objects.filter(pk=version.pk).update(reason="x")
    with pytest.raises(PermissionDenied):
        version.delete()


def test_delete_is_soft_with_a_reason_and_keeps_the_history(cast):
    patient = cast["patient"]
    entry = services.entry_create(by=patient, patient=patient, category="medication", payload={"name": "Amlodipine", "dose": "5 mg", "route": "oral"})

    services.entry_delete(by=patient, entry=entry, reason="Entered twice")

    entry.refresh_from_db()
    assert (entry.deletion_reason, entry.deleted_by, entry.version_count, entry.current_version.change) == ("Entered twice", patient, 2, "deleted")
    assert entry.retain_until is not None
    access = selectors.record_access(user=patient, patient=patient)
    assert list(selectors.entries_for(access=access)) == []
    with pytest.raises(ApplicationError) as again:
        services.entry_update(by=patient, entry=entry, payload={"name": "Amlodipine"})
    assert again.value.code == "REC_004"


def test_payloads_are_validated_per_category(cast):
    patient = cast["patient"]

    with pytest.raises(ApplicationError) as refused:
        services.entry_create(by=patient, patient=patient, category="lab_result", payload={"name": "HbA1c", "flag": "purple"})

    assert refused.value.code == "REC_003"
    assert refused.value.fields == {"payload.value": ["This field is required."], "payload.flag": ['"purple" is not a valid choice.']}
    assert RecordEntry.objects.count() == 0


def test_lab_results_keep_value_unit_and_reference_range(cast):
    patient = cast["patient"]
    payload = {"name": "HbA1c", "value": "6.1", "unit": "%", "reference_range": "4.0-5.6", "taken_on": "2026-10-30", "flag": "high"}

    entry = services.entry_create(by=cast["doctor"], patient=patient, category="lab_result", payload=payload)

    assert selectors.entry_payload(entry.current_version) == payload
    assert entry.created_by == cast["doctor"]


@pytest.mark.parametrize("who", ["other_patient", "other_doctor", "staff"])
def test_nobody_else_writes_to_the_record_and_a_refusal_changes_nothing(cast, who):
    patient = cast["patient"]
    entry = services.entry_create(by=patient, patient=patient, category="allergy", payload=PENICILLIN)
    audit_before = AuditEvent.objects.count()

    for attempt in (
        lambda: services.entry_create(by=cast[who], patient=patient, category="allergy", payload=PENICILLIN),
        lambda: services.entry_update(by=cast[who], entry=entry, payload={"substance": "Latex"}),
        lambda: services.entry_delete(by=cast[who], entry=entry, reason="Because"),
    ):
        with pytest.raises(ApplicationError) as refused:
            attempt()
        assert refused.value.code == "REC_001"

    assert RecordEntry.objects.count() == 1
    assert RecordEntryVersion.objects.count() == 1
    assert AuditEvent.objects.count() == audit_before


def test_a_doctor_with_a_grant_reads_but_does_not_write(cast):
    from datetime import timedelta

    from .conftest import NOW

    patient, doctor = cast["patient"], cast["other_doctor"]
    services.grant_create(patient=patient, doctor=doctor, whole_record=True, expires_at=NOW + timedelta(days=1))

    with pytest.raises(ApplicationError) as refused:
        services.entry_create(by=doctor, patient=patient, category="allergy", payload=PENICILLIN)

    assert refused.value.code == "REC_002"
    assert RecordEntry.objects.count() == 0


def test_payloads_are_not_plaintext_in_the_database(cast):
    services.entry_create(by=cast["patient"], patient=cast["patient"], category="allergy", payload=PENICILLIN)

    with connection.cursor() as cursor:
        cursor.execute("SELECT payload FROM records_recordentryversion")
        (raw,) = cursor.fetchone()
    assert "Penicillin" not in raw
    assert raw.startswith("gAAAAA")  # a Fernet token
