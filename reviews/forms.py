"""Forms of the review pages: writing (stars per category, text, photos), appeal, report, reply."""

from __future__ import annotations

from django import forms
from django.conf import settings
from django.utils.functional import lazy
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext

from . import services
from .models import OVERALL, RatingCategory, ReviewFlag

STARS = [(n, lazy(lambda n: ngettext("%(count)d star", "%(count)d stars", n) % {"count": n}, str)(n)) for n in range(5, 0, -1)]


class MultipleFileInput(forms.ClearableFileInput):
    allow_multiple_selected = True


class MultipleFileField(forms.FileField):
    """Several files in one input; each is checked by content in the service."""

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("widget", MultipleFileInput(attrs={"accept": "image/jpeg,image/png", "class": "form-control"}))
        super().__init__(*args, **kwargs)

    def clean(self, data, initial=None):
        files = data if isinstance(data, list | tuple) else [data] if data else []
        return [super(MultipleFileField, self).clean(item, initial) for item in files]


class ReviewForm(forms.Form):
    """Overall stars, then one star question per active category (optional), then the text."""

    overall = forms.TypedChoiceField(label=_("Overall"), choices=STARS, coerce=int, widget=forms.RadioSelect)
    text = forms.CharField(
        label=_("Your review"), min_length=services.TEXT_MIN, max_length=services.TEXT_MAX,
        widget=forms.Textarea(attrs={"rows": 6, "class": "form-control"}),
        help_text=_("What went well, what could be better. Do not include phone numbers, email addresses or links."),
    )

    def __init__(self, *args, with_photos: bool = True, **kwargs):
        super().__init__(*args, **kwargs)
        self.categories = list(RatingCategory.objects.filter(is_active=True))
        for category in self.categories:
            self.fields[f"score_{category.code}"] = forms.TypedChoiceField(
                label=category.name, help_text=category.question, choices=STARS, coerce=int, widget=forms.RadioSelect, required=False, empty_value=None,
            )
        self.fields["text"] = self.fields.pop("text")  # the text after the stars
        if with_photos:
            self.fields["photos"] = MultipleFileField(label=_("Photos"), required=False, help_text=_("Up to %(count)d JPEG or PNG images, e.g. the clinic or a prescription with personal details covered. Location data is removed.") % {"count": settings.REVIEWS_MAX_PHOTOS})

    def category_fields(self):
        return [self[f"score_{category.code}"] for category in self.categories]

    def scores(self) -> dict[str, int]:
        data = self.cleaned_data
        return {OVERALL: data["overall"], **{c.code: data[f"score_{c.code}"] for c in self.categories if data.get(f"score_{c.code}")}}


class AppealForm(forms.Form):
    statement = forms.CharField(label=_("Why should the decision change?"), min_length=10, max_length=services.STATEMENT_MAX, widget=forms.Textarea(attrs={"rows": 4, "class": "form-control"}))


class FlagForm(forms.Form):
    reason = forms.ChoiceField(label=_("What is wrong with this review?"), choices=ReviewFlag.Reason.choices, widget=forms.RadioSelect)
    note = forms.CharField(label=_("Anything the moderators should know"), required=False, max_length=services.STATEMENT_MAX, widget=forms.Textarea(attrs={"rows": 3, "class": "form-control"}))


class ReplyForm(forms.Form):
    text = forms.CharField(label=_("Your public reply"), max_length=services.TEXT_MAX, widget=forms.Textarea(attrs={"rows": 3, "class": "form-control"}))


class ModerationForm(forms.Form):
    """The admin's reason (and, to redact, the new text) for a moderation decision."""

    reason = forms.CharField(widget=forms.Textarea(attrs={"rows": 3}), help_text=_("Shown to the author when the review is rejected."))
    text = forms.CharField(required=False, widget=forms.Textarea(attrs={"rows": 6}), help_text=_("Redact only: the review's new text."))
