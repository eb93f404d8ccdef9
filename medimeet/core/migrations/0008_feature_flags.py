"""The feature flags and switches MediMeet reads (medimeet/core/flags.py), with safe defaults."""

from django.db import migrations


def create(apps, schema_editor):
    from medimeet.core.flags import flags_ensure

    flags_ensure(apps.get_model("waffle", "Flag"), apps.get_model("waffle", "Switch"))


class Migration(migrations.Migration):
    dependencies = [
        ("core", "0007_failedtask"),
        ("waffle", "0004_update_everyone_nullbooleanfield"),
    ]

    operations = [migrations.RunPython(create, migrations.RunPython.noop)]
