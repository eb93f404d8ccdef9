"""/api/v1/admin/users/: the staff user management API mirrors the admin — list, filter and
search, one account's status, bulk operations with an outcome per id, verification resend —
and follows the admin's roles (support acts; other roles are refused)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from django.core import mail
from rest_framework.test import APIClient

from accounts.models import User
from doctors.tests.factories import DoctorProfileFactory
from medimeet.core import roles
from medimeet.core.models import AuditEvent

from .factories import DoctorFactory, UserFactory, staff_member

pytestmark = pytest.mark.django_db
URL = "/api/v1/admin/users/"


def api_as(user) -> APIClient:
    api = APIClient()
    api.force_authenticate(user)
    return api


@pytest.fixture
def support():
    return api_as(staff_member(roles.SUPPORT, email="agent@example.com"))


def emails(response) -> list[str]:
    return [row["email"] for row in response.json()["results"]]


def test_the_list_filters_searches_and_orders_accounts(support):
    UserFactory(email="asha@example.com", first_name="Asha", date_joined=datetime(2026, 1, 5, tzinfo=UTC))
    UserFactory(email="ravi@example.com", verified=False, date_joined=datetime(2026, 3, 1, tzinfo=UTC))
    DoctorFactory(email="dr.mehta@example.com", date_joined=datetime(2026, 2, 1, tzinfo=UTC))

    assert emails(support.get(URL, {"q": "asha@"})) == ["asha@example.com"]
    assert emails(support.get(URL, {"role": "doctor"})) == ["dr.mehta@example.com"]
    assert emails(support.get(URL, {"email_verified": "false"})) == ["ravi@example.com"]
    assert emails(support.get(URL, {"is_staff": "false", "ordering": "email"})) == ["asha@example.com", "dr.mehta@example.com", "ravi@example.com"]
    assert emails(support.get(URL, {"is_staff": "false", "joined_after": "2026-01-31T00:00:00Z", "joined_before": "2026-03-01T00:00:00Z"})) == ["dr.mehta@example.com"]


def test_an_account_shows_what_staff_need_to_decide(support):
    doctor = DoctorProfileFactory(user__email="dr.rao@example.com").user

    row = support.get(f"{URL}{doctor.public_id}/").json()
    agent = support.get(URL, {"q": "agent@"}).json()["results"][0]

    assert (row["role"], row["status"], row["email_verified"], row["mfa_enabled"]) == ("doctor", "active", True, False)
    assert row["doctor_verification_status"] == doctor.doctor_profile.verification_status
    assert (agent["roles"], agent["mfa_enabled"], agent["is_staff"]) == ([roles.SUPPORT], True, True)


def test_the_list_costs_the_same_queries_for_two_accounts_or_twenty(support, django_assert_max_num_queries):
    for _ in range(2):
        DoctorProfileFactory()
    with django_assert_max_num_queries(6) as few:
        support.get(URL)
    for _ in range(18):
        DoctorProfileFactory()
    with django_assert_max_num_queries(len(few.captured_queries)):
        assert support.get(URL, {"page_size": 50}).json()["count"] == 21


def test_bad_filters_and_unknown_accounts_get_the_envelope(support):
    bad = support.get(URL, {"role": "admin", "ordering": "password"})
    missing = support.get(f"{URL}00000000-0000-0000-0000-000000000000/")

    assert bad.status_code == 400 and set(bad.json()["error"]["fields"]) == {"role", "ordering"}
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "USER_001"


def test_bulk_block_reports_an_outcome_per_id_and_applies_the_rest(support):
    agent = User.objects.get(email="agent@example.com")
    a, b = UserFactory(), UserFactory()
    unknown = "00000000-0000-0000-0000-000000000000"

    response = support.post(f"{URL}bulk/", {"action": "block", "ids": [str(a.public_id), unknown, str(agent.public_id), str(b.public_id)], "reason": "Card testing"}, format="json")

    results = {row["id"]: row for row in response.json()["results"]}
    assert response.status_code == 200
    assert results[str(a.public_id)] == {"id": str(a.public_id), "ok": True, "status": "blocked", "detail": ""}
    assert results[unknown]["error"]["code"] == "USER_001"
    assert results[str(agent.public_id)]["error"]["code"] == "AUTH_010"  # not yourself
    assert set(User.objects.filter(status="blocked").values_list("pk", flat=True)) == {a.pk, b.pk}
    assert AuditEvent.objects.filter(action="account.blocked").count() == 2


def test_bulk_input_is_checked_before_anything_changes(support):
    person = UserFactory()

    no_reason = support.post(f"{URL}bulk/", {"action": "block", "ids": [str(person.public_id)]}, format="json")
    bad_action = support.post(f"{URL}bulk/", {"action": "delete", "ids": [str(person.public_id)]}, format="json")
    too_many = support.post(f"{URL}bulk/", {"action": "unblock", "ids": [str(person.public_id)] * 101}, format="json")
    not_ids = support.post(f"{URL}bulk/", {"action": "unblock", "ids": ["7"]}, format="json")

    assert [r.status_code for r in (no_reason, bad_action, too_many, not_ids)] == [400, 400, 400, 400]
    assert "reason" in no_reason.json()["error"]["fields"] and "action" in bad_action.json()["error"]["fields"]
    person.refresh_from_db()
    assert person.status == "active"


def test_bulk_unblock_force_logout_and_resend_verification(support, django_capture_on_commit_callbacks):
    agent = User.objects.get(email="agent@example.com")
    blocked = UserFactory()
    from accounts import services

    services.user_block(user=blocked, by=agent, reason="Mistake")
    unverified = UserFactory(email="new@example.com", verified=False)

    unblock = support.post(f"{URL}bulk/", {"action": "unblock", "ids": [str(blocked.public_id)]}, format="json")
    logout = support.post(f"{URL}bulk/", {"action": "force_logout", "ids": [str(blocked.public_id)]}, format="json")
    with django_capture_on_commit_callbacks(execute=True):
        resend = support.post(f"{URL}bulk/", {"action": "resend_verification", "ids": [str(unverified.public_id), str(blocked.public_id)]}, format="json")

    assert unblock.json()["results"][0]["status"] == "active"
    assert logout.json()["results"][0]["detail"] == "signed out everywhere"
    assert [r["detail"] for r in resend.json()["results"]] == ["verification link sent", "already verified"]
    assert [m.to for m in mail.outbox] == [["new@example.com"]]


def test_one_account_verification_resend(support, django_capture_on_commit_callbacks):
    unverified = UserFactory(email="new@example.com", verified=False)

    with django_capture_on_commit_callbacks(execute=True):
        first = support.post(f"{URL}{unverified.public_id}/resend-verification/")

    assert first.json() == {"sent": True} and len(mail.outbox) == 1
    assert support.post(f"{URL}{UserFactory().public_id}/resend-verification/").json() == {"sent": False}


def test_support_cannot_block_or_sign_out_a_superuser(support):
    admin = staff_member(is_superuser=True)

    block = support.post(f"{URL}{admin.public_id}/block/", {"reason": "x"}, format="json")
    logout = support.post(f"{URL}{admin.public_id}/force-logout/")

    assert (block.status_code, logout.status_code) == (403, 403)
    admin.refresh_from_db()
    assert admin.status == "active"


@pytest.mark.parametrize("role", [roles.CONTENT_EDITOR, roles.FINANCE, roles.CLINICAL_REVIEWER])
def test_roles_outside_user_support_cannot_act_on_accounts(role):
    api = api_as(staff_member(role))
    person = UserFactory()

    acted = [
        api.post(f"{URL}bulk/", {"action": "block", "ids": [str(person.public_id)], "reason": "x"}, format="json"),
        api.post(f"{URL}{person.public_id}/block/", {"reason": "x"}, format="json"),
        api.post(f"{URL}{person.public_id}/resend-verification/"),
    ]

    assert {r.status_code for r in acted} == {403}
    person.refresh_from_db()
    assert person.status == "active"


def test_reading_accounts_needs_the_view_permission():
    assert api_as(staff_member(roles.CONTENT_EDITOR)).get(URL).status_code == 403
    assert api_as(staff_member(roles.FINANCE)).get(URL).status_code == 200  # finance looks people up, read-only
    assert api_as(UserFactory()).get(URL).json()["error"]["code"] == "AUTH_010"
