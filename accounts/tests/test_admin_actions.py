"""The user admin's actions, run through the admin by support (the role that owns them): signing
someone out everywhere and unblocking; other roles are not offered them and cannot post them."""

from __future__ import annotations

import pytest
from allauth.usersessions.models import UserSession
from django.test import Client
from rest_framework.test import APIClient

from accounts import services
from accounts.models import User
from medimeet.core import roles
from medimeet.core.models import AuditEvent
from medimeet.core.tests.admin_actions import audited_actions, changelist, ids, offered_actions, run_action

from .factories import UserFactory, staff_member
from .test_api import bearer, error_code, login

pytestmark = pytest.mark.django_db
USERS = changelist(User)


def signed_in_everywhere(email: str) -> tuple[dict, Client]:
    """A person with API tokens and a tracked web session."""
    tokens = login(APIClient(), email)
    web = Client()
    web.force_login(User.objects.get(email=email))
    web.get("/account/")  # creates the tracked web session
    return tokens, web


def blocked(*people: User) -> list[User]:
    agent = staff_member(roles.SUPPORT)
    return [services.user_block(user=person, by=agent, reason="Card testing") for person in people]


def test_support_signs_a_person_out_of_every_device_from_the_admin(client):
    support = staff_member(roles.SUPPORT)
    person = UserFactory(email="p@example.com")
    tokens, web = signed_in_everywhere("p@example.com")
    client.force_login(support)

    response = run_action(client, USERS, "force_logout", [person])

    assert response.status_code == 302
    assert error_code(bearer(tokens["access"]).get("/api/v1/auth/me/")) == "AUTH_004"
    assert APIClient().post("/api/v1/auth/token/refresh/", {"refresh": tokens["refresh"]}, format="json").status_code == 401
    assert not UserSession.objects.filter(user=person).exists()
    assert web.get("/account/").status_code == 302
    assert AuditEvent.objects.filter(action="account.force_logout", actor=support, subject_user=person).count() == 1
    assert audited_actions() == [(support.pk, "accounts.user", "force_logout", ids(person), 1)]


def test_support_unblocks_the_selected_people_from_the_admin(client):
    support = staff_member(roles.SUPPORT)
    first, second = blocked(UserFactory(), UserFactory())
    client.force_login(support)

    response = run_action(client, USERS, "unblock_users", [first, second])

    assert response.status_code == 302
    assert list(User.objects.filter(pk__in=[first.pk, second.pk]).values_list("status", "blocked_reason", "blocked_at")) == [("active", "", None)] * 2
    assert AuditEvent.objects.filter(action="account.unblocked", actor=support).count() == 2
    assert audited_actions() == [(support.pk, "accounts.user", "unblock_users", ids(first, second), 2)]


@pytest.mark.parametrize("role", [roles.FINANCE, roles.COMPLIANCE, roles.VERIFICATION])
def test_roles_that_only_look_at_people_are_not_offered_sign_out_or_unblock_and_cannot_post_them(client, role):
    person = UserFactory(email="p@example.com")
    (person,) = blocked(person)
    other = UserFactory(email="o@example.com")
    tokens = login(APIClient(), "o@example.com")
    client.force_login(staff_member(role))

    offered = offered_actions(client, USERS)
    run_action(client, USERS, "unblock_users", [person])
    run_action(client, USERS, "force_logout", [other])

    person.refresh_from_db()
    assert offered.isdisjoint({"force_logout", "unblock_users", "block_users", "resend_verification"})
    assert person.status == "blocked"
    assert bearer(tokens["access"]).get("/api/v1/auth/me/").status_code == 200
    assert audited_actions() == []


@pytest.mark.parametrize("role", [roles.CONTENT_EDITOR, roles.AUTHOR, roles.CLINICAL_REVIEWER])
def test_roles_outside_people_get_403_on_the_user_admin_and_change_nothing(client, role):
    (person,) = blocked(UserFactory())
    client.force_login(staff_member(role))

    response = run_action(client, USERS, "unblock_users", [person])

    person.refresh_from_db()
    assert response.status_code == 403
    assert person.status == "blocked"
    assert audited_actions() == []
