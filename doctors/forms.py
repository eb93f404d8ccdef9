from __future__ import annotations

from django import forms
from django.utils.translation import gettext_lazy as _

from accounts.forms import TIMEZONE_CHOICES
from accounts.models import validate_timezone

from .models import CURRENCY_CHOICES, CURRENCY_EXPONENTS, ConsultationMode, DoctorDocument, Language, Specialization
from .selectors import SORTS


def specialization_choices(blank: str | None = None) -> list[tuple[str, str]]:
    choices = [(s.slug, f"{'— ' * s.depth}{s.name}") for s in Specialization.objects.order_by("path")]
    return ([("", blank)] if blank is not None else []) + choices


class SearchForm(forms.Form):
    q = forms.CharField(required=False, max_length=200, label=_("Search"), widget=forms.TextInput(attrs={"placeholder": "Name, condition, skill…", "type": "search"}))
    specialization = forms.ChoiceField(required=False, label=_("Specialization"))
    language = forms.ChoiceField(required=False, label=_("Language"))
    mode = forms.ChoiceField(required=False, label=_("Consultation"), choices=[("", "Any")] + list(ConsultationMode.choices))
    fee_min = forms.DecimalField(required=False, min_value=0, max_digits=12, decimal_places=2, label=_("Fee from"))
    fee_max = forms.DecimalField(required=False, min_value=0, max_digits=12, decimal_places=2, label=_("Fee to"))
    currency = forms.ChoiceField(required=False, label=_("Currency"), choices=[("", "—")] + CURRENCY_CHOICES)
    experience_min = forms.IntegerField(required=False, min_value=0, max_value=70, label=_("Min. years of experience"))
    rating_min = forms.DecimalField(required=False, min_value=0, max_value=5, max_digits=3, decimal_places=2, label=_("Min. rating"))
    city = forms.CharField(required=False, max_length=100, label=_("City"))
    country = forms.RegexField(required=False, regex=r"^[A-Za-z]{2}$", label=_("Country code"), error_messages={"invalid": _("Use a two-letter code, e.g. IN.")})
    available_on = forms.DateField(required=False, label=_("Available on"), widget=forms.DateInput(attrs={"type": "date"}))
    sort = forms.ChoiceField(
        required=False,
        label=_("Sort by"),
        choices=[("relevance", _("Best match")), ("rating", _("Rating")), ("fee", _("Fee: low to high")), ("-fee", _("Fee: high to low")), ("experience", _("Experience")), ("availability", _("Soonest available"))],
    )

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["specialization"].choices = specialization_choices(blank=_("All specializations"))
        self.fields["language"].choices = [("", _("Any language"))] + [(lang.code, lang.name) for lang in Language.objects.all()]

    def clean(self):
        data = super().clean()
        if (data.get("fee_min") is not None or data.get("fee_max") is not None) and not data.get("currency"):
            self.add_error("currency", _("Choose the currency of the fee range."))
        return data

    def search_params(self):
        from .selectors import DoctorSearch

        data = self.cleaned_data
        return DoctorSearch(
            q=data.get("q") or "",
            specialization=Specialization.objects.filter(slug=data["specialization"]).first() if data.get("specialization") else None,
            fee_min=data.get("fee_min"),
            fee_max=data.get("fee_max"),
            currency=data.get("currency") or "",
            experience_min=data.get("experience_min"),
            rating_min=data.get("rating_min"),
            language=data.get("language") or "",
            mode=data.get("mode") or "",
            city=data.get("city") or "",
            country=data.get("country") or "",
            available_on=data.get("available_on"),
            sort=data.get("sort") if data.get("sort") in SORTS else "relevance",
        )


class LicenceFields(forms.Form):
    licence_number = forms.CharField(max_length=40, label=_("Licence / registration number"))
    licence_authority = forms.CharField(max_length=200, label=_("Issuing authority"), help_text=_("e.g. General Medical Council, National Medical Commission"))
    licence_country = forms.RegexField(regex=r"^[A-Za-z]{2}$", label=_("Country of licence"), help_text=_("Two-letter code, e.g. IN, GB, US."), error_messages={"invalid": _("Use a two-letter country code.")})
    licence_expiry = forms.DateField(label=_("Licence valid until"), widget=forms.DateInput(attrs={"type": "date"}))
    primary_specialization = forms.ChoiceField(label=_("Primary specialization"))

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["primary_specialization"].choices = specialization_choices(blank="Choose…")

    def clean_primary_specialization(self):
        specialization = Specialization.objects.filter(slug=self.cleaned_data["primary_specialization"]).first()
        if specialization is None:
            raise forms.ValidationError(_("Choose a specialization."))
        return specialization


