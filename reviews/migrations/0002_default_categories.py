"""The categories patients rate besides "overall"; staff change them in the admin."""

from django.db import migrations

CATEGORIES = [
    ("punctuality", "Punctuality and waiting time", "Did the consultation start on time?"),
    ("bedside_manner", "Bedside manner", "Were you listened to and treated with respect?"),
    ("explanation", "Clarity of explanation", "Did you understand the diagnosis and the next steps?"),
    ("value", "Value for money", "Was the consultation worth its fee?"),
]


def create(apps, schema_editor):
    RatingCategory = apps.get_model("reviews", "RatingCategory")
    for position, (code, name, question) in enumerate(CATEGORIES, start=1):
        RatingCategory.objects.get_or_create(code=code, defaults={"name": name, "question": question, "position": position})


class Migration(migrations.Migration):
    dependencies = [("reviews", "0001_initial")]

    operations = [migrations.RunPython(create, migrations.RunPython.noop)]
