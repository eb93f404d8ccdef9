"""The reason for a visit is clinical information: encrypted at rest like the other PHI columns
(the column stays text; existing plaintext is encrypted row by row, and decrypted again on the
way back)."""

from django.db import migrations

import medimeet.core.fields

BATCH = 1000


def _rewrite(apps, schema_editor, change) -> None:
    connection = schema_editor.connection
    last = 0
    while True:
        with connection.cursor() as cursor:
            cursor.execute("SELECT id, reason FROM appointments_appointment WHERE id > %s AND reason <> '' ORDER BY id LIMIT %s", [last, BATCH])
            found = cursor.fetchall()
            if not found:
                return
            changed = [(new, pk) for pk, text in found if (new := change(text)) != text]
            if changed:
                cursor.executemany("UPDATE appointments_appointment SET reason = %s WHERE id = %s", changed)
        last = found[-1][0]


def encrypt(apps, schema_editor) -> None:
    from medimeet.core.crypto import InvalidToken, decrypt_text, encrypt_text

    def change(text: str) -> str:
        try:
            decrypt_text(text)  # already a token (a re-run): leave it
            return text
        except (InvalidToken, ValueError):  # plaintext (ValueError: not even ASCII)
            return encrypt_text(text)

    _rewrite(apps, schema_editor, change)


def decrypt(apps, schema_editor) -> None:
    from medimeet.core.crypto import decrypt_text

    _rewrite(apps, schema_editor, decrypt_text)


class Migration(migrations.Migration):
    dependencies = [
        ("appointments", "0008_dashboard_indexes"),
    ]

    operations = [
        migrations.AlterField(
            model_name="appointment",
            name="reason",
            field=medimeet.core.fields.EncryptedTextField(blank=True, help_text="Reason for the visit, as the patient wrote it (clinical: encrypted at rest)."),
        ),
        migrations.RunPython(encrypt, decrypt),
    ]
