"""PDF documents (receipts, prescriptions): a template rendered by WeasyPrint.

``pdf_render`` is called inside ``document_language(person)`` so that the words, dates and
numbers are in the language of the person the document is for (English or Hindi); the shared
style (``templates/includes/pdf_style.html``) carries a vendored Devanagari font, so a Hindi
document needs no system font.
"""

from __future__ import annotations

from django.conf import settings
from django.template.loader import render_to_string
from django.utils import translation


def document_language(person):
    """``with document_language(patient):`` — their language while the document is made."""
    return translation.override(getattr(person, "language", "") or settings.LANGUAGE_CODE)


def pdf_render(template: str, context: dict) -> bytes:
    from weasyprint import HTML

    html = render_to_string(template, context)
    return HTML(string=html, base_url=str(settings.BASE_DIR)).write_pdf()
