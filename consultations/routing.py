"""Websocket routes of consultations; the signaling consumer arrives in Step 5."""

websocket_urlpatterns: list = []
