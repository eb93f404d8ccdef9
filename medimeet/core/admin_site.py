"""The back office's admin site: Django's, plus an audit entry for everything staff do in it.

``MedimeetAdminSite`` is the default site (``MedimeetAdminConfig`` in ``apps.py``), so every
``@admin.register`` — ours and third-party apps' — gets ``AuditedAdmin`` mixed in: additions,
changes (the names of the changed fields, never their values), deletions and every action that
ran (not the intermediate "reason" or "are you sure" pages) become ``AuditEvent`` rows
(``admin.add`` / ``admin.change`` / ``admin.delete`` / ``admin.action``) beside Django's own
LogEntry. What each role may see is plain Django permissions (``medimeet.core.roles``).
"""

from __future__ import annotations

from functools import wraps

from django.contrib import admin
from django.template.response import TemplateResponse

from .audit import audit_record

_MAX_IDS = 200  # ids listed in one action's audit entry; the count is always exact


def _changed_fields(message) -> list[str]:
    fields: list[str] = []
    for part in message if isinstance(message, list) else []:
        for kind in ("changed", "added", "deleted"):
            if kind in part:
                fields += part[kind].get("fields", []) or [part[kind].get("name", "")]
    return [str(name) for name in fields if name]


class AuditedAdmin:
    """Mixed into every registered ModelAdmin by ``MedimeetAdminSite.register``."""

    def _audit(self, request, action: str, *, target=None, metadata: dict | None = None) -> None:
        audit_record(
            action=action,
            actor=request.user,
            target=target,
            request=request,
            metadata={"model": self.model._meta.label_lower, **(metadata or {})},
        )

    def log_addition(self, request, obj, message):
        entry = super().log_addition(request, obj, message)
        self._audit(request, "admin.add", target=obj)
        return entry

    def log_change(self, request, obj, message):
        entry = super().log_change(request, obj, message)
        self._audit(request, "admin.change", target=obj, metadata={"fields": _changed_fields(message)})
        return entry

    def log_deletions(self, request, queryset):
        entries = super().log_deletions(request, queryset)
        for obj in queryset:
            self._audit(request, "admin.delete", target=obj)
        return entries

    def _log_config_change(self, request, changed_fields):
        """django-constance's settings page ("Platform settings") saves outside the ModelAdmin
        hooks and logs through this method of its admin: audit it like a change."""
        entry = super()._log_config_change(request, changed_fields)
        self._audit(request, "admin.change", metadata={"fields": [str(name) for name in changed_fields]})
        return entry

    def get_actions(self, request):
        actions = super().get_actions(request)
        return {key: (_audited_action(func, name), name, description) for key, (func, name, description) in actions.items()}


def _audited_action(func, name: str):
    @wraps(func)
    def run(model_admin, request, queryset):
        ids = [str(pk) for pk in queryset.values_list("pk", flat=True)[: _MAX_IDS + 1]]  # before: the action may delete
        count = len(ids) if len(ids) <= _MAX_IDS else queryset.count()
        response = func(model_admin, request, queryset)
        if not isinstance(response, TemplateResponse):  # a TemplateResponse asks first (reason, confirmation)
            model_admin._audit(request, "admin.action", metadata={"action": name, "ids": ids[:_MAX_IDS], "count": count})
        return response

    return run


class MedimeetAdminSite(admin.AdminSite):
    site_header = "MediMeet administration"
    site_title = "MediMeet administration"
    index_title = "Back office"

    def register(self, model_or_iterable, admin_class=None, **options):
        admin_class = admin_class or admin.ModelAdmin
        if not issubclass(admin_class, AuditedAdmin):
            admin_class = type(admin_class.__name__, (AuditedAdmin, admin_class), {"__module__": admin_class.__module__, "__doc__": admin_class.__doc__})
        return super().register(model_or_iterable, admin_class, **options)
