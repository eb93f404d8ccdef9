"""Compliance's admin actions: reviewing break-glass accesses (asks for a note) and deciding
erasure requests (asks for a note). The page asking changes nothing; the applied action does
what the service does — reviewed, record erased or kept, the patient told — and is audited;
roles outside compliance get 403."""

from __future__ import annotations

import pytest

from accounts.tests.factories import staff_member
from medimeet.core import roles
from medimeet.core.models import AuditEvent, Notification
from medimeet.core.tests.admin_actions import ask_then_apply, audited_actions, changelist, ids, run_action, signed_in
from records import services
from records.models import EmergencyAccess, ErasureRequest, RecordEntry

from .conftest import NOW

pytestmark = pytest.mark.django_db
ACCESSES, ERASURES = changelist(EmergencyAccess), changelist(ErasureRequest)


@pytest.fixture
def compliance(client):
    return signed_in(client, roles.COMPLIANCE)


def break_glass(cast) -> EmergencyAccess:
    return services.emergency_access_start(doctor=cast["other_doctor"], patient=cast["patient"], reason="Unconscious in A&E, allergy status needed")


def erasure_with_a_record(cast) -> tuple[ErasureRequest, RecordEntry]:
    patient = cast["patient"]
    entry = services.entry_create(by=patient, patient=patient, category="allergy", payload={"substance": "Penicillin"})
    return services.erasure_request_create(patient=patient, reason="Moving abroad"), entry


def review_of(access: EmergencyAccess) -> tuple:
    access.refresh_from_db()
    return access.reviewed_at, access.reviewed_by, access.review_note


def decision_of(erasure: ErasureRequest) -> tuple:
    erasure.refresh_from_db()
    return erasure.status, erasure.decided_by, erasure.decision_note


def test_compliance_marks_an_emergency_access_reviewed_with_a_note(client, cast, compliance):
    access = break_glass(cast)

    asked, done = ask_then_apply(client, ACCESSES, "mark_reviewed", [access], note="Confirmed with the A&E consultant")

    assert asked.status_code == 200 and "allergy status needed" in asked.content.decode()
    assert done.status_code == 302
    assert review_of(access) == (NOW, compliance, "Confirmed with the A&E consultant")
    assert AuditEvent.objects.filter(action="record.emergency_access_reviewed", actor=compliance, subject_user=cast["patient"], ip_address="127.0.0.1").count() == 1
    assert audited_actions() == [(compliance.pk, "records.emergencyaccess", "mark_reviewed", ids(access), 1)]


def test_the_note_page_and_an_empty_note_leave_the_access_waiting_for_review(client, cast, compliance):
    access = break_glass(cast)

    asked, empty = ask_then_apply(client, ACCESSES, "mark_reviewed", [access], note="")

    assert (asked.status_code, empty.status_code) == (200, 200)
    assert empty.context["form"].errors == {"note": ["This field is required."]}
    assert review_of(access) == (None, None, "")
    assert audited_actions() == []


@pytest.mark.parametrize(
    ("action", "note", "status", "erased_at"),
    [("approve", "Identity checked", "approved", NOW), ("reject", "A court order requires the record to be kept", "rejected", None)],
)
def test_compliance_decides_an_erasure_the_record_is_erased_or_kept_and_the_patient_told(client, cast, compliance, action, note, status, erased_at):
    erasure, entry = erasure_with_a_record(cast)

    asked, done = ask_then_apply(client, ERASURES, action, [erasure], note=note)

    entry.refresh_from_db()
    assert asked.status_code == 200 and done.status_code == 302
    assert decision_of(erasure) == (status, compliance, note)
    assert entry.deleted_at == erased_at
    assert list(Notification.objects.filter(event="record.erasure_decided").values_list("to", flat=True)) == [cast["patient"].email]
    assert AuditEvent.objects.filter(action="record.erasure_decided", actor=compliance, metadata__approved=action == "approve", ip_address="127.0.0.1").count() == 1
    assert audited_actions() == [(compliance.pk, "records.erasurerequest", action, ids(erasure), 1)]


@pytest.mark.parametrize("action", ["approve", "reject"])
def test_the_erasure_note_page_changes_nothing(client, cast, compliance, action):
    erasure, entry = erasure_with_a_record(cast)

    asked = run_action(client, ERASURES, action, [erasure])

    entry.refresh_from_db()
    assert asked.status_code == 200
    assert decision_of(erasure) == ("pending", None, "")
    assert entry.deleted_at is None
    assert not Notification.objects.filter(event="record.erasure_decided").exists()
    assert audited_actions() == []


@pytest.mark.parametrize("role", [roles.SUPPORT, roles.CLINICAL_REVIEWER, roles.FINANCE])
def test_roles_outside_compliance_get_403_and_decide_nothing(client, cast, role):
    access, (erasure, entry) = break_glass(cast), erasure_with_a_record(cast)
    client.force_login(staff_member(role))

    responses = [
        run_action(client, ACCESSES, "mark_reviewed", [access], apply="1", note="Fine"),
        run_action(client, ERASURES, "approve", [erasure], apply="1", note="Fine"),
    ]

    entry.refresh_from_db()
    assert [r.status_code for r in responses] == [403, 403]
    assert review_of(access) == (None, None, "")
    assert decision_of(erasure) == ("pending", None, "") and entry.deleted_at is None
    assert audited_actions() == []
