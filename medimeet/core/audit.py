"""The audit log primitive: ``audit_record`` is the one way to write an audit entry."""

from __future__ import annotations

from typing import Any

from django.db import models
from django.http import HttpRequest

from . import sql
from .models import AuditEvent
from .requests import client_ip, request_id_of


def audit_record(
    *,
    action: str,
    actor=None,
    target: models.Model | None = None,
    subject_user=None,
    request: HttpRequest | None = None,
    metadata: dict[str, Any] | None = None,
) -> AuditEvent:
    """Append one entry: ``actor`` did ``action`` to ``target`` (about ``subject_user``)."""
    if actor is not None and not getattr(actor, "is_authenticated", False):
        actor = None
    entry = AuditEvent(
        actor=actor,
        actor_role=getattr(actor, "role", "") if actor else "",
        action=action,
        target_type=target._meta.label_lower if target is not None else "",
        target_id=str(target.pk) if target is not None else "",
        subject_user=subject_user,
        ip_address=client_ip(request) if request is not None else None,
        user_agent=(request.META.get("HTTP_USER_AGENT", "")[:300] if request is not None else ""),
        request_id=request_id_of(request) if request is not None else "",
        metadata=metadata or {},
    )
    # The same row as AuditEvent.objects.create, for far less CPU: every booking and every
    # sensitive read writes one (medimeet/core/sql.py).
    return sql.insert(entry)
