"""The notification layer: ``notify(user=..., event=..., context=...)`` is how every message
leaves MediMeet (see catalogue.py for the events, docs/architecture.md for the design)."""

from .services import Attachment, notify

__all__ = ["Attachment", "notify"]
