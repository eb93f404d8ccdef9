"""The verification queue's actions, run through the admin by the verification role: start the
review and approve; reject and request changes, which ask for a reason first (the page changes
nothing). Each moves the applications, tells the doctor where the service does and is audited;
other roles cannot run them."""

from __future__ import annotations

import pytest

from accounts.tests.factories import staff_member
from doctors.models import DoctorProfile, VerificationEvent
from medimeet.core import roles
from medimeet.core.models import AuditEvent, Notification
from medimeet.core.tests.admin_actions import ask_then_apply, audited_actions, changelist, ids, offered_actions, run_action

from .factories import DoctorProfileFactory

pytestmark = pytest.mark.django_db
QUEUE = changelist(DoctorProfile)
REASON = "The licence number does not match the council's register."


def under_review(count: int = 2) -> list[DoctorProfile]:
    return [DoctorProfileFactory(verification_status="under_review", user__email=f"dr{n}@example.com") for n in range(count)]


def statuses(doctors) -> list[tuple[str, str]]:
    return list(DoctorProfile.objects.filter(pk__in=[d.pk for d in doctors]).order_by("pk").values_list("verification_status", "status_reason"))


@pytest.mark.parametrize(("action", "status"), [("reject", "rejected"), ("request_changes", "changes_requested")])
def test_verification_decides_with_a_reason_the_doctors_are_told_and_it_is_audited(client, action, status):
    staff = staff_member(roles.VERIFICATION)
    doctors = under_review()
    client.force_login(staff)

    asked, done = ask_then_apply(client, QUEUE, action, doctors, reason=REASON)

    assert asked.status_code == 200 and "dr0@example.com" in asked.content.decode() and "dr1@example.com" in asked.content.decode()
    assert done.status_code == 302
    assert statuses(doctors) == [(status, REASON)] * 2
    assert VerificationEvent.objects.filter(doctor__in=doctors, from_status="under_review", to_status=status, by=staff, reason=REASON).count() == 2
    assert sorted(Notification.objects.filter(event=f"doctor.application_{status}").values_list("to", flat=True)) == ["dr0@example.com", "dr1@example.com"]
    assert AuditEvent.objects.filter(action=f"doctor.verification.{status}", actor=staff).count() == 2
    assert audited_actions() == [(staff.pk, "doctors.doctorprofile", action, ids(*doctors), 2)]


def test_verification_starts_the_review_then_approves_and_the_doctor_is_told(client):
    staff = staff_member(roles.VERIFICATION)
    doctor = DoctorProfileFactory(verification_status="submitted", user__email="dr0@example.com")
    client.force_login(staff)

    started = run_action(client, QUEUE, "start_review", [doctor])
    approved = run_action(client, QUEUE, "approve", [doctor])

    doctor.refresh_from_db()
    assert (started.status_code, approved.status_code) == (302, 302)
    assert (doctor.verification_status, doctor.is_listed) == ("approved", True)
    assert list(VerificationEvent.objects.filter(doctor=doctor, by=staff).order_by("pk").values_list("to_status", flat=True)) == ["under_review", "approved"]
    assert list(Notification.objects.filter(event="doctor.application_approved").values_list("to", flat=True)) == ["dr0@example.com"]
    assert audited_actions() == [
        (staff.pk, "doctors.doctorprofile", "start_review", ids(doctor), 1),
        (staff.pk, "doctors.doctorprofile", "approve", ids(doctor), 1),
    ]


@pytest.mark.parametrize("action", ["reject", "request_changes"])
def test_the_reason_page_and_an_empty_reason_change_nothing(client, action):
    doctors = under_review()
    client.force_login(staff_member(roles.VERIFICATION))

    asked, empty = ask_then_apply(client, QUEUE, action, doctors, reason="  ")

    assert (asked.status_code, empty.status_code) == (200, 200)
    assert empty.context["form"].errors == {"reason": ["This field is required."]}
    assert statuses(doctors) == [("under_review", "")] * 2
    assert not VerificationEvent.objects.exists() and not Notification.objects.exists()
    assert audited_actions() == []


def test_support_sees_the_queue_but_is_not_offered_the_decisions_and_cannot_post_them(client):
    doctors = under_review()
    client.force_login(staff_member(roles.SUPPORT))

    offered = offered_actions(client, QUEUE)
    for action in ("reject", "request_changes"):
        run_action(client, QUEUE, action, doctors, apply="1", reason=REASON)

    assert offered.isdisjoint({"start_review", "approve", "reject", "request_changes"})
    assert statuses(doctors) == [("under_review", "")] * 2
    assert not Notification.objects.exists()
    assert audited_actions() == []


@pytest.mark.parametrize("role", [roles.FINANCE, roles.CONTENT_EDITOR, roles.COMPLIANCE])
def test_roles_outside_verification_get_403_on_the_queue(client, role):
    doctors = under_review(1)
    client.force_login(staff_member(role))

    response = run_action(client, QUEUE, "reject", doctors, apply="1", reason=REASON)

    assert response.status_code == 403
    assert statuses(doctors) == [("under_review", "")]
    assert audited_actions() == []
