from django.apps import AppConfig


class ConsultationsConfig(AppConfig):
    """Video rooms, signaling and chat (Step 5)."""

    name = "consultations"
    verbose_name = "Consultations"
