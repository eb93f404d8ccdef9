"""System announcements: staff write one message for everyone, patients, doctors or one person;
it shows as a banner in the portals until each person dismisses it, and is emailed once per
person when staff ask (``notify`` with a dedupe key, so a re-run of the fan-out sends nothing twice)."""

from __future__ import annotations

from django.db import transaction
from django.db.models import QuerySet
from django.utils import timezone

from accounts.models import User
from medimeet.core.audit import audit_record
from medimeet.core.events import enqueue_on_commit
from medimeet.core.models import Announcement, AnnouncementDismissal

from .services import notify

EMAIL_BATCH = 500


def announcement_event(announcement: Announcement) -> str:
    """New features are non-essential mail (people may opt out); notices and alerts are not."""
    return "announcement.feature" if announcement.kind == Announcement.Kind.FEATURE else "announcement.notice"


def announcement_save(*, announcement: Announcement, by: User, request=None) -> Announcement:
    """Create or change an announcement (the admin); queue its email when asked and not sent yet."""
    with transaction.atomic():
        creating = announcement.pk is None
        if creating:
            announcement.created_by = by
        announcement.full_clean()
        announcement.save()
        audit_record(action="announcement.created" if creating else "announcement.changed", actor=by, target=announcement, request=request, metadata={"audience": announcement.audience})
        if announcement.send_email and announcement.emailed_at is None:
            from medimeet.core.tasks import send_announcement

            enqueue_on_commit(send_announcement, announcement_id=announcement.pk)
    return announcement


def recipients_of(announcement: Announcement) -> QuerySet[User]:
    users = User.objects.filter(is_active=True, status=User.Status.ACTIVE).exclude(role=User.Role.STAFF)
    if announcement.audience == Announcement.Audience.PATIENTS:
        return users.filter(role=User.Role.PATIENT)
    if announcement.audience == Announcement.Audience.DOCTORS:
        return users.filter(role=User.Role.DOCTOR)
    if announcement.audience == Announcement.Audience.USER:
        return User.objects.filter(pk=announcement.user_id, is_active=True, status=User.Status.ACTIVE)
    return users


def announcement_send_emails(*, announcement_id: int) -> int:
    """Email everyone the announcement is for. Idempotent: one notification per person (its
    dedupe key), so a second run or a second worker queues nothing new. Returns those queued."""
    announcement = Announcement.objects.filter(pk=announcement_id, send_email=True).first()
    if announcement is None:
        return 0
    event = announcement_event(announcement)
    context = {"announcement": announcement}
    queued = 0
    for user in recipients_of(announcement).order_by("pk").iterator(chunk_size=EMAIL_BATCH):
        with transaction.atomic():
            queued += len(notify(user=user, event=event, context=context, dedupe_key=f"announcement:{announcement.pk}:{user.pk}"))
    Announcement.objects.filter(pk=announcement.pk, emailed_at__isnull=True).update(emailed_at=timezone.now())
    return queued


def announcement_dismiss(*, announcement_id: int, user: User) -> bool:
    """Hide an announcement for good for ``user``; False when it is not one shown to them."""
    announcement = announcements_for(user=user).filter(pk=announcement_id).first()
    if announcement is not None:
        AnnouncementDismissal.objects.get_or_create(announcement=announcement, user=user)
    return announcement is not None


def announcements_for(*, user: User) -> QuerySet[Announcement]:
    """Active announcements addressed to ``user`` that they have not dismissed, newest first."""
    return Announcement.objects.active().for_user(user).exclude(dismissals__user=user).order_by("-starts_at", "-id")
