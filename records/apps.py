from django.apps import AppConfig


class RecordsConfig(AppConfig):
    """Encrypted medical records, grants and audit (Step 7)."""

    name = "records"
    verbose_name = "Medical records"
