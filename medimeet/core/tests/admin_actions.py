"""Running admin actions in tests the way the back office does: a POST to the changelist naming
the action and the selected rows; for actions that ask for a reason, the same POST first (the
page asking) and then again with ``apply`` and the reason. Shared by each app's
``tests/test_admin_actions.py`` and the staff-role tests."""

from __future__ import annotations

from collections.abc import Iterable

from django.db.models import Model

from accounts.tests.factories import staff_member
from medimeet.core.models import AuditEvent


def signed_in(client, *role_names: str):
    """A staff member of those roles (``medimeet.core.roles``), signed in on ``client``."""
    staff = staff_member(*role_names)
    client.force_login(staff)
    return staff


def changelist(model: type[Model]) -> str:
    return f"/admin/{model._meta.app_label}/{model._meta.model_name}/"


def offered_actions(client, url: str) -> set[str]:
    """The actions the changelist offers the signed-in person (none: no action form at all)."""
    form = client.get(url).context["action_form"]
    return {name for name, _ in form.fields["action"].choices} if form else set()


def run_action(client, url: str, action: str, rows: Iterable[Model], **data):
    return client.post(url, {"action": action, "_selected_action": [row.pk for row in rows], **data})


def ask_then_apply(client, url: str, action: str, rows: Iterable[Model], **reason):
    """The first POST (answered with the page asking for the reason) and the applied one."""
    rows = list(rows)
    return run_action(client, url, action, rows), run_action(client, url, action, rows, apply="1", **reason)


def audited_actions() -> list[tuple[int | None, str, str, list[str], int]]:
    """Every ``admin.action`` entry as (actor id, model, action, sorted ids, count)."""
    return [
        (event.actor_id, event.metadata["model"], event.metadata["action"], sorted(event.metadata["ids"]), event.metadata["count"])
        for event in AuditEvent.objects.filter(action="admin.action").order_by("created_at", "pk")
    ]


def ids(*rows: Model) -> list[str]:
    return sorted(str(row.pk) for row in rows)