class ApplicationForm(LicenceFields):
    first_name = forms.CharField(max_length=150, label=_("First name"))
    last_name = forms.CharField(max_length=150, label=_("Last name"))
    email = forms.EmailField(max_length=254, label=_("Professional email"))
    password = forms.CharField(label=_("Password"), widget=forms.PasswordInput(attrs={"autocomplete": "new-password"}), help_text=_("At least 10 characters; not a common password."))
    timezone = forms.ChoiceField(choices=TIMEZONE_CHOICES, initial="UTC", label=_("Time zone"), validators=[validate_timezone])
    years_experience = forms.IntegerField(min_value=0, max_value=70, initial=0, label=_("Years of experience"))
    licence_document = forms.FileField(label=_("Licence document"), help_text=_("PDF, JPEG or PNG, up to 10 MB."), widget=forms.ClearableFileInput(attrs={"accept": "application/pdf,image/jpeg,image/png"}))

    field_order = ["first_name", "last_name", "email", "password", "timezone", "years_experience", "primary_specialization", "licence_number", "licence_authority", "licence_country", "licence_expiry", "licence_document"]


class LicenceUpdateForm(forms.Form):
    """A renewed or corrected licence; an approved doctor goes back under review."""

    licence_number = LicenceFields.base_fields["licence_number"]
    licence_authority = LicenceFields.base_fields["licence_authority"]
    licence_country = LicenceFields.base_fields["licence_country"]
    licence_expiry = LicenceFields.base_fields["licence_expiry"]


class InvitationForm(forms.Form):
    password1 = forms.CharField(label=_("Choose a password"), widget=forms.PasswordInput(attrs={"autocomplete": "new-password"}))
    password2 = forms.CharField(label=_("Repeat the password"), widget=forms.PasswordInput(attrs={"autocomplete": "new-password"}))

    def clean(self):
        data = super().clean()
        if data.get("password1") and data.get("password1") != data.get("password2"):
            self.add_error("password2", _("The two passwords differ."))
        return data


class ProfileForm(forms.Form):
    first_name = forms.CharField(max_length=150)
    last_name = forms.CharField(max_length=150)
    title = forms.CharField(max_length=20, required=False)
    bio = forms.CharField(max_length=5000, required=False, widget=forms.Textarea(attrs={"rows": 6}), label=_("Biography"))
    years_experience = forms.IntegerField(min_value=0, max_value=70, label=_("Years of experience"))
    special_skills = forms.CharField(max_length=1000, required=False, label=_("Special skills"), help_text=_("Comma-separated."))
    clinic_name = forms.CharField(max_length=200, required=False, label=_("Clinic or hospital"))
    clinic_address = forms.CharField(max_length=300, required=False, label=_("Address"))
    city = forms.CharField(max_length=100, required=False)
    country = forms.RegexField(regex=r"^[A-Za-z]{2}$", required=False, label=_("Country code"), error_messages={"invalid": _("Use a two-letter code.")})
    offers_video = forms.BooleanField(required=False, label=_("Video consultations"))
    offers_in_person = forms.BooleanField(required=False, label=_("In-person consultations"))
    primary_specialization = forms.ChoiceField(label=_("Primary specialization"))
    secondary_specializations = forms.MultipleChoiceField(required=False, label=_("Other specializations"), widget=forms.SelectMultiple(attrs={"size": 6}))
    languages = forms.MultipleChoiceField(required=False, label=_("Languages you consult in"), widget=forms.SelectMultiple(attrs={"size": 6}))

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        choices = specialization_choices()
        self.fields["primary_specialization"].choices = choices
        self.fields["secondary_specializations"].choices = choices
        self.fields["languages"].choices = [(lang.code, lang.name) for lang in Language.objects.all()]

    def clean(self):
        data = super().clean()
        if not data.get("offers_video") and not data.get("offers_in_person"):
            self.add_error("offers_video", _("Offer at least one consultation mode."))
        slugs = [data.get("primary_specialization"), *data.get("secondary_specializations", [])]
        found = {s.slug: s for s in Specialization.objects.filter(slug__in=[s for s in slugs if s])}
        if data.get("primary_specialization"):
            data["primary_specialization"] = found.get(data["primary_specialization"])
        data["secondary_specializations"] = [found[s] for s in data.get("secondary_specializations", []) if s in found]
        data["languages"] = list(Language.objects.filter(code__in=data.get("languages", [])))
        return data


