"""Websocket routes of appointments (docs/signaling.md, "Live availability")."""

from django.urls import re_path

from .consumers import AvailabilityConsumer

websocket_urlpatterns = [
    re_path(r"^ws/doctors/(?P<slug>[-a-zA-Z0-9_]{1,160})/availability/$", AvailabilityConsumer.as_asgi()),
]
