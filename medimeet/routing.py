"""Websocket routes of every app, gathered in one place for asgi.py."""

from django.urls import path

from appointments.routing import websocket_urlpatterns as appointment_patterns
from consultations.routing import websocket_urlpatterns as consultation_patterns
from medimeet.core.consumers import NetworkCheckConsumer

websocket_urlpatterns = [
    path("ws/network-check/", NetworkCheckConsumer.as_asgi()),
    *consultation_patterns,
    *appointment_patterns,
]
