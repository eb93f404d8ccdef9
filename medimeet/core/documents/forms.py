from django import forms
from django.utils.translation import gettext_lazy as _


class DocumentVerifyForm(forms.Form):
    file = forms.FileField(
        label=_("PDF file"),
        help_text=_("A receipt or prescription you received from MediMeet. The file is checked and not kept."),
        widget=forms.ClearableFileInput(attrs={"accept": "application/pdf,.pdf"}),
    )
