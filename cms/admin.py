"""The CMS back office. Authors ("author" group) write drafts and submit them; content editors
("content editor" group) also schedule, publish and unpublish. Every move goes through
cms.services (the same checks as anywhere else); the status is never edited as a field."""

from __future__ import annotations

from django.contrib import admin, messages
from django.db import models
from django.utils.html import format_html
from django.utils.translation import gettext_lazy as _

from medimeet.core.errors import ApplicationError

from . import services
from .forms import MediaImageAdminForm, PageAdminForm, PostAdminForm
from .models import Category, Content, MediaImage, Page, Post, Tag

# The workflow buttons of the change form (templates/admin/cms/content_change_form.html).
WORKFLOW_BUTTONS = {
    "_submit_review": lambda obj, user: services.content_submit(content=obj, by=user),
    "_publish": lambda obj, user: services.content_publish(content=obj, by=user),
    "_unpublish": lambda obj, user: services.content_unpublish(content=obj, by=user),
}
WORKFLOW_DONE = {
    Content.Status.REVIEW: "“{}” was submitted for review.",
    Content.Status.SCHEDULED: "“{}” is scheduled for {:%d %b %Y %H:%M} UTC.",
    Content.Status.PUBLISHED: "“{}” is published.",
    Content.Status.DRAFT: "“{}” is a draft again and no longer public.",
}


class ContentAdmin(admin.ModelAdmin):
    change_form_template = "admin/cms/content_change_form.html"
    list_display = ("title", "status_label", "publish_at", "author", "updated_at")
    list_filter = ("status",)
    search_fields = ("title", "slug", "summary")
    date_hierarchy = "publish_at"
    list_select_related = ("author",)
    prepopulated_fields = {"slug": ("title",)}
    actions = ["submit_selected", "publish_selected", "unpublish_selected"]
    main_fields: tuple[str, ...] = ("title", "slug", "summary", "body")
    formfield_overrides = {models.URLField: {"assume_scheme": "https"}}

    def get_fieldsets(self, request, obj=None):
        return [
            (None, {"fields": self.main_fields}),
            (_("Publishing"), {"fields": ("status", "publish_at", "author", "published_by")}),
            (_("Search and sharing"), {"fields": ("seo_title", "meta_description", "canonical_url", "social_image"), "description": _("Optional: the title, summary and cover image are used when these are blank.")}),
        ]

    def get_readonly_fields(self, request, obj=None):
        fields = ["status", "author", "published_by"]
        if not self.has_publish_permission(request):
            fields.append("publish_at")  # when it goes live is the editor's decision
        return fields

    def has_publish_permission(self, request) -> bool:
        return request.user.has_perm(f"cms.publish_{self.model._meta.model_name}")

    def has_change_permission(self, request, obj=None) -> bool:
        if not super().has_change_permission(request, obj):
            return False
        return obj is None or obj.can_edit(request.user)

    @admin.display(description=_("Status"), ordering="status")
    def status_label(self, obj: Content) -> str:
        if obj.status == Content.Status.SCHEDULED and obj.is_live:
            return _("Published")  # due: the public already sees it; the beat task catches up
        return obj.get_status_display()

    def save_model(self, request, obj, form, change) -> None:
        if not change:
            obj.author = request.user
        super().save_model(request, obj, form, change)

    def render_change_form(self, request, context, add=False, change=False, form_url="", obj=None):
        can_publish = self.has_publish_permission(request)
        editable = obj is None or obj.can_edit(request.user)
        status = obj.status if obj else Content.Status.DRAFT
        context["workflow_buttons"] = [
            (name, label)
            for name, label, shown in [
                ("_submit_review", _("Save and submit for review"), editable and not can_publish and status == Content.Status.DRAFT),
                ("_publish", _("Save and publish"), can_publish and not (obj and obj.is_live and status == Content.Status.PUBLISHED)),
                ("_unpublish", _("Unpublish (back to draft)"), can_publish and obj is not None and status != Content.Status.DRAFT),
            ]
            if shown
        ]
        return super().render_change_form(request, context, add=add, change=change, form_url=form_url, obj=obj)

    def _after_save(self, request, obj) -> None:
        for name, move in WORKFLOW_BUTTONS.items():
            if name in request.POST:
                try:
                    moved = move(obj, request.user)
                except ApplicationError as exc:
                    self.message_user(request, exc.message, messages.ERROR)
                else:
                    self.message_user(request, WORKFLOW_DONE[moved.status].format(moved.title, moved.publish_at), messages.SUCCESS)
                    obj.refresh_from_db()

    def response_add(self, request, obj, post_url_continue=None):
        self._after_save(request, obj)
        return super().response_add(request, obj, post_url_continue)

    def response_change(self, request, obj):
        self._after_save(request, obj)
        return super().response_change(request, obj)

    def _apply(self, request, queryset, move, done: str) -> None:
        moved, refused = 0, []
        for obj in queryset:
            try:
                move(content=obj, by=request.user)
                moved += 1
            except ApplicationError as exc:
                refused.append(f"“{obj.title}”: {exc.message}")
        if moved:
            self.message_user(request, done.format(moved), messages.SUCCESS)
        for line in refused:
            self.message_user(request, line, messages.ERROR)

    @admin.action(description=_("Submit selected drafts for review"), permissions=["change"])
    def submit_selected(self, request, queryset):
        self._apply(request, queryset, services.content_submit, "{} item(s) submitted for review.")

    @admin.action(description=_("Publish selected (or schedule, at their publish time)"), permissions=["publish"])
    def publish_selected(self, request, queryset):
        self._apply(request, queryset, services.content_publish, "{} item(s) published or scheduled.")

    @admin.action(description=_("Unpublish selected (back to draft)"), permissions=["publish"])
    def unpublish_selected(self, request, queryset):
        self._apply(request, queryset, services.content_unpublish, "{} item(s) back to draft.")


