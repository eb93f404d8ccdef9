"""Availability, slots, holds and bookings (Step 3). Models arrive with that step."""
