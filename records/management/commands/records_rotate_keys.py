"""Re-wrap every record document's data key under the newest master key.

Rotation: prepend a new key to ENVELOPE_MASTER_KEYS, deploy, run this command, then remove the
old key. File contents are not re-encrypted (only the small wrapped keys change), and the
command verifies afterwards that every document's key unwraps with the configured keys.
Documents' field-encrypted columns (title, file name, extracted text) and entry payloads use
FIELD_ENCRYPTION_KEYS instead: they rotate with ``manage.py rotate_field_keys``.
"""

from django.core.management.base import BaseCommand, CommandError

from medimeet.core.envelope import EnvelopeError, WrappedKey, data_key_unwrap, master_key_current_id
from records.models import Document
from records.services import documents_rewrap_keys


class Command(BaseCommand):
    help = "Re-wrap record documents' data keys under the newest ENVELOPE_MASTER_KEYS key."

    def handle(self, *args, **options):
        rewrapped = documents_rewrap_keys()
        current = master_key_current_id()
        failures = 0
        for document in Document.objects.only("pk", "key_id", "wrapped_key").iterator(chunk_size=500):
            try:
                data_key_unwrap(WrappedKey(document.key_id, bytes(document.wrapped_key)))
            except EnvelopeError:
                failures += 1
        if failures:
            raise CommandError(f"{failures} document key(s) do not unwrap with the configured master keys.")
        self.stdout.write(f"Re-wrapped {rewrapped} document key(s) under master key {current!r}; every document key unwraps.")
