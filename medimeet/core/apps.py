from constance.apps import ConstanceConfig
from django.apps import AppConfig
from django.contrib.admin import apps as admin_apps
from django.db.models.signals import post_migrate


class MedimeetAdminConfig(admin_apps.AdminConfig):
    """Django's admin with the audited site (``medimeet.core.admin_site``) as the default.
    Named in INSTALLED_APPS by its full path (``default = False``: ``CoreConfig`` stays this
    module's config for ``medimeet.core``)."""

    default = False
    default_site = "medimeet.core.admin_site.MedimeetAdminSite"


class CoreConfig(AppConfig):
    """Cross-cutting platform pieces every domain app uses (see docs/architecture.md)."""

    default = True  # apps.py also holds PlatformSettingsConfig (and imports constance's): this one is the app's
    name = "medimeet.core"
    label = "core"
    verbose_name = "Platform"

    def ready(self) -> None:
        from . import checks  # noqa: F401  (registers system checks)
        from .dashboard import failures  # noqa: F401  (records failed Celery tasks)
        from .flags import flags_ensure_after_migrate
        from .platform import platform_defaults_ensure
        from .roles import sync_after_migrate

        # Staff roles, flags, switches and platform settings exist (with safe defaults) after
        # every migrate, and after the flush that ends each transactional test.
        post_migrate.connect(sync_after_migrate, dispatch_uid="medimeet.core.roles")
        post_migrate.connect(flags_ensure_after_migrate, sender=self, dispatch_uid="core-flags-ensure")
        post_migrate.connect(platform_defaults_ensure, sender=self, dispatch_uid="core-platform-defaults")

        self._create_filesystem_broker_folders()

    @staticmethod
    def _create_filesystem_broker_folders() -> None:
        """The embedded default's Kombu filesystem broker needs its folders before the first
        task is queued, by the web process as well as the worker."""
        import os

        from django.conf import settings

        if settings.CELERY_BROKER_URL.startswith("filesystem://"):
            for key in ("data_folder_in", "data_folder_out", "processed_folder", "control_folder"):
                folder = settings.CELERY_BROKER_TRANSPORT_OPTIONS.get(key)
                if folder:
                    os.makedirs(folder, exist_ok=True)


class PlatformSettingsConfig(ConstanceConfig):
    """django-constance under the name staff know it by in the admin ("Platform settings")."""

    verbose_name = "Platform settings"
