"""Re-encryption of Fernet-encrypted data under the newest FIELD_ENCRYPTION_KEYS key.

Rotation: prepend a new key to FIELD_ENCRYPTION_KEYS (old keys stay listed, so everything still
reads), deploy, run ``manage.py rotate_field_keys``, and remove the old key only once the command
reports that nothing is left under it. What is covered is found, not listed: every column of an
``EncryptedTextField`` (and subclasses) in every installed model, and the Fernet-encrypted
consultation recording chunk files.

Rows are read and written as raw ciphertext in primary-key batches, each batch in its own
transaction, and each value is written back only if it has not changed since it was read (a
concurrent save already wrote it under the newest key). A value already under the newest key is
left alone, so the command is idempotent and can be interrupted and run again (it resumes by
skipping what is done). A value no configured key opens is reported by model, field and primary
key (never its content) and left exactly as it is.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

from django.apps import apps
from django.core.files.base import ContentFile
from django.db import connection, models, transaction

from .crypto import InvalidToken, token_rotate
from .fields import EncryptedTextField

__all__ = ["RotationReport", "encrypted_columns", "field_keys_rotate"]


@dataclass
class RotationReport:
    rotated: dict[str, int] = field(default_factory=dict)  # "app_label.Model.field" -> values re-encrypted
    current: dict[str, int] = field(default_factory=dict)  # already under the newest key
    failures: list[tuple[str, object]] = field(default_factory=list)  # ("app_label.Model.field", pk)

    def count(self, label: str, *, rotated: bool) -> None:
        bucket = self.rotated if rotated else self.current
        bucket[label] = bucket.get(label, 0) + 1

    @property
    def total_rotated(self) -> int:
        return sum(self.rotated.values())


def encrypted_columns() -> list[tuple[type[models.Model], list[EncryptedTextField]]]:
    """Every concrete model with encrypted columns, and those columns (each model's own, so a
    multi-table child does not repeat its parent's)."""
    found = []
    for model in apps.get_models():
        if model._meta.proxy or not model._meta.managed:
            continue
        columns = [f for f in model._meta.local_concrete_fields if isinstance(f, EncryptedTextField)]
        if columns:
            found.append((model, columns))
    return found


def _label(model: type[models.Model], name: str) -> str:
    return f"{model._meta.label}.{name}"


def _batches(model: type[models.Model], columns: list[str], batch_size: int) -> Iterator[list[tuple]]:
    """Raw (pk, *ciphertexts) rows in primary-key order, ``batch_size`` at a time."""
    quote = connection.ops.quote_name
    pk = quote(model._meta.pk.column)
    select = f"SELECT {', '.join([pk, *(quote(c) for c in columns)])} FROM {quote(model._meta.db_table)}"  # noqa: S608 - names quoted
    first, following = f"{select} ORDER BY {pk} LIMIT %s", f"{select} WHERE {pk} > %s ORDER BY {pk} LIMIT %s"
    last = None
    while True:
        with connection.cursor() as cursor:
            cursor.execute(first, [batch_size]) if last is None else cursor.execute(following, [last, batch_size])
            rows = cursor.fetchall()
        if not rows:
            return
        yield rows
        last = rows[-1][0]


def _rotate_columns(model: type[models.Model], fields: list[EncryptedTextField], report: RotationReport, batch_size: int) -> None:
    quote = connection.ops.quote_name
    table, pk = quote(model._meta.db_table), quote(model._meta.pk.column)
    for rows in _batches(model, [f.column for f in fields], batch_size):
        with transaction.atomic():
            for pk_value, *tokens in rows:
                for f, token in zip(fields, tokens, strict=True):
                    if token in (None, ""):
                        continue
                    label = _label(model, f.name)
                    try:
                        rotated = token_rotate(token.encode("ascii"))
                    except (InvalidToken, UnicodeEncodeError):
                        report.failures.append((label, pk_value))
                        continue
                    if rotated is None:
                        report.count(label, rotated=False)
                        continue
                    column = quote(f.column)
                    with connection.cursor() as cursor:
                        # Only if unchanged since read: a concurrent save wrote a newest-key value.
                        cursor.execute(f"UPDATE {table} SET {column} = %s WHERE {pk} = %s AND {column} = %s", [rotated.decode("ascii"), pk_value, token])  # noqa: S608
                        changed = cursor.rowcount
                    report.count(label, rotated=bool(changed))


def _rotate_recording_chunks(report: RotationReport, batch_size: int) -> None:
    """Consultation recording chunks are whole files encrypted with Fernet: write the rotated
    bytes to a new file, point the row at it (if it still names the old one), then delete the old."""
    if not apps.is_installed("consultations"):
        return
    from consultations.models import RecordingChunk

    label = "consultations.RecordingChunk.file"
    last = 0
    while True:
        chunks = list(RecordingChunk.objects.filter(pk__gt=last).order_by("pk").only("pk", "file")[:batch_size])
        if not chunks:
            return
        for chunk in chunks:
            storage, old_name = chunk.file.storage, chunk.file.name
            try:
                with storage.open(old_name, "rb") as stored:
                    rotated = token_rotate(stored.read())
            except (InvalidToken, OSError):
                report.failures.append((label, chunk.pk))
                continue
            if rotated is None:
                report.count(label, rotated=False)
                continue
            new_name = storage.save(old_name, ContentFile(rotated))
            with transaction.atomic():
                changed = RecordingChunk.objects.filter(pk=chunk.pk, file=old_name).update(file=new_name)
            storage.delete(old_name if changed else new_name)
            report.count(label, rotated=bool(changed))
        last = chunks[-1].pk


def field_keys_rotate(*, batch_size: int = 500, progress: Callable[[str], None] | None = None) -> RotationReport:
    """Re-encrypt every Fernet-encrypted value under the newest key; see the module docstring."""
    report = RotationReport()
    for model, fields in encrypted_columns():
        _rotate_columns(model, fields, report, batch_size)
        if progress:
            progress(model._meta.label)
    _rotate_recording_chunks(report, batch_size)
    return report
