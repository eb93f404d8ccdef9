"""Blog posts, information pages, their categories and tags, and the media library.

Posts and pages share one workflow (``Content.Status``): an author writes a draft and submits
it for review; a content editor schedules it (a publish time in the future) or publishes it.
What the public sees is decided at query time (``ContentQuerySet.live``: scheduled or
published, and the publish time has come), so a scheduled post appears on the minute without
waiting for a worker; a beat task only brings the stored status in line for the admin.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from medimeet.core.models import TimeStampedModel

from .sanitize import html_sanitize, html_to_text

DESCRIPTION_MAX = 160
SEO_TITLE_MAX = 70


class Category(models.Model):
    name = models.CharField(max_length=80, unique=True)
    slug = models.SlugField(max_length=90, unique=True)
    description = models.CharField(max_length=DESCRIPTION_MAX, blank=True, help_text=_("Shown on the category page and as its meta description."))

    class Meta:
        ordering = ["name"]
        verbose_name_plural = _("categories")

    def __str__(self) -> str:
        return self.name

    def get_absolute_url(self) -> str:
        return reverse("cms:category", args=[self.slug])


class Tag(models.Model):
    name = models.CharField(max_length=60, unique=True)
    slug = models.SlugField(max_length=70, unique=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    def get_absolute_url(self) -> str:
        return reverse("cms:tag", args=[self.slug])


def media_upload_to(instance: MediaImage, filename: str) -> str:
    return f"cms/images/{timezone.now():%Y/%m}/{filename}"


class MediaImage(TimeStampedModel):
    """An image in the media library: the re-encoded original (metadata stripped) and
    narrower copies for ``srcset`` (``variants``: ``[{"width", "height", "name"}]``, narrowest first)."""

    title = models.CharField(max_length=120)
    alt_text = models.CharField(max_length=250, help_text=_("What the image shows, for people using screen readers."))
    image = models.ImageField(upload_to=media_upload_to)
    width = models.PositiveIntegerField(editable=False, default=0)
    height = models.PositiveIntegerField(editable=False, default=0)
    variants = models.JSONField(default=list, editable=False)
    uploaded_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+", editable=False)

    class Meta:
        ordering = ["-created_at"]
        constraints = [models.CheckConstraint(condition=~Q(alt_text=""), name="cms_image_has_alt_text")]

    def __str__(self) -> str:
        return self.title

    @property
    def url(self) -> str:
        return self.image.url

    @property
    def srcset(self) -> str:
        storage = self.image.storage
        sizes = [f"{storage.url(v['name'])} {v['width']}w" for v in self.variants]
        return ", ".join([*sizes, f"{self.image.url} {self.width}w"])

    @property
    def card_url(self) -> str:
        return self.variant_url(480)

    @property
    def large_url(self) -> str:
        return self.variant_url(960)

    def variant_url(self, at_least: int) -> str:
        """The narrowest copy at least ``at_least`` pixels wide (the original if none is)."""
        for variant in self.variants:
            if variant["width"] >= at_least:
                return self.image.storage.url(variant["name"])
        return self.image.url


class ContentQuerySet(models.QuerySet):
    def live(self, now=None) -> ContentQuerySet:
        """What the public may see: scheduled or published, with the publish time reached."""
        return self.filter(status__in=Content.LIVE_STATUSES, publish_at__lte=now or timezone.now())


class Content(TimeStampedModel):
    """What posts and pages share: the body, the workflow and the SEO fields."""

    class Status(models.TextChoices):
        DRAFT = "draft", _("Draft")
        REVIEW = "review", _("Submitted for review")
        SCHEDULED = "scheduled", _("Scheduled")
        PUBLISHED = "published", _("Published")

    LIVE_STATUSES = (Status.SCHEDULED, Status.PUBLISHED)

    title = models.CharField(max_length=200)
    slug = models.SlugField(max_length=200, unique=True, help_text=_("The address: lower-case words joined by hyphens."))
    summary = models.CharField(max_length=300, blank=True, help_text=_("One or two sentences shown in lists; the start of the text when blank."))
    body = models.TextField(help_text=_("Cleaned when saved: only headings, paragraphs, lists, links, images, quotes and tables are kept."))
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.DRAFT, editable=False)
    publish_at = models.DateTimeField(null=True, blank=True, help_text=_("When it goes live. Blank: now, when an editor publishes."))
    author = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+", editable=False)
    published_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+", editable=False)

    seo_title = models.CharField(_("search title"), max_length=SEO_TITLE_MAX, blank=True, help_text=_("For search results and sharing; the title when blank."))
    meta_description = models.CharField(max_length=DESCRIPTION_MAX, blank=True, help_text=_("For search results and sharing; the summary when blank."))
    canonical_url = models.URLField(_("canonical URL"), blank=True, help_text=_("Only when the same text lives at another address first; this page's own address when blank."))
    social_image = models.ForeignKey(MediaImage, on_delete=models.SET_NULL, null=True, blank=True, related_name="+", verbose_name=_("sharing image"), help_text=_("Open Graph / Twitter card image; the cover image when blank."))

    objects = ContentQuerySet.as_manager()

    class Meta:
        abstract = True

    def __str__(self) -> str:
        return self.title

    def save(self, *args, **kwargs) -> None:
        # The invariant that protects every reader: a stored body is always sanitised,
        # whichever path (admin, service, shell) wrote it.
        self.body = html_sanitize(self.body)
        super().save(*args, **kwargs)

    @classmethod
    def status_constraints(cls, prefix: str) -> list[models.BaseConstraint]:
        return [
            models.CheckConstraint(condition=Q(status__in=[s.value for s in cls.Status]), name=f"{prefix}_status_valid"),
            # Live content always knows when it went (or goes) live.
            models.CheckConstraint(condition=Q(status__in=["draft", "review"]) | Q(publish_at__isnull=False), name=f"{prefix}_live_has_publish_at"),
        ]

    @property
    def is_live(self) -> bool:
        return self.status in self.LIVE_STATUSES and self.publish_at is not None and self.publish_at <= timezone.now()

    @property
    def description(self) -> str:
        """Meta description: the one written for search, else the summary, else the text's start."""
        text = self.meta_description or self.summary or html_to_text(self.body)
        return text if len(text) <= DESCRIPTION_MAX else text[: DESCRIPTION_MAX - 1].rsplit(" ", 1)[0] + "…"

    @property
    def excerpt(self) -> str:
        text = self.summary or html_to_text(self.body)
        return text if len(text) <= 220 else text[:219].rsplit(" ", 1)[0] + "…"

    @property
    def reading_minutes(self) -> int:
        return max(1, round(len(html_to_text(self.body).split()) / 200))

    def can_edit(self, user) -> bool:
        """Editors change anything; an author only their own text while it is a draft."""
        if user.has_perm(f"cms.publish_{self._meta.model_name}"):
            return True
        return self.author_id == user.pk and self.status == self.Status.DRAFT


class Post(Content):
    category = models.ForeignKey(Category, on_delete=models.PROTECT, related_name="posts")
    tags = models.ManyToManyField(Tag, blank=True, related_name="posts")
    cover_image = models.ForeignKey(MediaImage, on_delete=models.SET_NULL, null=True, blank=True, related_name="+")

    class Meta:
        ordering = ["-publish_at", "-pk"]
        permissions = [("publish_post", "Can schedule, publish and unpublish posts")]
        constraints = Content.status_constraints("cms_post")
        indexes = [models.Index(fields=["status", "-publish_at"], name="cms_post_status_publish_idx")]

    def get_absolute_url(self) -> str:
        return reverse("cms:post", args=[self.slug])


class Page(Content):
    """An information page (about us, how consultations work, privacy) at /pages/<slug>/."""

    class Meta:
        ordering = ["title"]
        permissions = [("publish_page", "Can schedule, publish and unpublish pages")]
        constraints = Content.status_constraints("cms_page")
        indexes = [models.Index(fields=["status", "-publish_at"], name="cms_page_status_publish_idx")]

    def get_absolute_url(self) -> str:
        return reverse("cms:page", args=[self.slug])
