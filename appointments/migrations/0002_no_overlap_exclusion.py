"""No double booking, guaranteed by PostgreSQL: two active appointments (holds included) of one
doctor cannot overlap in their blocked time (buffers included), and one patient cannot be in
two appointments at once. SQLite has no exclusion constraints; there booking transactions are
serialised (BEGIN IMMEDIATE) and the service checks overlaps inside them."""

from django.db import migrations

ACTIVE = "('held', 'pending_payment', 'confirmed', 'in_progress')"

CREATE = [
    "CREATE EXTENSION IF NOT EXISTS btree_gist",
    f"""ALTER TABLE appointments_appointment ADD CONSTRAINT appt_no_doctor_overlap
        EXCLUDE USING gist (doctor_id WITH =, tstzrange(blocked_start, blocked_end, '[)') WITH &&)
        WHERE (status IN {ACTIVE})""",
    f"""ALTER TABLE appointments_appointment ADD CONSTRAINT appt_no_patient_overlap
        EXCLUDE USING gist (patient_id WITH =, tstzrange(start, "end", '[)') WITH &&)
        WHERE (status IN {ACTIVE})""",
]
DROP = [
    "ALTER TABLE appointments_appointment DROP CONSTRAINT IF EXISTS appt_no_patient_overlap",
    "ALTER TABLE appointments_appointment DROP CONSTRAINT IF EXISTS appt_no_doctor_overlap",
]


def forwards(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        for statement in CREATE:
            schema_editor.execute(statement)


def backwards(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        for statement in DROP:
            schema_editor.execute(statement)


class Migration(migrations.Migration):
    dependencies = [("appointments", "0001_initial")]

    operations = [migrations.RunPython(forwards, backwards)]
