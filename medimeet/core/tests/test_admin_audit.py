"""Everything staff do in the admin leaves an audit entry: additions, changes (field names, never
values), deletions and the bulk actions — including third-party apps' admins."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import Group
from django.core import mail

from accounts.tests.factories import UserFactory, staff_member
from appointments.models import PlatformHoliday
from medimeet.core import roles
from medimeet.core.models import AuditEvent

pytestmark = pytest.mark.django_db


@pytest.fixture
def superuser_client(client):
    client.force_login(staff_member(is_superuser=True))
    return client


def test_adding_changing_and_deleting_through_the_admin_is_audited(superuser_client):
    superuser_client.post("/admin/appointments/platformholiday/add/", {"date": "2026-12-25", "name": "Christmas", "country": ""})
    holiday = PlatformHoliday.objects.get()
    superuser_client.post(f"/admin/appointments/platformholiday/{holiday.pk}/change/", {"date": "2026-12-25", "name": "Christmas Day", "country": ""})
    superuser_client.post(f"/admin/appointments/platformholiday/{holiday.pk}/delete/", {"post": "yes"})

    events = list(AuditEvent.objects.filter(action__startswith="admin.").order_by("created_at").values_list("action", "target_id", "metadata"))
    assert events == [
        ("admin.add", str(holiday.pk), {"model": "appointments.platformholiday"}),
        ("admin.change", str(holiday.pk), {"model": "appointments.platformholiday", "fields": ["Name"]}),
        ("admin.delete", str(holiday.pk), {"model": "appointments.platformholiday"}),
    ]
    assert not PlatformHoliday.objects.exists()


def test_a_bulk_action_is_audited_with_who_ran_it_and_on_which_rows(client):
    support = staff_member(roles.SUPPORT)
    people = UserFactory.create_batch(2)
    client.force_login(support)

    client.post("/admin/accounts/user/", {"action": "block_users", "_selected_action": [p.pk for p in people]})

    entry = AuditEvent.objects.get(action="admin.action")
    assert entry.actor == support and entry.metadata["action"] == "block_users"
    assert sorted(entry.metadata["ids"]) == sorted(str(p.pk) for p in people) and entry.metadata["count"] == 2
    assert AuditEvent.objects.filter(action="account.blocked").count() == 2  # and the service's own entries


def test_bulk_delete_is_audited_after_the_confirmation_not_before(superuser_client):
    holidays = [PlatformHoliday.objects.create(date=f"2026-12-{day}", name="Closed") for day in (24, 31)]
    action = {"action": "delete_selected", "_selected_action": [h.pk for h in holidays]}

    superuser_client.post("/admin/appointments/platformholiday/", action)
    asked = AuditEvent.objects.filter(action__startswith="admin.").count()
    superuser_client.post("/admin/appointments/platformholiday/", {**action, "post": "yes"})

    assert asked == 0
    assert AuditEvent.objects.get(action="admin.action").metadata["count"] == 2
    assert AuditEvent.objects.filter(action="admin.delete").count() == 2


def test_changing_a_role_group_in_the_admin_is_audited(superuser_client):
    person = staff_member(email="agent@example.com", first_name="Ravi", last_name="Kumar")
    url = f"/admin/accounts/user/{person.pk}/change/"
    page = superuser_client.get(url)
    data = {
        "email": person.email,
        "first_name": "Ravi",
        "last_name": "Kumar",
        "timezone": person.timezone,
        "language": person.language,
        "role": person.role,
        "is_active": "on",
        "is_staff": "on",
    }
    for inline in page.context["inline_admin_formsets"]:
        prefix = inline.formset.prefix
        data |= {f"{prefix}-TOTAL_FORMS": "0", f"{prefix}-INITIAL_FORMS": "0"}

    response = superuser_client.post(url, data | {"groups": [Group.objects.get(name=roles.FINANCE).pk]})

    assert response.status_code == 302, response.context["adminform"].form.errors

    assert person.groups.filter(name=roles.FINANCE).exists()
    assert AuditEvent.objects.get(action="admin.change", target_id=str(person.pk)).metadata["fields"] == ["Groups"]


def test_support_resends_the_verification_link_only_to_unverified_accounts(client, django_capture_on_commit_callbacks):
    unverified, verified = UserFactory(email="new@example.com", verified=False), UserFactory(email="old@example.com")
    client.force_login(staff_member(roles.SUPPORT))

    with django_capture_on_commit_callbacks(execute=True):
        client.post("/admin/accounts/user/", {"action": "resend_verification", "_selected_action": [unverified.pk, verified.pk]})

    assert [m.to for m in mail.outbox] == [["new@example.com"]]
    assert AuditEvent.objects.filter(action="account.verification_resent", subject_user=unverified).count() == 1


def test_changing_a_platform_setting_and_a_feature_flag_in_the_admin_is_audited(superuser_client):
    from waffle.models import Flag

    page = superuser_client.get("/admin/constance/config/")
    form = page.context["form"]
    data = {}
    for name in form.fields:
        value = form[name].value()
        if isinstance(value, bool):
            if value:
                data[name] = "on"
        elif value is not None:
            data[name] = value
    data["SUPPORT_EMAIL"] = "help@medimeet.example"
    superuser_client.post("/admin/constance/config/", data)
    flag = Flag.objects.get(name="new-booking-flow")
    superuser_client.post("/admin/waffle/flag/", {"action": "enable_for_all", "_selected_action": [flag.pk]})

    setting = AuditEvent.objects.get(action="admin.change", metadata__model="constance.config")
    assert setting.metadata["fields"] == ["SUPPORT_EMAIL"]
    assert AuditEvent.objects.filter(action="admin.action", metadata__action="enable_for_all", metadata__model="waffle.flag").count() == 1