@admin.register(Post)
class PostAdmin(ContentAdmin):
    form = PostAdminForm
    list_display = ("title", "category", "status_label", "publish_at", "author", "updated_at")
    list_filter = ("status", "category", "tags")
    list_select_related = ("author", "category")
    main_fields = ("title", "slug", "category", "tags", "cover_image", "summary", "body")


@admin.register(Page)
class PageAdmin(ContentAdmin):
    form = PageAdminForm


@admin.register(Category)
class CategoryAdmin(admin.ModelAdmin):
    list_display = ("name", "slug", "description")
    search_fields = ("name",)
    prepopulated_fields = {"slug": ("name",)}


@admin.register(Tag)
class TagAdmin(admin.ModelAdmin):
    list_display = ("name", "slug")
    search_fields = ("name",)
    prepopulated_fields = {"slug": ("name",)}


@admin.register(MediaImage)
class MediaImageAdmin(admin.ModelAdmin):
    """The media library. Uploads go through services.media_image_create (checked by content,
    metadata stripped, resized copies made); afterwards only the title and alt text change."""

    form = MediaImageAdminForm
    list_display = ("preview", "title", "alt_text", "dimensions", "created_at")
    search_fields = ("title", "alt_text")

    def get_readonly_fields(self, request, obj=None):
        return ("preview", "address", "dimensions", "copies") if obj else ()

    def get_fields(self, request, obj=None):
        return ("preview", "title", "alt_text", "address", "dimensions", "copies") if obj else ("title", "alt_text", "image")

    @admin.display(description=_("Preview"))
    def preview(self, obj: MediaImage) -> str:
        return format_html('<img src="{}" alt="{}" width="120" style="height:auto;border-radius:4px">', obj.variant_url(120), obj.alt_text)

    @admin.display(description=_("Address to use in articles"))
    def address(self, obj: MediaImage) -> str:
        return obj.url

    @admin.display(description=_("Size"))
    def dimensions(self, obj: MediaImage) -> str:
        return f"{obj.width} × {obj.height}"

    @admin.display(description=_("Resized copies"))
    def copies(self, obj: MediaImage) -> str:
        return ", ".join(f"{v['width']} px" for v in obj.variants) or "—"

    def save_model(self, request, obj, form, change) -> None:
        if change:
            super().save_model(request, obj, form, change)
            return
        created = services.media_image_create(upload=form.cleaned_data["image"], title=obj.title, alt_text=obj.alt_text, by=request.user)
        obj.__dict__.update(created.__dict__)  # the admin goes on with the stored row (log entry, redirect)
