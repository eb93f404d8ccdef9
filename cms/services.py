"""Every write of the CMS: the publishing workflow and the media library.

Who may do what (``docs/architecture.md``, CMS): an author writes drafts and submits them for
review; a content editor (the ``cms.publish_post`` / ``cms.publish_page`` permission, given by
the "content editor" group) schedules, publishes and takes content back to draft.
"""

from __future__ import annotations

import io
import secrets
from datetime import datetime

from django.conf import settings
from django.core.files.base import ContentFile
from django.core.files.uploadedfile import UploadedFile
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext
from PIL import Image

from medimeet.core.audit import audit_record
from medimeet.core.errors import ApplicationError
from medimeet.core.uploads import image_load

from .models import Content, MediaImage, Page, Post

# Widths of the copies made for srcset (only those narrower than the original).
IMAGE_VARIANT_WIDTHS = (480, 960, 1600)


def _can_publish(user, content: Content) -> bool:
    return user.has_perm(f"cms.publish_{content._meta.model_name}")


def _locked(content: Content) -> Content:
    # Lock the row we are deciding about, so two editors acting at once serialise.
    return type(content).objects.select_for_update().get(pk=content.pk)


def content_submit(*, content: Content, by) -> Content:
    """Draft → submitted for review, by its author (or an editor)."""
    with transaction.atomic():
        content = _locked(content)
        if content.author_id != by.pk and not _can_publish(by, content):
            raise ApplicationError("CMS_005")
        if content.status != Content.Status.DRAFT:
            raise ApplicationError("CMS_003", gettext("Only a draft can be submitted; this is %(status)s.") % {"status": content.get_status_display().lower()})
        content.status = Content.Status.REVIEW
        content.save(update_fields=["status", "updated_at"])
        audit_record(action=f"cms.{content._meta.model_name}_submitted", actor=by, target=content)
    return content


def content_publish(*, content: Content, by, publish_at: datetime | None = None) -> Content:
    """Publish now, or schedule for ``publish_at`` when that is in the future (editors only).
    Without ``publish_at`` the content's own publish time is used, else now."""
    if not _can_publish(by, content):
        raise ApplicationError("CMS_004")
    with transaction.atomic():
        content = _locked(content)
        now = timezone.now()
        when = publish_at or content.publish_at or now
        if content.status == Content.Status.PUBLISHED and content.publish_at and content.publish_at <= now:
            raise ApplicationError("CMS_003", gettext("This is already published."))
        content.publish_at = when
        content.status = Content.Status.SCHEDULED if when > now else Content.Status.PUBLISHED
        content.published_by = by
        content.save(update_fields=["publish_at", "status", "published_by", "updated_at"])
        audit_record(action=f"cms.{content._meta.model_name}_{content.status}", actor=by, target=content, metadata={"publish_at": when.isoformat()})
    return content


def content_unpublish(*, content: Content, by) -> Content:
    """Back to draft (editors only): it leaves the site, the feeds and the sitemap at once."""
    if not _can_publish(by, content):
        raise ApplicationError("CMS_004")
    with transaction.atomic():
        content = _locked(content)
        if content.status == Content.Status.DRAFT:
            raise ApplicationError("CMS_003", gettext("This is already a draft."))
        content.status = Content.Status.DRAFT
        content.publish_at = None
        content.save(update_fields=["status", "publish_at", "updated_at"])
        audit_record(action=f"cms.{content._meta.model_name}_unpublished", actor=by, target=content)
    return content


def content_publish_due(*, now: datetime | None = None) -> int:
    """Mark scheduled content whose time has come as published. Visibility never waits for
    this (``ContentQuerySet.live`` decides at query time); it keeps the admin's status column
    true. A conditional update: running it twice changes nothing the second time."""
    now = now or timezone.now()
    return sum(
        model.objects.filter(status=Content.Status.SCHEDULED, publish_at__lte=now).update(status=Content.Status.PUBLISHED, updated_at=now)
        for model in (Post, Page)
    )


def media_image_create(*, upload: UploadedFile, title: str, alt_text: str, by) -> MediaImage:
    """Add an image to the media library: checked by content (JPEG or PNG), re-encoded without
    its metadata, with narrower copies for srcset. Alt text is required."""
    if not alt_text.strip():
        raise ApplicationError("CMS_006", gettext("Describe the image for people who cannot see it."), fields={"alt_text": [gettext("Alt text is required.")]})
    image, detected = image_load(upload, max_bytes=settings.CMS_IMAGE_MAX_BYTES, code="CMS_006", field="image")
    if detected.kind == "jpeg" or "A" not in image.getbands():
        image, fmt, ext = image.convert("RGB"), "JPEG", "jpg"
    else:
        image, fmt, ext = image.convert("RGBA"), "PNG", "png"

    def encoded(copy: Image.Image) -> ContentFile:
        buffer = io.BytesIO()
        copy.save(buffer, format=fmt, **({"quality": 85, "optimize": True, "progressive": True} if fmt == "JPEG" else {"optimize": True}))
        return ContentFile(buffer.getvalue())

    stem = secrets.token_hex(8)
    media = MediaImage(title=title.strip() or stem, alt_text=alt_text.strip(), uploaded_by=by, width=image.width, height=image.height)
    written: list[str] = []
    try:
        with transaction.atomic():
            media.image.save(f"{stem}.{ext}", encoded(image), save=False)
            written.append(media.image.name)
            for width in IMAGE_VARIANT_WIDTHS:
                if width >= image.width:
                    break
                height = round(image.height * width / image.width)
                name = media.image.storage.save(f"{media.image.name.rsplit('.', 1)[0]}-{width}.{ext}", encoded(image.resize((width, height), Image.LANCZOS)))
                written.append(name)
                media.variants.append({"width": width, "height": height, "name": name})
            media.save()
            audit_record(action="cms.image_uploaded", actor=by, target=media)
    except Exception:
        for name in written:  # no orphaned files when the row is not stored
            media.image.storage.delete(name)
        raise
    return media
