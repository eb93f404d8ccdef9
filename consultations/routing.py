"""Websocket routes of consultations (docs/signaling.md)."""

from django.urls import re_path

from .consumers import ConsultationConsumer

websocket_urlpatterns = [
    re_path(r"^ws/consultations/(?P<room>[A-Za-z0-9_-]{20,64})/$", ConsultationConsumer.as_asgi()),
]
