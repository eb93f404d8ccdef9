"""Who may read a patient's record: the one decision in records.selectors.record_access."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.core import mail
from django.test import override_settings

from accounts.tests.factories import StaffFactory
from medimeet.core.errors import ApplicationError
from medimeet.core.models import AuditEvent
from records import selectors, services
from records.models import AccessGrant, EmergencyAccess, Scope

from .conftest import NOW, appointment_between

pytestmark = pytest.mark.django_db


def basis(user, patient):
    access = selectors.record_access(user=user, patient=patient)
    return access.basis if access else None


def test_the_patient_owns_the_record_and_nobody_else_reads_it_without_a_reason(cast):
    patient = cast["patient"]

    assert basis(patient, patient) == "owner"
    assert basis(cast["doctor"], patient) == "relationship"
    assert basis(cast["other_patient"], patient) is None
    assert basis(cast["other_doctor"], patient) is None
    assert basis(cast["staff"], patient) is None
    assert basis(None, patient) is None


@pytest.mark.parametrize(("days_from_now", "expected"), [(-31, None), (-30, "relationship"), (7, "relationship"), (8, None)])
def test_the_relationship_lasts_for_the_configured_window_around_an_appointment(cast, days_from_now, expected):
    doctor = cast["other_doctor"].doctor_profile
    appointment_between(doctor, cast["patient"], NOW + timedelta(days=days_from_now), status="confirmed")

    assert basis(doctor.user, cast["patient"]) == expected


@override_settings(RECORDS_RELATIONSHIP_PAST_DAYS=1)
def test_the_window_is_a_setting(cast):
    assert basis(cast["doctor"], cast["patient"]) is None


def test_a_cancelled_appointment_makes_no_relationship(cast):
    appointment_between(cast["other_doctor"].doctor_profile, cast["patient"], NOW + timedelta(days=1), status="cancelled")

    assert basis(cast["other_doctor"], cast["patient"]) is None


def test_a_grant_gives_its_scope_only_and_stops_at_once_when_revoked(cast):
    patient, doctor = cast["patient"], cast["other_doctor"]
    grant = services.grant_create(patient=patient, doctor=doctor, categories=[Scope.DOCUMENTS, Scope.ALLERGY], expires_at=NOW + timedelta(days=1))

    access = selectors.record_access(user=doctor, patient=patient)
    assert (access.basis, access.scopes, access.can_write) == ("grant", frozenset({"documents", "allergy"}), False)
    with pytest.raises(ApplicationError) as refused:
        selectors.record_access_require(user=doctor, patient=patient, scope=Scope.MEDICATION)
    assert refused.value.code == "REC_002"

    services.grant_revoke(grant=grant, by=patient)

    assert basis(doctor, patient) is None
    assert AuditEvent.objects.filter(subject_user=patient, action="record.grant_revoked").count() == 1


def test_a_grant_stops_the_instant_it_expires(cast, frozen_time):
    patient, doctor = cast["patient"], cast["other_doctor"]
    services.grant_create(patient=patient, doctor=doctor, whole_record=True, expires_at=NOW + timedelta(hours=24))

    frozen_time.move_to(NOW + timedelta(hours=24) - timedelta(seconds=1))
    assert basis(doctor, patient) == "grant"
    frozen_time.move_to(NOW + timedelta(hours=24))
    assert basis(doctor, patient) is None


def test_only_the_patient_revokes_their_grant_and_a_refusal_changes_nothing(cast):
    grant = services.grant_create(patient=cast["patient"], doctor=cast["other_doctor"], whole_record=True, expires_at=NOW + timedelta(days=1))
    audit_before = AuditEvent.objects.count()

    for intruder in (cast["other_patient"], cast["other_doctor"], cast["staff"]):
        with pytest.raises(ApplicationError) as refused:
            services.grant_revoke(grant=grant, by=intruder)
        assert refused.value.code == "REC_001"

    grant.refresh_from_db()
    assert grant.revoked_at is None
    assert AuditEvent.objects.count() == audit_before


@pytest.mark.parametrize("bad", [{"categories": []}, {"categories": ["everything"]}, {"categories": ["documents"], "expires_at": NOW - timedelta(minutes=1)}, {"categories": ["documents"], "expires_at": NOW + timedelta(days=366)}])
def test_invalid_grants_are_refused(cast, bad):
    kwargs = {"patient": cast["patient"], "doctor": cast["other_doctor"], "expires_at": NOW + timedelta(days=1), **bad}

    with pytest.raises(ApplicationError) as refused:
        services.grant_create(**kwargs)

    assert refused.value.code == "REC_005"
    assert AccessGrant.objects.count() == 0


def test_break_glass_gives_time_limited_read_access_notifies_and_is_flagged(cast, frozen_time, django_capture_on_commit_callbacks):
    from django.contrib.auth.models import Permission

    compliance = StaffFactory(email="compliance@example.com")
    compliance.user_permissions.add(Permission.objects.get(codename="review_emergency_access"))
    patient, doctor = cast["patient"], cast["other_doctor"]

    with django_capture_on_commit_callbacks(execute=True):
        access = services.emergency_access_start(doctor=doctor, patient=patient, reason="Unconscious in A&E, allergy status needed")

    record = selectors.record_access(user=doctor, patient=patient)
    assert (record.basis, record.can_write) == ("emergency", False)
    assert access.reviewed_at is None
    assert access.expires_at == NOW + timedelta(hours=4)
    assert sorted(m.to[0] for m in mail.outbox) == sorted([patient.email, "compliance@example.com"])
    assert all("Unconscious" not in m.body for m in mail.outbox)
    event = AuditEvent.objects.get(action="record.emergency_access")
    assert (event.actor, event.subject_user, event.metadata["reason"], event.metadata["flagged"]) == (doctor, patient, "Unconscious in A&E, allergy status needed", True)

    frozen_time.move_to(NOW + timedelta(hours=4))
    assert basis(doctor, patient) is None


def test_break_glass_needs_a_reason_and_a_doctor(cast):
    with pytest.raises(ApplicationError) as no_reason:
        services.emergency_access_start(doctor=cast["other_doctor"], patient=cast["patient"], reason="  ")
    with pytest.raises(ApplicationError) as not_doctor:
        services.emergency_access_start(doctor=cast["other_patient"], patient=cast["patient"], reason="Curious")

    assert (no_reason.value.code, not_doctor.value.code) == ("REQ_001", "REC_008")
    assert EmergencyAccess.objects.count() == 0
    assert mail.outbox == []


def test_compliance_staff_review_break_glass_and_plain_staff_cannot(cast):
    from django.contrib.auth.models import Permission

    access = services.emergency_access_start(doctor=cast["other_doctor"], patient=cast["patient"], reason="Chest pain, unresponsive")
    with pytest.raises(ApplicationError):
        services.emergency_access_review(access=access, by=cast["staff"], note="Looks fine")
    reviewer = StaffFactory()
    reviewer.user_permissions.add(Permission.objects.get(codename="review_emergency_access"))
    reviewer = type(reviewer).objects.get(pk=reviewer.pk)

    services.emergency_access_review(access=access, by=reviewer, note="Confirmed with A&E")

    access.refresh_from_db()
    assert (access.reviewed_by, access.review_note) == (reviewer, "Confirmed with A&E")
