"""Websocket routes of every app, gathered in one place for asgi.py."""

from consultations.routing import websocket_urlpatterns as consultation_patterns

websocket_urlpatterns = [*consultation_patterns]
