"""Staff roles in the back office: each role sees its own area and nothing else, clinical content
only for clinical reviewers (even superusers need the explicit grant), actions only with the
permission they declare, and every admin model covered."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from django.apps import apps
from django.contrib import admin
from django.contrib.auth.models import Group

from accounts.tests.factories import UserFactory, staff_member
from appointments.models import Appointment, ClinicalNote
from doctors.tests.factories import DoctorProfileFactory, ServiceFactory
from medimeet.core import roles
from medimeet.core.models import AuditEvent
from records import services as records_services

from .admin_actions import offered_actions

pytestmark = pytest.mark.django_db

PROJECT_APPS = ("core", "accounts", "doctors", "appointments", "payments", "consultations", "reviews", "records", "cms")
NO_ADMIN = {"core.backoffice": "no table: it only carries back-office permissions"}
START = datetime(2026, 11, 2, 9, 30, tzinfo=UTC)
REASON = "Chest pain when climbing stairs"

AREAS = {
    roles.SUPPORT: {
        "accounts.user", "appointments.appointment", "appointments.calendarfeed", "appointments.doctorschedule",
        "appointments.platformholiday", "appointments.rebookingoffer", "appointments.waitlistentry",
        "consultations.consultation", "core.announcement", "core.announcementdismissal", "core.failedtask", "core.notification",
        "doctors.doctorprofile", "doctors.doctorservice", "reviews.doctorrating", "reviews.helpfulvote",
        "reviews.moderationdecision", "reviews.moderationqueue", "reviews.platformrating", "reviews.ratingcategory",
        "reviews.review", "reviews.reviewappeal",
    },
    roles.VERIFICATION: {"accounts.user", "doctors.doctorprofile", "doctors.doctorservice", "doctors.language", "doctors.specialization"},
    roles.FINANCE: {
        "accounts.user", "appointments.appointment", "payments.gatewaycustomer", "payments.invoice", "payments.invoicecounter",
        "payments.payment", "payments.payoutaccount", "payments.refund", "payments.sandboxtransaction", "payments.savedcard",
        "payments.webhookevent", "payments.plan", "payments.subscription", "payments.credituse",
    },
    roles.AUTHOR: {"cms.category", "cms.mediaimage", "cms.page", "cms.post", "cms.tag"},
    roles.CONTENT_EDITOR: {"cms.category", "cms.mediaimage", "cms.page", "cms.post", "cms.tag", "core.announcement"},
    roles.COMPLIANCE: {
        "accounts.user", "consultations.consultation", "core.auditevent", "records.accessgrant", "records.document",
        "records.emergencyaccess", "records.erasurerequest", "records.prescription", "records.recordentry",
    },
    roles.CLINICAL_REVIEWER: {
        "appointments.appointment", "appointments.clinicalnote", "consultations.chatmessage", "consultations.consultation",
        "consultations.recording", "records.document", "records.prescription", "records.recordentry",
    },
}  # fmt: skip


def admin_index_models(client) -> set[str]:
    response = client.get("/admin/")
    assert response.status_code == 200
    return {f"{app['app_label']}.{model['object_name'].lower()}" for app in response.context["app_list"] for model in app["models"]}


@pytest.fixture
def visit():
    doctor = DoctorProfileFactory()
    patient = UserFactory(email="asha@example.com")
    appointment = Appointment.objects.create(
        doctor=doctor, patient=patient, service=ServiceFactory(doctor=doctor), start=START, end=START + timedelta(minutes=30),
        blocked_start=START, blocked_end=START + timedelta(minutes=30), status="completed", price_minor=50000, currency="INR", reason=REASON,
    )  # fmt: skip
    return appointment


# --- Coverage ---------------------------------------------------------------------------------


def test_every_model_of_every_app_has_an_admin_page_or_sits_inline_on_one():
    inlined = {inline.model for model_admin in admin.site._registry.values() for inline in model_admin.inlines}
    uncovered = [
        model._meta.label_lower
        for model in apps.get_models()
        if model._meta.app_label in PROJECT_APPS and model not in admin.site._registry and model not in inlined and model._meta.label_lower not in NO_ADMIN
    ]

    assert uncovered == []


def test_every_admin_list_opens_searches_and_filters_for_a_superuser(client, visit):
    client.force_login(staff_member(roles.CLINICAL_REVIEWER, is_superuser=True))
    failures = []
    for model, model_admin in admin.site._registry.items():
        if model._meta.app_label not in PROJECT_APPS:
            continue
        url = f"/admin/{model._meta.app_label}/{model._meta.model_name}/"
        queries = [{}] + ([{"q": "asha"}] if model_admin.search_fields else [])
        for params in queries:
            status = client.get(url, params).status_code
            if status != 200:
                failures.append((url, params, status))
    assert failures == []


def test_every_admin_action_declares_the_permission_it_needs():
    undeclared = [
        f"{model._meta.label_lower}:{name}"
        for model, model_admin in admin.site._registry.items()
        for func, name, _ in model_admin._get_base_actions()
        if model._meta.app_label in PROJECT_APPS and not getattr(func, "allowed_permissions", None)
    ]

    assert undeclared == []


def test_the_role_groups_hold_exactly_the_permissions_the_roles_table_lists():
    for name, permissions in roles.ROLES.items():
        group = Group.objects.get(name=name)
        held = {f"{p.content_type.app_label}.{p.codename}" for p in group.permissions.select_related("content_type")}
        assert held == set(permissions), name


def test_a_role_naming_a_permission_that_does_not_exist_fails_loudly(monkeypatch):
    monkeypatch.setitem(roles.ROLES, "typo", ["payments.approve_refunds"])

    with pytest.raises(LookupError, match="approve_refunds"):
        roles.staff_roles_sync()


# --- Areas ------------------------------------------------------------------------------------


@pytest.mark.parametrize("role", list(AREAS))
def test_each_role_sees_only_its_own_area_of_the_admin(client, role):
    client.force_login(staff_member(role))

    assert admin_index_models(client) == AREAS[role]


@pytest.mark.parametrize(
    ("role", "allowed", "refused"),
    [
        (roles.SUPPORT, "/admin/accounts/user/", "/admin/payments/refund/"),
        (roles.VERIFICATION, "/admin/doctors/doctorprofile/", "/admin/accounts/user/add/"),
        (roles.FINANCE, "/admin/payments/refund/", "/admin/records/recordentry/"),
        (roles.CONTENT_EDITOR, "/admin/cms/post/", "/admin/accounts/user/"),
        (roles.COMPLIANCE, "/admin/core/auditevent/", "/admin/cms/post/"),
        (roles.CLINICAL_REVIEWER, "/admin/appointments/clinicalnote/", "/admin/payments/payment/"),
    ],
)
def test_a_role_is_refused_outside_its_area(client, role, allowed, refused):
    client.force_login(staff_member(role))

    assert client.get(allowed).status_code == 200
    assert client.get(refused).status_code == 403


def test_a_staff_member_without_a_role_sees_an_empty_back_office(client):
    client.force_login(staff_member())

    assert admin_index_models(client) == set()
    assert client.get("/admin/accounts/user/").status_code == 403


def test_support_can_fix_a_name_but_not_make_anyone_staff_or_change_roles(client):
    client.force_login(staff_member(roles.SUPPORT))
    person = UserFactory(first_name="Asha")
    form = client.get(f"/admin/accounts/user/{person.pk}/change/").context["adminform"].form

    assert {"is_staff", "is_superuser", "groups", "user_permissions", "role"}.isdisjoint(form.fields)
    assert "first_name" in form.fields


def test_only_a_superuser_can_give_roles(client):
    client.force_login(staff_member(is_superuser=True))
    person = UserFactory()
    form = client.get(f"/admin/accounts/user/{person.pk}/change/").context["adminform"].form

    assert {"is_staff", "groups", "role"} <= set(form.fields)


# --- Clinical content -------------------------------------------------------------------------


@pytest.mark.parametrize("role", [roles.SUPPORT, roles.FINANCE])
def test_non_clinical_staff_see_the_appointment_but_not_the_reason_for_visit(client, visit, role):
    client.force_login(staff_member(role))

    page = client.get(f"/admin/appointments/appointment/{visit.pk}/change/")

    assert page.status_code == 200 and "Completed" in page.content.decode()
    assert REASON not in page.content.decode()
    assert not AuditEvent.objects.filter(action="admin.clinical_content_viewed").exists()


def test_a_superuser_without_the_clinical_grant_does_not_see_clinical_content_either(client, visit):
    ClinicalNote.objects.create(appointment=visit, author=visit.doctor.user, text="Start amlodipine 5 mg")
    client.force_login(staff_member(is_superuser=True))

    page = client.get(f"/admin/appointments/appointment/{visit.pk}/change/")

    assert REASON not in page.content.decode()
    assert client.get("/admin/appointments/clinicalnote/").status_code == 403
    assert "appointments.clinicalnote" not in admin_index_models(client)


def test_a_clinical_reviewer_sees_clinical_content_and_every_opening_is_audited(client, visit):
    reviewer = staff_member(roles.CLINICAL_REVIEWER)
    note = ClinicalNote.objects.create(appointment=visit, author=visit.doctor.user, text="Start amlodipine 5 mg")
    client.force_login(reviewer)

    appointment_page = client.get(f"/admin/appointments/appointment/{visit.pk}/change/")
    note_page = client.get(f"/admin/appointments/clinicalnote/{note.pk}/change/")

    assert REASON in appointment_page.content.decode()
    assert "Start amlodipine 5 mg" in note_page.content.decode()
    opened = AuditEvent.objects.filter(action="admin.clinical_content_viewed", actor=reviewer)
    assert {(e.target_type, e.target_id, e.subject_user_id) for e in opened} == {
        ("appointments.appointment", str(visit.pk), visit.patient_id),
        ("appointments.clinicalnote", str(note.pk), visit.patient_id),
    }


def test_compliance_sees_the_shape_of_a_record_but_not_its_content(client):
    patient = UserFactory()
    entry = records_services.entry_create(patient=patient, by=patient, category="allergy", payload={"substance": "Penicillin", "reaction": "Hives"})
    compliance, reviewer = staff_member(roles.COMPLIANCE), staff_member(roles.CLINICAL_REVIEWER)
    url = f"/admin/records/recordentry/{entry.pk}/change/"

    client.force_login(compliance)
    shape = client.get(url).content.decode()
    client.force_login(reviewer)
    content = client.get(url).content.decode()

    assert "Allergies" in shape and "Penicillin" not in shape
    assert "Penicillin" in content


# --- Actions ----------------------------------------------------------------------------------


def test_an_action_is_offered_and_runs_only_with_the_permission_it_declares(client):
    viewer = staff_member()
    viewer.user_permissions.add(*Group.objects.get(name=roles.FINANCE).permissions.exclude(codename="approve_refund"))
    client.force_login(viewer)
    without = offered_actions(client, "/admin/payments/refund/")
    client.force_login(staff_member(roles.FINANCE))
    with_permission = offered_actions(client, "/admin/payments/refund/")

    assert "approve" not in without and "reject" not in without
    assert {"approve", "reject"} <= with_permission
