from __future__ import annotations

from django import forms
from django.utils.translation import gettext_lazy as _

from .selectors import GROUPS


class SandboxCardForm(forms.Form):
    card_number = forms.CharField(
        label=_("Card number"), max_length=23, initial="4242 4242 4242 4242", widget=forms.TextInput(attrs={"inputmode": "numeric", "autocomplete": "cc-number"})
    )
    expiry = forms.RegexField(
        label=_("Expiry (MM/YY)"), regex=r"^\s*(0[1-9]|1[0-2])\s*/\s*\d{2}\s*$", initial="12/30", error_messages={"invalid": _("Enter the expiry as MM/YY.")}
    )
    cvc = forms.RegexField(label=_("CVC"), regex=r"^\d{3,4}$", initial="123", error_messages={"invalid": _("Enter the 3 or 4 digits on the back.")})


class EarningsFilterForm(forms.Form):
    start_date = forms.DateField(required=False, widget=forms.DateInput(attrs={"type": "date"}))
    end_date = forms.DateField(required=False, widget=forms.DateInput(attrs={"type": "date"}))
    group_by = forms.ChoiceField(required=False, choices=[(g, label) for g, label in (("day", _("Day")), ("week", _("Week")), ("month", _("Month"))) if g in GROUPS])

    def clean(self):
        data = super().clean()
        if data.get("start_date") and data.get("end_date") and data["end_date"] < data["start_date"]:
            self.add_error("end_date", _("The range ends before it starts."))
        return data
