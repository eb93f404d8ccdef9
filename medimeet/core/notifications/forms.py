from __future__ import annotations

import re

from django import forms
from django.conf import settings
from django.utils.translation import get_language_info
from django.utils.translation import gettext_lazy as _

from .catalogue import CATEGORIES

OFFSET = re.compile(r"^(\d+)\s*(m|min|h|d)$")
UNIT_MINUTES = {"m": 1, "min": 1, "h": 60, "d": 24 * 60}


def offsets_label(minutes: list[int]) -> str:
    """[1440, 60, 15] → "24h, 1h, 15m" (the form's own notation)."""
    return ", ".join(f"{m // 60}h" if m % 60 == 0 else f"{m}m" for m in minutes)


def offsets_parse(text: str) -> list[int]:
    """ "24h, 1h, 15m" → [1440, 60, 15] minutes (also the platform's default reminders)."""
    minutes = []
    for part in filter(None, (p.strip().lower() for p in (text or "").split(","))):
        match = OFFSET.match(part)
        if not match:
            raise forms.ValidationError(_("Write each time as a number and a unit, e.g. 24h, 90m or 2d."))
        minutes.append(int(match.group(1)) * UNIT_MINUTES[match.group(2)])
    if len(minutes) > 6 or any(not 5 <= m <= 7 * 24 * 60 for m in minutes):
        raise forms.ValidationError(_("Choose up to six reminders, each from 5 minutes to 7 days before."))
    return minutes


class PreferencesForm(forms.Form):
    """One checkbox list per category a person may choose channels for, reminder offsets as
    text ("24h, 1h, 15m") and the language messages and pages use."""

    reminder_offsets = forms.CharField(
        label=_("Remind me before each appointment"),
        help_text=_("Times before the start, separated by commas: 2d, 24h, 1h, 15m. Leave empty for no reminders."),
        required=False,
        max_length=100,
    )
    language = forms.ChoiceField(label=_("Language of emails and pages"), choices=[(code, get_language_info(code)["name_local"]) for code, _name in settings.LANGUAGES])

    def __init__(self, *args, sms_available: bool = False, **kwargs):
        super().__init__(*args, **kwargs)
        labels = {"email": _("Email"), "sms": _("Text message (SMS)")}
        for category in CATEGORIES.values():
            # Essential kinds are always emailed: there is nothing to choose for them. Text
            # messages are offered once a phone number is confirmed.
            choices = [(c, labels[c]) for c in category.channels if not (category.essential and c == "email") and (c != "sms" or sms_available)]
            if choices:
                self.fields[f"channels_{category.name}"] = forms.MultipleChoiceField(label=category.label, choices=choices, required=False, widget=forms.CheckboxSelectMultiple)

    def clean_reminder_offsets(self) -> list[int]:
        return offsets_parse(self.cleaned_data["reminder_offsets"])

    def channels(self) -> dict[str, list[str]]:
        chosen = {}
        for category in CATEGORIES.values():
            field = f"channels_{category.name}"
            if field in self.fields:
                chosen[category.name] = (["email"] if category.essential else []) + self.cleaned_data[field]
        return chosen
