from django.apps import AppConfig


class DoctorsConfig(AppConfig):
    """Doctor onboarding, verification, profiles, specializations and search (Step 2)."""

    name = "doctors"
    verbose_name = "Doctors"
