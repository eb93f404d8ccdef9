from __future__ import annotations

from django import forms

from .selectors import GROUPS


class SandboxCardForm(forms.Form):
    card_number = forms.CharField(
        label="Card number", max_length=23, initial="4242 4242 4242 4242", widget=forms.TextInput(attrs={"inputmode": "numeric", "autocomplete": "cc-number"})
    )
    expiry = forms.RegexField(
        label="Expiry (MM/YY)", regex=r"^\s*(0[1-9]|1[0-2])\s*/\s*\d{2}\s*$", initial="12/30", error_messages={"invalid": "Enter the expiry as MM/YY."}
    )
    cvc = forms.RegexField(label="CVC", regex=r"^\d{3,4}$", initial="123", error_messages={"invalid": "Enter the 3 or 4 digits on the back."})


class EarningsFilterForm(forms.Form):
    start_date = forms.DateField(required=False, widget=forms.DateInput(attrs={"type": "date"}))
    end_date = forms.DateField(required=False, widget=forms.DateInput(attrs={"type": "date"}))
    group_by = forms.ChoiceField(required=False, choices=[(g, g.title()) for g in GROUPS if g in ("day", "week", "month")])

    def clean(self):
        data = super().clean()
        if data.get("start_date") and data.get("end_date") and data["end_date"] < data["start_date"]:
            self.add_error("end_date", "The range ends before it starts.")
        return data
