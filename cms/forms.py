"""Admin forms: the rich-text editor widget and the media library upload."""

from __future__ import annotations

from django import forms
from django.conf import settings
from django.db import models

from medimeet.core.errors import ApplicationError
from medimeet.core.uploads import image_load

from .models import MediaImage, Page, Post


class RichTextWidget(forms.Textarea):
    """A textarea that static/js/cms-editor.js turns into a small WYSIWYG editor (headings,
    bold, italic, lists, quotes, links, images). Without JavaScript it stays an HTML textarea.
    Either way the model sanitises what is saved (cms/sanitize.py)."""

    def __init__(self, attrs=None):
        super().__init__({"rows": 20, "data-mm-rich-text": "", **(attrs or {})})

    class Media:
        js = ("js/cms-editor.js",)
        css = {"all": ("css/cms-editor.css",)}


def https_urls(db_field, **kwargs):
    """Form fields of the model, with a scheme-less canonical URL read as https://."""
    if isinstance(db_field, models.URLField):
        kwargs["assume_scheme"] = "https"
    return db_field.formfield(**kwargs)


CONTENT_FIELDS = ["title", "slug", "summary", "body", "publish_at", "seo_title", "meta_description", "canonical_url", "social_image"]


class PostAdminForm(forms.ModelForm):
    class Meta:
        model = Post
        fields = [*CONTENT_FIELDS, "category", "tags", "cover_image"]
        formfield_callback = https_urls
        widgets = {"body": RichTextWidget, "summary": forms.Textarea(attrs={"rows": 2}), "meta_description": forms.Textarea(attrs={"rows": 2})}


class PageAdminForm(forms.ModelForm):
    class Meta:
        model = Page
        fields = CONTENT_FIELDS
        formfield_callback = https_urls
        widgets = PostAdminForm.Meta.widgets


class MediaImageAdminForm(forms.ModelForm):
    class Meta:
        model = MediaImage
        fields = ["title", "alt_text", "image"]

    def clean_image(self):
        upload = self.cleaned_data.get("image")
        if upload and not self.instance.pk:
            try:
                image_load(upload, max_bytes=settings.CMS_IMAGE_MAX_BYTES, code="CMS_006", field="image")
            except ApplicationError as exc:
                raise forms.ValidationError(exc.fields.get("image", [exc.message])) from exc
        return upload
