from django.apps import AppConfig


class CoreConfig(AppConfig):
    """Cross-cutting platform pieces every domain app uses (see docs/architecture.md)."""

    name = "medimeet.core"
    label = "core"
    verbose_name = "Platform"

    def ready(self) -> None:
        from . import checks  # noqa: F401  (registers system checks)
