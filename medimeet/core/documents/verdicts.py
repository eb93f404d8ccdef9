"""What a signature check means, in words: shared by the verifier page and its API."""

from __future__ import annotations

from datetime import UTC

from django.conf import settings
from django.core.files.uploadedfile import UploadedFile
from django.utils.dateformat import format as date_format
from django.utils.translation import gettext

from medimeet.core.errors import ApplicationError
from medimeet.core.pdf import SignatureCheck, pdf_signature_check

UNSIGNED = "unsigned"  # the page's verdict for SIGN_003 (the API answers it with the code)


def upload_check(upload: UploadedFile) -> SignatureCheck:
    """Check an uploaded file; the size is refused before the file is read."""
    if upload.size is not None and upload.size > settings.PDF_VERIFY_MAX_BYTES:
        raise ApplicationError("SIGN_002")
    return pdf_signature_check(upload.read(settings.PDF_VERIFY_MAX_BYTES + 1))


def signed_at_display(check: SignatureCheck) -> str:
    return date_format(check.signed_at.astimezone(UTC), "j F Y, H:i") + " UTC" if check.signed_at else ""


def verdict_message(check: SignatureCheck | None) -> str:
    """One sentence a patient or pharmacist acts on (``None``: the PDF carries no signature)."""
    site = settings.SITE_NAME
    if check is None:
        return gettext("Not signed by %(site)s. This PDF carries no digital signature, so nothing shows it came from %(site)s unchanged.") % {"site": site}
    if check.verdict == SignatureCheck.VALID:
        message = gettext("Valid: signed by %(site)s on %(when)s. %(document)s.") % {"site": site, "when": signed_at_display(check) or "—", "document": check.document.title}
        if not check.document.current:
            message += " " + gettext("The doctor has since replaced it: do not dispense from it.")
        return message
    if check.verdict == SignatureCheck.ALTERED:
        return gettext("This document was altered after signing. Do not rely on it: ask for a fresh copy or check it by its verification code.")
    if check.verdict == SignatureCheck.NOT_OURS:
        return gettext("Not signed by %(site)s. The PDF carries a signature, but not one made by %(site)s.") % {"site": site}
    return gettext("Signed by %(site)s, but no receipt or prescription matches it any more. Contact support before relying on it.") % {"site": site}
