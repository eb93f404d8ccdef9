"""The two CMS roles as Django groups, used by the admin:

- "author": writes posts and pages, uploads to the media library, submits drafts for review;
- "content editor": everything an author does, plus categories and tags, and scheduling,
  publishing and unpublishing (``publish_post`` / ``publish_page``).

Staff get a role by being added to the group (admin → Users). Permissions are created here
first, because Django only creates them after all migrations have run.
"""

from django.contrib.auth.management import create_permissions
from django.db import migrations

AUTHOR = "author"
EDITOR = "content editor"

AUTHOR_PERMISSIONS = [
    "add_post", "change_post", "view_post",
    "add_page", "change_page", "view_page",
    "add_mediaimage", "change_mediaimage", "view_mediaimage",
    "view_category", "view_tag",
]  # fmt: skip
EDITOR_PERMISSIONS = [
    *AUTHOR_PERMISSIONS,
    "delete_post", "delete_page", "delete_mediaimage",
    "add_category", "change_category", "delete_category",
    "add_tag", "change_tag", "delete_tag",
    "publish_post", "publish_page",
]  # fmt: skip


def create_groups(apps, schema_editor):
    app_config = apps.get_app_config("cms")
    app_config.models_module = True
    create_permissions(app_config, apps=apps, verbosity=0)
    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    for name, codenames in ((AUTHOR, AUTHOR_PERMISSIONS), (EDITOR, EDITOR_PERMISSIONS)):
        group, _ = Group.objects.get_or_create(name=name)
        group.permissions.add(*Permission.objects.filter(content_type__app_label="cms", codename__in=codenames))


def remove_groups(apps, schema_editor):
    apps.get_model("auth", "Group").objects.filter(name__in=[AUTHOR, EDITOR]).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("cms", "0001_initial"),
        ("auth", "0012_alter_user_first_name_max_length"),
        ("contenttypes", "0002_remove_content_type_name"),
    ]

    operations = [migrations.RunPython(create_groups, remove_groups)]
