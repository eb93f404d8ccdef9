from __future__ import annotations

import datetime

from django import forms
from django.conf import settings
from django.utils.translation import gettext_lazy as _

from .models import PatientProfile, User, known_timezones, validate_phone_number

TIMEZONE_CHOICES = [(name, name.replace("_", " ")) for name in sorted(known_timezones()) if "/" in name and not name.startswith(("Etc/", "SystemV/"))] + [("UTC", "UTC")]


class SignupDetailsForm(forms.Form):
    """Extra fields on allauth's sign-up form (ACCOUNT_SIGNUP_FORM_CLASS)."""

    first_name = forms.CharField(max_length=150, label=_("First name"), widget=forms.TextInput(attrs={"autocomplete": "given-name"}))
    last_name = forms.CharField(max_length=150, label=_("Last name"), widget=forms.TextInput(attrs={"autocomplete": "family-name"}))
    timezone = forms.ChoiceField(choices=TIMEZONE_CHOICES, initial="UTC", label=_("Time zone"), help_text=_("Appointment times are shown in this zone."))

    def signup(self, request, user: User) -> None:
        user.first_name = self.cleaned_data["first_name"]
        user.last_name = self.cleaned_data["last_name"]
        user.timezone = self.cleaned_data["timezone"]
        user.save(update_fields=["first_name", "last_name", "timezone"])


class ProfileForm(forms.Form):
    first_name = forms.CharField(max_length=150, label=_("First name"))
    last_name = forms.CharField(max_length=150, label=_("Last name"))
    timezone = forms.ChoiceField(choices=TIMEZONE_CHOICES, label=_("Time zone"))
    language = forms.ChoiceField(choices=settings.LANGUAGES, label=_("Preferred language"))
    date_of_birth = forms.DateField(required=False, label=_("Date of birth"), widget=forms.DateInput(attrs={"type": "date"}))
    sex = forms.ChoiceField(choices=[("", "—")] + list(PatientProfile.Sex.choices), required=False, label=_("Sex"))
    phone = forms.CharField(max_length=32, required=False, label=_("Phone"), validators=[validate_phone_number], widget=forms.TextInput(attrs={"autocomplete": "tel", "placeholder": "+44 20 7946 0958"}))
    address = forms.CharField(max_length=500, required=False, label=_("Address"), widget=forms.Textarea(attrs={"rows": 2, "autocomplete": "street-address"}))
    medical_history_summary = forms.CharField(max_length=5000, required=False, label=_("Medical history summary"), widget=forms.Textarea(attrs={"rows": 3}))
    allergies = forms.CharField(max_length=2000, required=False, label=_("Allergies"), widget=forms.Textarea(attrs={"rows": 2}))
    chronic_conditions = forms.CharField(max_length=2000, required=False, label=_("Chronic conditions"), widget=forms.Textarea(attrs={"rows": 2}))
    emergency_contact_name = forms.CharField(max_length=150, required=False, label=_("Emergency contact name"))
    emergency_contact_phone = forms.CharField(max_length=32, required=False, label=_("Emergency contact phone"), validators=[validate_phone_number])

    PATIENT_ONLY = ("date_of_birth", "sex", "phone", "address", "medical_history_summary", "allergies", "chronic_conditions", "emergency_contact_name", "emergency_contact_phone")

    def __init__(self, *args, user: User, **kwargs):
        super().__init__(*args, **kwargs)
        if user.role != User.Role.PATIENT:
            for name in self.PATIENT_ONLY:
                del self.fields[name]

    def clean_date_of_birth(self):
        value = self.cleaned_data.get("date_of_birth")
        if value and (value > datetime.date.today() or value.year < 1900):
            raise forms.ValidationError(_("Enter a date of birth between 1900 and today."))
        return value


class PictureForm(forms.Form):
    picture = forms.FileField(label=_("Profile picture"), help_text=_("JPEG, PNG or WebP, up to 5 MB."), widget=forms.ClearableFileInput(attrs={"accept": "image/jpeg,image/png,image/webp"}))
