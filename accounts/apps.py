from django.apps import AppConfig


class AccountsConfig(AppConfig):
    """Users, patient profiles, authentication, sessions and devices."""

    name = "accounts"
    verbose_name = "Accounts"

    def ready(self) -> None:
        from . import schema  # noqa: F401  (registers the OpenAPI auth extension)
