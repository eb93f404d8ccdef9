from __future__ import annotations

from django.db.models import QuerySet

from medimeet.core.models import Notification


def notifications_for(*, user) -> QuerySet[Notification]:
    """A person's own messages, newest first, for the history page and API (the bodies are
    not loaded: the list shows subjects and statuses)."""
    return Notification.objects.filter(user=user).defer("text_body", "html_body", "attachments", "to").order_by("-created_at", "-id")