class EducationForm(forms.Form):
    degree = forms.CharField(max_length=120)
    institution = forms.CharField(max_length=200)
    year = forms.IntegerField(min_value=1940, max_value=2100)


class CertificationForm(forms.Form):
    name = forms.CharField(max_length=200)
    issuer = forms.CharField(max_length=200, required=False)
    year = forms.IntegerField(min_value=1940, max_value=2100, required=False)


class PositionForm(forms.Form):
    title = forms.CharField(max_length=120)
    organisation = forms.CharField(max_length=200)
    start_year = forms.IntegerField(min_value=1940, max_value=2100)
    end_year = forms.IntegerField(min_value=1940, max_value=2100, required=False)

    def clean(self):
        data = super().clean()
        if data.get("end_year") and data.get("start_year") and data["end_year"] < data["start_year"]:
            self.add_error("end_year", _("A position cannot end before it starts."))
        return data


EducationFormSet = forms.formset_factory(EducationForm, extra=1, can_delete=True, max_num=20)
CertificationFormSet = forms.formset_factory(CertificationForm, extra=1, can_delete=True, max_num=20)
PositionFormSet = forms.formset_factory(PositionForm, extra=1, can_delete=True, max_num=20)


def formset_items(formset) -> list[dict]:
    """Filled, not-deleted rows of a valid formset, without the DELETE flag."""
    return [
        {k: v for k, v in form.cleaned_data.items() if k != "DELETE"}
        for form in formset.forms
        if form.cleaned_data and not form.cleaned_data.get("DELETE")
    ]


class ServiceForm(forms.Form):
    name = forms.CharField(max_length=120)
    description = forms.CharField(max_length=2000, required=False, widget=forms.Textarea(attrs={"rows": 2}))
    price = forms.DecimalField(min_value=0.01, max_digits=12, decimal_places=2, label=_("Price"))
    currency = forms.ChoiceField(choices=CURRENCY_CHOICES)
    duration_minutes = forms.IntegerField(min_value=5, max_value=240, label=_("Duration (minutes)"), help_text=_("5 to 240, in steps of 5."))
    mode = forms.ChoiceField(choices=ConsultationMode.choices)
    preparation_instructions = forms.CharField(max_length=2000, required=False, widget=forms.Textarea(attrs={"rows": 2}))
    procedure_type = forms.CharField(max_length=120, required=False)
    equipment_required = forms.CharField(max_length=200, required=False)
    free_follow_up_days = forms.IntegerField(min_value=0, max_value=60, initial=0, required=False, label=_("Free follow-up window (days)"), help_text=_("A follow-up booked within this many days of a completed consultation costs nothing. 0 for never."))
    is_active = forms.BooleanField(required=False, initial=True, label=_("Offered (visible to patients)"))

    def clean_duration_minutes(self):
        value = self.cleaned_data["duration_minutes"]
        if value % 5:
            raise forms.ValidationError(_("Use steps of 5 minutes."))
        return value

    def clean(self):
        data = super().clean()
        price, currency = data.get("price"), data.get("currency")
        if price is not None and currency:
            exponent = CURRENCY_EXPONENTS[currency]
            if price != round(price, exponent):
                self.add_error("price", _("%(currency)s prices have %(places)d decimal places.") % {"currency": currency, "places": exponent})
        return data

    def service_data(self) -> dict:
        """The cleaned form as service fields, with the price in minor units."""
        data = dict(self.cleaned_data)
        data["free_follow_up_days"] = data.get("free_follow_up_days") or 0
        price = data.pop("price")
        data["price_minor"] = int(price * 10 ** CURRENCY_EXPONENTS[data["currency"]])
        return data


class DocumentForm(forms.Form):
    kind = forms.ChoiceField(choices=DoctorDocument.Kind.choices, label=_("Type of document"))
    document = forms.FileField(label=_("File"), help_text=_("PDF, JPEG or PNG, up to 10 MB."), widget=forms.ClearableFileInput(attrs={"accept": "application/pdf,image/jpeg,image/png"}))
