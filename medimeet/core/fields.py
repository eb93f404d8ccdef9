"""Model fields that keep their value encrypted in the database column.

Encrypted columns cannot be filtered or sorted by the database; use them for data that is
only ever read through its row (PHI such as date of birth, address, medical history).
"""

from __future__ import annotations

import datetime

from django.core.exceptions import ValidationError
from django.db import models

from .crypto import InvalidToken, decrypt_text, encrypt_text


class EncryptedTextField(models.TextField):
    """A text value stored as a Fernet token. Empty strings are stored as empty strings."""

    description = "Text encrypted at rest"

    def get_prep_value(self, value):
        value = super().get_prep_value(value)
        if value in (None, ""):
            return value
        return encrypt_text(self.to_text(value))

    def from_db_value(self, value, expression, connection):
        if value in (None, ""):
            return self.empty_python_value(value)
        try:
            return self.from_text(decrypt_text(value))
        except InvalidToken as exc:
            raise ValidationError(f"{self.model.__name__}.{self.name} cannot be decrypted with the configured keys") from exc

    def get_lookup(self, lookup_name):
        # Only null checks make sense on ciphertext; anything else would silently never match.
        if lookup_name != "isnull":
            return None
        return super().get_lookup(lookup_name)

    # Hooks for typed subclasses.
    def to_text(self, value) -> str:
        return str(value)

    def from_text(self, text: str):
        return text

    def empty_python_value(self, value):
        return value


class EncryptedDateField(EncryptedTextField):
    """A date stored encrypted (ISO format inside the token)."""

    description = "Date encrypted at rest"

    def to_python(self, value):
        if value in (None, "") or isinstance(value, datetime.date):
            return value or None
        try:
            return datetime.date.fromisoformat(str(value))
        except ValueError as exc:
            raise ValidationError("Enter a valid date (YYYY-MM-DD).", code="invalid") from exc

    def get_prep_value(self, value):
        value = self.to_python(value)
        if value is None:
            return None
        return encrypt_text(value.isoformat())

    def from_text(self, text: str):
        return datetime.date.fromisoformat(text)

    def empty_python_value(self, value):
        return None

    def formfield(self, **kwargs):
        from django import forms

        return models.Field.formfield(self, **{"form_class": forms.DateField, **kwargs})
