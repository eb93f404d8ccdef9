from django.apps import AppConfig


class AppointmentsConfig(AppConfig):
    """Availability, slots, holds and bookings (Step 3)."""

    name = "appointments"
    verbose_name = "Appointments"
