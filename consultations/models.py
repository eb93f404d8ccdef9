"""Video rooms, signaling and chat (Step 5). Models arrive with that step."""
